"""The Phoenix provider: the engine's spans as OpenInference spans, batched to the collector."""

from collections.abc import Mapping
from typing import Literal
from urllib.parse import urlsplit

from openinference.semconv.trace import OpenInferenceSpanKindValues, SpanAttributes
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from phoenix.otel import register

from by_framework.backends import Attributes, SpanKind
from by_framework.backends.otel import ChosenIds, OtelTraceProvider

SPAN_KINDS: dict[str, str] = {
    "task": OpenInferenceSpanKindValues.AGENT.value,
    "call_agent": OpenInferenceSpanKindValues.TOOL.value,
    "dispatch_group": OpenInferenceSpanKindValues.CHAIN.value,
    "ask_user": OpenInferenceSpanKindValues.CHAIN.value,
    "span": OpenInferenceSpanKindValues.CHAIN.value,
}
"""The OpenInference span kind of each kind of span."""


def _span_kind(kind: SpanKind, name: str) -> Attributes:
    return {SpanAttributes.OPENINFERENCE_SPAN_KIND: SPAN_KINDS[kind]}


class PhoenixTraceProvider(OtelTraceProvider):
    """Spans to the Phoenix collector at ``endpoint`` (``span_exporter``: elsewhere, say an
    in-memory exporter in tests), in project ``project_name``."""

    def __init__(
        self,
        endpoint: str,
        project_name: str | None = None,
        *,
        span_exporter: SpanExporter | None = None,
    ) -> None:
        endpoint, protocol = collector(endpoint)
        tracer_provider = register(
            endpoint=endpoint,
            protocol=protocol,
            project_name=project_name,
            batch=True,  # export from a background thread, never on the task path
            set_global_tracer_provider=False,
            verbose=False,
            id_generator=ChosenIds(),
        )
        if span_exporter is not None:
            tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
        super().__init__("phoenix", tracer_provider, _span_kind)


def collector(endpoint: str) -> tuple[str, Literal["grpc", "http/protobuf"]]:
    """Where spans go, and how, from ``PHOENIX_COLLECTOR_ENDPOINT``: a Phoenix base URL (spans
    to ``/v1/traces`` over OTLP/HTTP), a full ``.../v1/traces`` URL, or port 4317 (OTLP/gRPC)."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"PHOENIX_COLLECTOR_ENDPOINT {endpoint!r} is not an http(s) URL; "
            "use e.g. http://localhost:6006"
        )
    if parts.port == 4317:
        return endpoint, "grpc"
    if parts.path.rstrip("/").endswith("/v1/traces"):
        return endpoint, "http/protobuf"
    return endpoint.rstrip("/") + "/v1/traces", "http/protobuf"


def from_env(env: Mapping[str, str]) -> PhoenixTraceProvider:
    return PhoenixTraceProvider(
        env["PHOENIX_COLLECTOR_ENDPOINT"], env.get("PHOENIX_PROJECT_NAME") or None
    )
