"""The ``TraceProvider`` port: what the engine asks of a tracing backend, and the no-op default.

The engine chooses every id itself (``SpanIds``): the trace id comes from the message header's
``trace_id`` and each span id is drawn once, so that several providers enabled together record
the same span under the same id, and a sub-call's header can name its parent span whichever
provider is listening on the other worker.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

AttributeValue = str | bool | int | float | Sequence[str]
Attributes = Mapping[str, AttributeValue]

SpanKind = Literal["task", "call_agent", "dispatch_group", "ask_user", "span"]
"""``task``: one run of a task on a worker; ``call_agent``, ``dispatch_group``, ``ask_user``:
the task's calls of those names; ``span``: any other span an agent opens itself."""


@dataclass(frozen=True, slots=True)
class SpanIds:
    """W3C trace-context ids in lowercase hex: ``trace_id`` 32 digits, span ids 16."""

    trace_id: str
    span_id: str
    parent_span_id: str | None = None


class ProviderSpan(Protocol):
    """One span as a provider records it."""

    def set_attributes(self, attributes: Attributes) -> None: ...

    def end(self, error: str | None) -> None:
        """End the span; ``error``: the span failed, with this message."""


@runtime_checkable
class TraceProvider(Protocol):
    """A tracing backend. Its calls sit on the task path: they must only record and queue
    (export happens in the background) and never block on the network."""

    name: str

    def start_span(
        self, kind: SpanKind, name: str, ids: SpanIds, attributes: Attributes
    ) -> ProviderSpan: ...

    def shutdown(self) -> None:
        """Export what is queued (bounded by the provider's own timeout) and release it."""


class _NoopSpan:
    def set_attributes(self, attributes: Attributes) -> None:
        pass

    def end(self, error: str | None) -> None:
        pass


NOOP_SPAN: ProviderSpan = _NoopSpan()


class NoopTraceProvider:
    """Records nothing: the reference implementation of the port, and a base for providers
    that trace only some kinds of span."""

    name = "noop"

    def start_span(
        self, kind: SpanKind, name: str, ids: SpanIds, attributes: Attributes
    ) -> ProviderSpan:
        return NOOP_SPAN

    def shutdown(self) -> None:
        pass


class CreateProvider(Protocol):
    def __call__(self, env: Mapping[str, str]) -> TraceProvider: ...


@dataclass(frozen=True, slots=True)
class TraceProviderFactory:
    """What a tracing package declares in the entry-point group ``by_framework.tracing``.

    The provider is enabled at worker start only when every variable of ``required_env`` is
    set (non-empty); ``create`` then builds it from the environment.
    """

    name: str
    required_env: tuple[str, ...]
    create: CreateProvider
