"""What the tracing tests share: a worker with a given tracer, and spans read back."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from by_framework import GatewayWorker, Settings, WorkerRunner
from by_framework.redis.engine import RedisEngine
from by_framework.tracing import TraceProvider, Tracer


@contextlib.asynccontextmanager
async def traced_worker(
    worker: GatewayWorker, settings: Settings, providers: Sequence[TraceProvider]
) -> AsyncIterator[WorkerRunner]:
    """A worker in this event loop tracing to ``providers`` (the environment's are replaced)."""
    runner = WorkerRunner(worker, RedisEngine.connect(settings), settings)
    runner.tracer = Tracer(providers)
    serving = asyncio.create_task(runner.run())
    starting = asyncio.create_task(runner.wait_started())
    await asyncio.wait({serving, starting}, return_when=asyncio.FIRST_COMPLETED)
    if serving.done():
        starting.cancel()
        serving.result()
    try:
        yield runner
    finally:
        runner.request_stop()
        await serving


class SpanView:
    """A span reduced to what the tests check, from any exporter's format."""

    def __init__(
        self,
        name: str,
        trace_id: str,
        span_id: str,
        parent_span_id: str | None,
        attributes: dict[str, Any],
        error: str | None,
    ) -> None:
        self.name = name
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_span_id = parent_span_id
        self.attributes = attributes
        self.error = error

    def __repr__(self) -> str:
        return f"<{self.name} {self.span_id} under {self.parent_span_id}>"


def from_readable(spans: Iterable[Any]) -> list[SpanView]:
    """SpanViews of OpenTelemetry SDK ``ReadableSpan``s (an in-memory exporter's)."""
    views = []
    for span in spans:
        parent = f"{span.parent.span_id:016x}" if span.parent is not None else None
        error = span.status.description if span.status.status_code.name == "ERROR" else None
        views.append(
            SpanView(
                span.name,
                f"{span.context.trace_id:032x}",
                f"{span.context.span_id:016x}",
                parent,
                dict(span.attributes or {}),
                error,
            )
        )
    return views


def by_name(spans: Iterable[SpanView]) -> dict[str, SpanView]:
    named: dict[str, SpanView] = {}
    for span in spans:
        assert span.name not in named, f"two spans named {span.name}"
        named[span.name] = span
    return named
