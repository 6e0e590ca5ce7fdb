"""Fixtures of the plugin process tests: a worker class, and a plugin module they copy into a
plugin directory of their own."""
