"""The engine side of tracing: one ``Span`` fanned out to every enabled provider.

A provider that raises is logged and skipped, never passed on: tracing must not fail a task.
"""

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from types import TracebackType

from by_framework.tracing.ids import new_span_id, trace_id_of
from by_framework.tracing.port import (
    Attributes,
    ProviderSpan,
    SpanIds,
    SpanKind,
    TraceProvider,
)

log = logging.getLogger("by_framework.tracing")


class Tracer:
    """The providers enabled in this worker (at least one: with none, the worker has no
    tracer at all and pays one ``None`` check per span site)."""

    def __init__(self, providers: Sequence[TraceProvider]) -> None:
        if not providers:
            raise ValueError("a Tracer needs at least one provider")
        self.providers = tuple(providers)
        self._reported: set[tuple[str, str]] = set()

    @property
    def names(self) -> list[str]:
        return [provider.name for provider in self.providers]

    def start(
        self,
        kind: SpanKind,
        name: str,
        trace_id: str,
        parent_span_id: str | None = None,
        attributes: Attributes | None = None,
    ) -> "Span":
        """A new span in the trace of a header's ``trace_id`` (any string: see ``trace_id_of``),
        under ``parent_span_id`` when given."""
        ids = SpanIds(trace_id_of(trace_id), new_span_id(), parent_span_id)
        return self._open(kind, name, ids, attributes or {})

    def _open(self, kind: SpanKind, name: str, ids: SpanIds, attributes: Attributes) -> "Span":
        handles: list[tuple[str, ProviderSpan]] = []
        for provider in self.providers:
            try:
                handles.append((provider.name, provider.start_span(kind, name, ids, attributes)))
            except Exception as exc:
                self.failed(provider.name, "start_span", exc)
        return Span(self, ids, handles)

    def failed(self, provider: str, operation: str, exc: Exception) -> None:
        """Log a provider's fault: the first of each kind as a warning, later ones at debug."""
        level = logging.DEBUG if (provider, operation) in self._reported else logging.WARNING
        self._reported.add((provider, operation))
        log.log(level, "tracing provider %s failed in %s: %r", provider, operation, exc)

    def shutdown(self) -> None:
        """Flush and release every provider (blocking: run it off the event loop)."""
        for provider in self.providers:
            try:
                provider.shutdown()
            except Exception as exc:
                self.failed(provider.name, "shutdown", exc)


class Span:
    """One span, as every provider records it. Ends once: later ``end`` calls do nothing.

    As a context manager it ends when the block does, failed if the block raised (a
    cancellation ends it with ``byf.status`` "cancelled")."""

    __slots__ = ("_ended", "_handles", "_tracer", "ids")

    def __init__(
        self, tracer: Tracer, ids: SpanIds, handles: list[tuple[str, ProviderSpan]]
    ) -> None:
        self._tracer = tracer
        self._handles = handles
        self._ended = False
        self.ids = ids

    @property
    def trace_id(self) -> str:
        return self.ids.trace_id

    @property
    def span_id(self) -> str:
        return self.ids.span_id

    @property
    def ended(self) -> bool:
        return self._ended

    def child(self, kind: SpanKind, name: str, attributes: Attributes | None = None) -> "Span":
        """A span under this one, in the same trace."""
        ids = SpanIds(self.ids.trace_id, new_span_id(), self.ids.span_id)
        return self._tracer._open(kind, name, ids, attributes or {})

    def set(self, attributes: Attributes) -> None:
        for provider, handle in self._handles:
            try:
                handle.set_attributes(attributes)
            except Exception as exc:
                self._tracer.failed(provider, "set_attributes", exc)

    def end(self, error: str | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        for provider, handle in self._handles:
            try:
                handle.end(error)
            except Exception as exc:
                self._tracer.failed(provider, "end", exc)

    def __enter__(self) -> "Span":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.end()
        elif isinstance(exc, asyncio.CancelledError):
            self.set({"byf.status": "cancelled"})
            self.end()
        else:
            self.end(f"{type(exc).__name__}: {exc}")


@contextlib.contextmanager
def child_span(
    parent: Span | None, kind: SpanKind, name: str, attributes: Attributes | None = None
) -> Iterator[Span | None]:
    """A span under ``parent`` for the block (ended as ``Span`` ends it), or None when there is
    no parent: the worker does not trace, and nothing is recorded."""
    if parent is None:
        yield None
        return
    with parent.child(kind, name, attributes) as span:
        yield span
