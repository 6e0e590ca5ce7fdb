"""Plain async callables as agents: ``@agent("echo")`` on ``async def f(content, context)``.

Returning a value completes the task with it as content (an ``AgentTaskResult`` is taken as is,
so ``return await context.ask_user(...)`` suspends); raising fails the task with the error.
``context`` is the full ``AgentContext``. On a resume after ``ask_user`` the callable gets the
``ResumeCommand`` itself as ``content`` (its ``.content`` is the user's answer).
"""

import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from by_framework.protocol import AgentTaskResult, ResumeCommand, TaskCommand
from by_framework.worker.base import GatewayWorker
from by_framework.worker.context import AgentContext
from by_framework.worker.run import run_worker

AgentCallable = Callable[[Any, AgentContext], Awaitable[Any]]
AGENT_TYPE_ATTRIBUTE = "__by_framework_agent_type__"


def agent(agent_type: str) -> Callable[[AgentCallable], AgentCallable]:
    """Mark an async ``f(content, context)`` as the agent ``agent_type``; ``f`` is unchanged."""
    if not isinstance(agent_type, str) or not agent_type.strip():
        raise ValueError(f"@agent needs an agent type name, got {agent_type!r}")

    def mark(fn: AgentCallable) -> AgentCallable:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"@agent({agent_type!r}) wants an async def, got {fn!r}")
        setattr(fn, AGENT_TYPE_ATTRIBUTE, agent_type)
        return fn

    return mark


class CallableWorker(GatewayWorker):
    """Serves async callables, each as its agent type; several share one worker process.

    ``CallableWorker([echo, upper])`` takes callables marked with ``@agent`` (or a mapping agent
    type -> callable). For the CLI, make one at module level and name it:
    ``python -m by_framework --worker-class my_agents:worker``.
    """

    def __init__(self, callables: Iterable[AgentCallable] | dict[str, AgentCallable]) -> None:
        if isinstance(callables, dict):
            by_type = dict(callables)
        else:
            by_type = {}
            for fn in callables:
                agent_type = getattr(fn, AGENT_TYPE_ATTRIBUTE, None)
                if agent_type is None:
                    raise ValueError(
                        f"{fn!r} has no agent type: decorate it with @agent(...) or pass a "
                        "mapping {agent_type: callable}"
                    )
                if agent_type in by_type:
                    raise ValueError(f"two callables serve agent type {agent_type!r}")
                by_type[agent_type] = fn
        if not by_type:
            raise ValueError("CallableWorker needs at least one callable")
        for agent_type, fn in by_type.items():
            if not inspect.iscoroutinefunction(fn):
                raise TypeError(f"agent {agent_type!r}: wants an async def, got {fn!r}")
        self._by_type = by_type

    def get_agent_types(self) -> list[str]:
        return list(self._by_type)

    async def process_command(self, command: TaskCommand, context: AgentContext) -> AgentTaskResult:
        fn = self._by_type[context.current_agent_id]
        content = command if isinstance(command, ResumeCommand) else command.content
        value = await fn(content, context)
        return value if isinstance(value, AgentTaskResult) else AgentTaskResult(content=value)


def serve(*callables: AgentCallable, agent_type: str | None = None, **options: Any) -> None:
    """Run a worker serving the callables until SIGTERM / SIGINT (``run_worker``'s options).
    ``agent_type`` names the agent of a single undecorated callable."""
    if agent_type is not None:
        if len(callables) != 1:
            raise ValueError("agent_type= names the agent of exactly one callable")
        worker = CallableWorker({agent_type: callables[0]})
    else:
        worker = CallableWorker(callables)
    run_worker(worker, **options)
