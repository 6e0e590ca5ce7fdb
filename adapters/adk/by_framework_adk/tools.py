"""Remote agents as ADK tools: a tool call becomes a sub-call of the by-framework task that runs
the ADK agent, journaled like any other (docs/execution.md).

Sub-calls are numbered in the order they are sent, and a re-run replays them by that number, so
the order must not depend on timing. ADK runs the calls of one model turn concurrently, so the
tools here send a turn's sub-calls together, in the model's order, whichever tool call gets there
first: one remote call alone is a ``call_agent``; several (several tool calls, or a batch tool
call) are one ``dispatch_group`` whose results each tool call takes its share of.
"""

import asyncio
import contextlib
import re
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from typing import Any

from google.adk.events import Event
from google.adk.tools import FunctionTool, ToolContext
from pydantic import BaseModel, TypeAdapter, ValidationError

from by_framework import (
    AgentContext,
    AgentTaskResult,
    ByFrameworkError,
    ReplayDivergedError,
    TaskCancelledError,
    TaskTimeoutError,
)

Entry = dict[str, Any]
"""One sub-call's outcome: ``{"status", "content", "error"}``."""


class _Run:
    """What the tools of one ADK run share: the task's context and the turns already sent."""

    def __init__(self, context: AgentContext) -> None:
        self.context = context
        self.turns: dict[str, asyncio.Future[dict[str, list[Entry] | ValueError]]] = {}


_RUN: ContextVar[_Run | None] = ContextVar("by_framework_adk_run", default=None)


@contextlib.contextmanager
def task_scope(context: AgentContext) -> Iterator[None]:
    """Make ``context`` the current task for the ADK code run inside the block (the worker does
    this around each run)."""
    token = _RUN.set(_Run(context))
    try:
        yield
    finally:
        _RUN.reset(token)


def current_context() -> AgentContext:
    """The ``AgentContext`` of the by-framework task running this ADK code: for tools and
    callbacks of an agent served by ``AdkWorker`` (stream, emit states, call agents)."""
    return _current_run().context


def _current_run() -> _Run:
    run = _RUN.get()
    if run is None:
        raise RuntimeError(
            "no by-framework task here: by_framework_adk tools work only while an AdkWorker runs "
            "the agent (or inside by_framework_adk.task_scope(context))"
        )
    return run


class AgentCall(BaseModel):
    """One call of the batch tool: which agent, and what to send it."""

    agent: str
    content: str


