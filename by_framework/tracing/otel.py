"""A ``TraceProvider`` on an OpenTelemetry SDK ``TracerProvider``: the common ground of the
tracing packages (Langfuse and Phoenix both take OTLP spans).

Needs ``opentelemetry-sdk``, which the core does not install: the tracing packages bring it.

The engine picks every id (see ``port.py``); the SDK draws them from the tracer provider's id
generator, so the provider must be built with ``ChosenIds()``, which hands the SDK the engine's
ids while a span starts and random ones at any other time.
"""

from collections.abc import Callable
from contextvars import ContextVar

from opentelemetry import context as otel_context
from opentelemetry import trace as trace_api
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.trace import Status, StatusCode

from by_framework.tracing.port import Attributes, ProviderSpan, SpanIds, SpanKind

FLUSH_TIMEOUT_MS = 5_000
"""How long a worker's shutdown waits for a provider to export what it queued."""

_chosen: ContextVar[tuple[int, int] | None] = ContextVar("byf_chosen_ids", default=None)


class ChosenIds(IdGenerator):
    """The ids the engine chose for the span being started, random ones otherwise."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()

    def generate_span_id(self) -> int:
        chosen = _chosen.get()
        return chosen[1] if chosen else self._random.generate_span_id()

    def generate_trace_id(self) -> int:
        chosen = _chosen.get()
        return chosen[0] if chosen else self._random.generate_trace_id()


KindAttributes = Callable[[SpanKind, str], Attributes]
"""The provider's own attributes for a span of a kind and name (say, its observation type)."""


class OtelTraceProvider:
    """Spans on ``tracer_provider`` (built with ``ChosenIds()``), under the instrumentation
    scope ``by_framework``, with ``kind_attributes`` added to the engine's attributes."""

    def __init__(
        self,
        name: str,
        tracer_provider: TracerProvider,
        kind_attributes: KindAttributes | None = None,
    ) -> None:
        if not isinstance(tracer_provider.id_generator, ChosenIds):
            raise ValueError(
                "the TracerProvider must be built with id_generator=ChosenIds(), so that spans "
                "take the ids the engine chose"
            )
        self.name = name
        self.tracer_provider = tracer_provider
        self._tracer = tracer_provider.get_tracer("by_framework")
        self._kind_attributes = kind_attributes
        self.closed = False

    def start_span(
        self, kind: SpanKind, name: str, ids: SpanIds, attributes: Attributes
    ) -> ProviderSpan:
        trace_id = int(ids.trace_id, 16)
        parent = otel_context.Context()  # a new trace unless the header names a parent span
        if ids.parent_span_id is not None:
            remote = trace_api.SpanContext(
                trace_id,
                int(ids.parent_span_id, 16),
                is_remote=True,
                trace_flags=trace_api.TraceFlags(trace_api.TraceFlags.SAMPLED),
            )
            parent = trace_api.set_span_in_context(trace_api.NonRecordingSpan(remote), parent)
        if self._kind_attributes is not None:
            attributes = {**attributes, **self._kind_attributes(kind, name)}
        token = _chosen.set((trace_id, int(ids.span_id, 16)))
        try:
            span = self._tracer.start_span(name, context=parent, attributes=attributes)
        finally:
            _chosen.reset(token)
        if kind == "task":
            # The task's body runs in the asyncio task that starts its span, in a context of
            # its own: spans its code opens through any OpenTelemetry tracer (LLM and framework
            # instrumentation) go under the task's span. The context ends with the asyncio task.
            otel_context.attach(trace_api.set_span_in_context(span))
        return _OtelSpan(span)

    def shutdown(self) -> None:
        """Export what is queued (waiting ``FLUSH_TIMEOUT_MS`` at most) and stop; once."""
        if self.closed:
            return
        self.closed = True
        self.tracer_provider.force_flush(FLUSH_TIMEOUT_MS)
        self.tracer_provider.shutdown()


class _OtelSpan:
    __slots__ = ("_span",)

    def __init__(self, span: trace_api.Span) -> None:
        self._span = span

    def set_attributes(self, attributes: Attributes) -> None:
        self._span.set_attributes(attributes)

    def end(self, error: str | None) -> None:
        if error is not None:
            self._span.set_status(Status(StatusCode.ERROR, error))
        self._span.end()
