"""Conformance suites a backend's tests subclass: ``by_framework.testing.history`` for a
``HistoryStore``, ``by_framework.testing.engine`` for an ``Engine``. They need pytest and
pytest-asyncio, which the core does not install."""
