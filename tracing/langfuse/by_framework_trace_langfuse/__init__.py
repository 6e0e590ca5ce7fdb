"""Langfuse tracing for by-framework workers.

Installed, this package is found by every worker at start (entry point ``by_framework.tracing``)
and enabled when ``LANGFUSE_PUBLIC_KEY`` and ``LANGFUSE_SECRET_KEY`` are set;
``LANGFUSE_BASE_URL`` (or ``LANGFUSE_HOST``) names the server, Langfuse Cloud by default.
Importing it is cheap: Langfuse and OpenTelemetry load only when the provider is created.
"""

from collections.abc import Mapping
from typing import Any

from by_framework.backends import TraceProvider, TraceProviderFactory


def _create(env: Mapping[str, str]) -> TraceProvider:
    from by_framework_trace_langfuse.provider import from_env

    return from_env(env)


factory = TraceProviderFactory(
    name="langfuse", required_env=("LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY"), create=_create
)

__all__ = ["LangfuseTraceProvider", "factory", "from_env"]


def __getattr__(name: str) -> Any:
    if name in ("LangfuseTraceProvider", "from_env"):
        from by_framework_trace_langfuse import provider

        return getattr(provider, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
