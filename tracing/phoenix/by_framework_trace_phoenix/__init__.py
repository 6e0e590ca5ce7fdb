"""Arize Phoenix tracing for by-framework workers (OpenInference spans over OTLP).

Installed, this package is found by every worker at start (entry point ``by_framework.tracing``)
and enabled when ``PHOENIX_COLLECTOR_ENDPOINT`` is set; ``PHOENIX_PROJECT_NAME`` names the
project (Phoenix's ``default`` otherwise) and ``PHOENIX_API_KEY`` authenticates, if needed.
Importing it is cheap: Phoenix and OpenTelemetry load only when the provider is created.
"""

from collections.abc import Mapping
from typing import Any

from by_framework.backends import TraceProvider, TraceProviderFactory


def _create(env: Mapping[str, str]) -> TraceProvider:
    from by_framework_trace_phoenix.provider import from_env

    return from_env(env)


factory = TraceProviderFactory(
    name="phoenix", required_env=("PHOENIX_COLLECTOR_ENDPOINT",), create=_create
)

__all__ = ["PhoenixTraceProvider", "factory", "from_env"]


def __getattr__(name: str) -> Any:
    if name in ("PhoenixTraceProvider", "from_env"):
        from by_framework_trace_phoenix import provider

        return getattr(provider, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
