"""Providers with in-memory exporters: the spans a worker exported, without any server."""

import uuid
from collections.abc import Iterator

import pytest
from by_framework_trace_langfuse import LangfuseTraceProvider
from by_framework_trace_phoenix import PhoenixTraceProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from by_framework.tracing import TraceProvider

PROVIDERS = ["langfuse", "phoenix"]


def in_memory(name: str, exporter: InMemorySpanExporter) -> TraceProvider:
    """A real provider of that name whose spans go to ``exporter``. Langfuse clients are
    singletons per public key: each gets its own key."""
    if name == "langfuse":
        key = f"pk-{uuid.uuid4().hex}"
        return LangfuseTraceProvider(key, "sk", "http://127.0.0.1:9", span_exporter=exporter)
    return PhoenixTraceProvider("http://127.0.0.1:9/v1/traces", "tests", span_exporter=exporter)


@pytest.fixture(params=PROVIDERS)
def provider_and_spans(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[TraceProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = in_memory(request.param, exporter)
    yield provider, exporter
    provider.shutdown()
