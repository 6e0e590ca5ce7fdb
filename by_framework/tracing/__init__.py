"""Tracing: the ``TraceProvider`` port, the providers a worker discovers, and its spans.

Providers come from packages (``by-framework-trace-langfuse``, ``by-framework-trace-phoenix``)
and are enabled at worker start by their environment variables. With none enabled a worker has
no tracer and records nothing. See ``docs/tracing.md``.
"""

from by_framework.tracing.discovery import ENTRY_POINT_GROUP, discover_tracer
from by_framework.tracing.ids import trace_id_of
from by_framework.tracing.port import (
    NOOP_SPAN,
    Attributes,
    AttributeValue,
    CreateProvider,
    NoopTraceProvider,
    ProviderSpan,
    SpanIds,
    SpanKind,
    TraceProvider,
    TraceProviderFactory,
)
from by_framework.tracing.tracer import Span, Tracer, child_span

__all__ = [
    "ENTRY_POINT_GROUP",
    "NOOP_SPAN",
    "AttributeValue",
    "Attributes",
    "CreateProvider",
    "NoopTraceProvider",
    "ProviderSpan",
    "Span",
    "SpanIds",
    "SpanKind",
    "TraceProvider",
    "TraceProviderFactory",
    "Tracer",
    "child_span",
    "discover_tracer",
    "trace_id_of",
]
