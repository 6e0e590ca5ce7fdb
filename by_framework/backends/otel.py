"""The backend API of trace providers on OpenTelemetry's SDK (Langfuse, Phoenix, any OTLP
collector): a ``TraceProvider`` over a ``TracerProvider`` built with ``ChosenIds()``. Needs the
core's ``[otel]`` extra (``opentelemetry-sdk``)."""

from by_framework.tracing.otel import ChosenIds, OtelTraceProvider

__all__ = ["ChosenIds", "OtelTraceProvider"]
