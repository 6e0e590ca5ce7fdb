"""The Langfuse provider: the engine's spans as Langfuse observations.

The Langfuse client exports over OTLP from its own batch processor, attached here to a tracer
provider of ours (never the global one) so that spans carry the ids the engine chose.
"""

from collections.abc import Mapping

from langfuse import Langfuse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

from by_framework.backends import Attributes, SpanKind
from by_framework.backends.otel import ChosenIds, OtelTraceProvider

OBSERVATION_TYPES: dict[str, str] = {
    "task": "agent",
    "call_agent": "tool",
    "dispatch_group": "chain",
    "ask_user": "event",
    "span": "span",
}
"""The Langfuse observation type of each kind of span."""


def _observation(kind: SpanKind, name: str) -> Attributes:
    return {"langfuse.observation.type": OBSERVATION_TYPES[kind]}


def _every_span(span: ReadableSpan) -> bool:
    """Export all: only the engine's spans reach this tracer provider."""
    return True


class LangfuseTraceProvider(OtelTraceProvider):
    """Spans to the Langfuse server at ``base_url`` (``span_exporter``: elsewhere, say an
    in-memory exporter in tests)."""

    def __init__(
        self,
        public_key: str,
        secret_key: str,
        base_url: str | None = None,
        *,
        span_exporter: SpanExporter | None = None,
    ) -> None:
        tracer_provider = TracerProvider(
            id_generator=ChosenIds(), resource=Resource.create({"service.name": "by-framework"})
        )
        self.client = Langfuse(
            public_key=public_key,
            secret_key=secret_key,
            base_url=base_url,
            tracer_provider=tracer_provider,
            should_export_span=_every_span,
            span_exporter=span_exporter,
        )
        super().__init__("langfuse", tracer_provider, _observation)

    def shutdown(self) -> None:
        if self.closed:
            return  # a second Langfuse shutdown would wait forever on its stopped threads
        try:
            super().shutdown()
        finally:
            self.client.shutdown()


def from_env(env: Mapping[str, str]) -> LangfuseTraceProvider:
    return LangfuseTraceProvider(
        env["LANGFUSE_PUBLIC_KEY"],
        env["LANGFUSE_SECRET_KEY"],
        env.get("LANGFUSE_BASE_URL") or env.get("LANGFUSE_HOST") or None,
    )