class _SubCallTool(FunctionTool):
    """A tool whose calls are sub-calls: it says which, and how to answer from their outcomes."""

    timeout: float | None = None

    def sub_calls(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        """The sub-calls (``target_agent_type``, ``content``) a call with ``args`` makes; raises
        ValueError for arguments that make none."""
        raise NotImplementedError

    def answer(self, args: dict[str, Any], entries: list[Entry]) -> dict[str, Any]:
        """The tool's response to the model, from the outcomes of its sub-calls."""
        raise NotImplementedError

    async def _respond(self, tool_context: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
        outcome = await _outcome(self, tool_context, args)
        if isinstance(outcome, ValueError):
            return {"status": "failed", "error": str(outcome)}
        return self.answer(args, outcome)


class RemoteAgentTool(_SubCallTool):
    """Asks one remote agent type and answers with its reply (see ``remote_agent_tool``)."""

    def __init__(self, target: str, *, name: str, description: str, timeout: float | None) -> None:
        async def call(request: str, tool_context: ToolContext) -> dict[str, Any]:
            return await self._respond(tool_context, {"request": request})

        call.__name__ = call.__qualname__ = name
        call.__doc__ = description
        super().__init__(call)
        self.target = target
        self.timeout = timeout

    def sub_calls(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        request = args.get("request")
        if not isinstance(request, str):
            raise ValueError(f"{self.name} takes one text argument, 'request'")
        return [{"target_agent_type": self.target, "content": request}]

    def answer(self, args: dict[str, Any], entries: list[Entry]) -> dict[str, Any]:
        return _reply(entries[0])


class RemoteBatchTool(_SubCallTool):
    """Asks several remote agents at once and answers with every reply (see
    ``remote_batch_tool``)."""

    _calls = TypeAdapter(list[AgentCall])

    def __init__(
        self,
        agents: Sequence[str] | None,
        *,
        name: str,
        description: str,
        timeout: float | None,
    ) -> None:
        async def call(calls: list[AgentCall], tool_context: ToolContext) -> dict[str, Any]:
            given = [c.model_dump() if isinstance(c, AgentCall) else c for c in calls]
            return await self._respond(tool_context, {"calls": given})

        call.__name__ = call.__qualname__ = name
        call.__doc__ = description
        super().__init__(call)
        self.agents = None if agents is None else list(agents)
        self.timeout = timeout

    def sub_calls(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            calls = self._calls.validate_python(args.get("calls"))
        except ValidationError as exc:
            raise ValueError(f"{self.name} takes 'calls': a list of {{agent, content}}") from exc
        if not calls:
            raise ValueError(f"{self.name} needs at least one call")
        unknown = sorted({c.agent for c in calls} - set(self.agents or {c.agent for c in calls}))
        if unknown:
            raise ValueError(f"{self.name} cannot call {unknown}; it calls {self.agents}")
        return [{"target_agent_type": c.agent, "content": c.content} for c in calls]

    def answer(self, args: dict[str, Any], entries: list[Entry]) -> dict[str, Any]:
        agents = [call["agent"] for call in args["calls"]]
        return {
            "replies": [{"agent": a, **_reply(e)} for a, e in zip(agents, entries, strict=True)]
        }


def remote_agent_tool(
    agent_type: str,
    description: str | None = None,
    *,
    name: str | None = None,
    timeout: float | None = None,
) -> RemoteAgentTool:
    """An ADK tool that asks the agent type ``agent_type`` (served by any worker, of any
    framework) with the model's ``request`` text, waits for its reply without holding a slot,
    and gives the model ``{"status": "completed", "reply": ...}`` (or ``"failed"`` and an
    ``error``). ``name`` defaults to the agent type made a valid function name; ``timeout`` (s)
    bounds the wait (the remote agent goes on)."""
    tool_name = name or _function_name(agent_type)
    return RemoteAgentTool(
        agent_type,
        name=tool_name,
        description=description
        or f"Ask the '{agent_type}' agent. Send the whole request as text; it answers with its "
        "reply.",
        timeout=timeout,
    )


def remote_batch_tool(
    agents: Sequence[str] | None = None,
    description: str | None = None,
    *,
    name: str = "call_agents",
    timeout: float | None = None,
) -> RemoteBatchTool:
    """An ADK tool that asks several agents in parallel (one ``dispatch_group``): the model
    passes ``calls``, a list of ``{"agent", "content"}``, and gets ``{"replies": [...]}`` in the
    same order. ``agents`` limits (and tells the model) which agent types it may call."""
    if description is None:
        which = f" among {', '.join(agents)}" if agents else ""
        description = (
            f"Ask several agents{which} at once. Pass 'calls', a list of {{agent, content}}; "
            "the replies come back in the same order."
        )
    return RemoteBatchTool(agents, name=name, description=description, timeout=timeout)


# One model turn's sub-calls, sent together


async def _outcome(
    tool: _SubCallTool, tool_context: ToolContext, args: dict[str, Any]
) -> list[Entry] | ValueError:
    """This tool call's share of its turn's sub-calls, sending the turn if nobody has yet."""
    run = _current_run()
    call_id = tool_context.function_call_id or ""
    turn = _turn_of(tool, tool_context, call_id)
    if turn is None:  # not called by a model (e.g. a test calling the tool directly)
        return (await _send(run.context, [(call_id, tool, args)]))[call_id]
    event_id, plan = turn
    sending = run.turns.get(event_id)
    if sending is None:
        sending = run.turns[event_id] = asyncio.get_running_loop().create_future()
        try:
            sending.set_result(await _send(run.context, plan))
        except asyncio.CancelledError:
            sending.cancel()
            raise
        except BaseException as exc:
            sending.set_exception(exc)
            sending.exception()  # retrieved: the tool calls waiting on it raise it themselves
            raise
    shares = await sending
    if call_id not in shares:  # a tool the turn's plan could not see (given through a toolset)
        return (await _send(run.context, [(call_id, tool, args)]))[call_id]
    return shares[call_id]


def _turn_of(
    tool: _SubCallTool, tool_context: ToolContext, call_id: str
) -> tuple[str, list[tuple[str, _SubCallTool, dict[str, Any]]]] | None:
    """The model event holding this call, and its sub-call tool calls in the model's order.

    The turn's other sub-call tools are found among the agent's ``tools``; one given through a
    toolset is not, and its call is sent on its own, after the turn's (see docs/adk.md)."""
    if not call_id:
        return None
    event = _event_with_call(tool_context.session.events, call_id)
    if event is None:
        return None
    agent = tool_context.get_invocation_context().agent
    tools = {t.name: t for t in getattr(agent, "tools", ()) if isinstance(t, _SubCallTool)}
    tools[tool.name] = tool  # this call is always in its own plan
    plan = [
        (call.id or "", tools[call.name], dict(call.args or {}))
        for call in event.get_function_calls()
        if call.name in tools
    ]
    return event.id, plan


def _event_with_call(events: list[Event], call_id: str) -> Event | None:
    for event in reversed(events):
        if any(call.id == call_id for call in event.get_function_calls()):
            return event
    return None


async def _send(
    context: AgentContext, plan: list[tuple[str, _SubCallTool, dict[str, Any]]]
) -> dict[str, list[Entry] | ValueError]:
    """Send the sub-calls of ``plan`` (tool calls in order) and wait for all their outcomes."""
    shares: dict[str, list[Entry] | ValueError] = {}
    spans: dict[str, slice] = {}
    calls: list[dict[str, Any]] = []
    for call_id, tool, args in plan:
        try:
            made = tool.sub_calls(args)
        except ValueError as exc:
            shares[call_id] = exc
            continue
        spans[call_id] = slice(len(calls), len(calls) + len(made))
        calls.extend(made)
    if not calls:
        return shares
    tools = [tool for call_id, tool, _ in plan if call_id in spans]
    limits = [tool.timeout for tool in tools if tool.timeout is not None]
    timeout = max(limits) if len(limits) == len(tools) else None  # None: one waits forever
    entries = await _sub_calls(context, calls, timeout)
    for call_id, span in spans.items():
        shares[call_id] = entries[span]
    return shares


async def _sub_calls(
    context: AgentContext, calls: list[dict[str, Any]], timeout: float | None
) -> list[Entry]:
    """Every call's outcome, in order: one call is a ``call_agent``, several are one group."""
    try:
        if len(calls) == 1:
            call = calls[0]
            reply = await context.call_agent(
                call["target_agent_type"], call["content"], timeout=timeout
            )
            assert isinstance(reply, AgentTaskResult)
            return [{"status": reply.status.value, "content": reply.content, "error": reply.error}]
        group = await context.dispatch_group(calls)
        results = await context.collect_group_results(group["task_group_id"], timeout=timeout)
        return [results[message_id] for message_id in group["message_ids"]]
    except (TaskCancelledError, ReplayDivergedError):
        raise
    except TaskTimeoutError:
        error = f"no reply within {timeout}s; the agents go on"
        return [{"status": "failed", "content": None, "error": error} for _ in calls]
    except ByFrameworkError as exc:
        error = f"{type(exc).__name__}: {exc}"
        return [{"status": "failed", "content": None, "error": error} for _ in calls]


def _reply(entry: Entry) -> dict[str, Any]:
    answer = {"status": entry.get("status"), "reply": entry.get("content")}
    if entry.get("error"):
        answer["error"] = entry["error"]
    return answer


def _function_name(agent_type: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", agent_type)
    return name if re.match(r"[A-Za-z_]", name) else f"agent_{name}"
