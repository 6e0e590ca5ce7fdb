"""ADK agents the ADK adapter tests run (a fake model: no network)."""
