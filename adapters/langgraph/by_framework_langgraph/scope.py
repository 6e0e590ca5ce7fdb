"""What a graph run knows of its task: the AgentContext and the task's remote calls, reachable
from any node or tool of the graph through a context variable the worker sets."""

import contextvars
from dataclasses import dataclass
from typing import TYPE_CHECKING

from by_framework import AgentContext

if TYPE_CHECKING:
    from by_framework_langgraph.remote import RemoteCalls, Turns


@dataclass(slots=True)
class RunScope:
    context: AgentContext
    calls: "RemoteCalls"
    turns: "Turns"


_scope: contextvars.ContextVar[RunScope | None] = contextvars.ContextVar(
    "by_framework_langgraph_scope", default=None
)


def current_scope() -> RunScope:
    scope = _scope.get()
    if scope is None:
        raise RuntimeError(
            "no by-framework task is running here: remote agent tools, ask_user_tool and "
            "current_context() work inside a graph served by LangGraphWorker"
        )
    return scope


def current_context() -> AgentContext:
    """The AgentContext of the task whose graph run calls this (from a node or a tool): emit
    artifacts or states, read ``session_id``, ``user_code``, ..."""
    return current_scope().context


def enter(scope: RunScope) -> contextvars.Token[RunScope | None]:
    return _scope.set(scope)


def leave(token: contextvars.Token[RunScope | None]) -> None:
    _scope.reset(token)
