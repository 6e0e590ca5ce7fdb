"""Other agents as LangChain tools, and the ledger that keeps their sub-calls durable.

The core journals a task's sub-calls by their position in the run (docs/execution.md): a re-run
that makes the same calls in the same order gets their recorded replies and sends nothing twice.
A graph re-run after a crash does not start from the top, though: it goes on from its last
checkpoint and skips the calls made before it. So every batch of remote calls is written to a
ledger in the graph's checkpointer *before* it is dispatched, at its position in the run. A later
attempt re-issues the earlier positions in order first (the journal answers them without sending
anything), so each batch keeps its numbers, and a tool call finds its batch by its tool call id.
"""

import asyncio
import contextlib
import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import BaseTool, InjectedToolArg, StructuredTool, ToolException
from langgraph.checkpoint.base import BaseCheckpointSaver, empty_checkpoint
from langgraph.types import interrupt
from pydantic import BaseModel, Field, create_model

from by_framework import AgentContext, TaskCancelledError
from by_framework_langgraph.scope import current_scope

log = logging.getLogger("by_framework_langgraph")

LEDGER_KEY = "by_framework_remote_calls"
BATCH_GRACE_SECONDS = 1.0
"""How long a model turn's remote calls wait for the turn's other remote calls to arrive."""


def ledger_thread(message_id: str) -> str:
    return f"by-framework:remote-calls:{message_id}"


@dataclass(slots=True)
class Call:
    key: str  # the tool call id
    target: str
    content: Any


class RemoteCalls:
    """One task's remote calls, across all its runs: ``{"runs": {run: [batch, ...]}}`` where a
    batch is ``{"calls": [{key, target, content}], "group": id, "ids": [child ids]}``."""

    def __init__(self, context: AgentContext, saver: BaseCheckpointSaver, run: int) -> None:
        self._context = context
        self._saver = saver
        self._run = run
        self._doc: dict[str, Any] | None = None
        self._issued: dict[int, dict[str, Any]] = {}  # this attempt: position -> dispatch answer
        self._lock = asyncio.Lock()
        self._collecting: dict[str, asyncio.Future[dict[str, dict[str, Any]]]] = {}
        self.touched = False

    def _config(self) -> dict[str, Any]:
        return {
            "configurable": {
                "thread_id": ledger_thread(self._context.message_id),
                "checkpoint_ns": "",
            }
        }

    async def load(self) -> dict[str, Any]:
        if self._doc is None:
            found = await self._saver.aget_tuple(self._config())  # type: ignore[arg-type]
            stored = found.metadata.get(LEDGER_KEY) if found is not None else None
            self._doc = stored if isinstance(stored, dict) and stored else {"runs": {}}
            self.touched = True
        return self._doc

    async def _save(self) -> None:
        metadata = {LEDGER_KEY: self._doc}
        await self._saver.aput(self._config(), empty_checkpoint(), metadata, {})  # type: ignore[arg-type]

    async def delete(self) -> None:
        """Forget the ledger: the task's last run is over."""
        await self._saver.adelete_thread(ledger_thread(self._context.message_id))

    def known(self, key: str) -> tuple[int, int, int] | None:
        """(run, position, index) of a tool call already in the ledger."""
        assert self._doc is not None
        for run, batches in self._doc["runs"].items():
            for position, batch in enumerate(batches):
                for index, call in enumerate(batch["calls"]):
                    if call["key"] == key:
                        return int(run), position, index
        return None

    async def call(self, calls: list[Call]) -> list[dict[str, Any]]:
        """Each call's child result ``{"status", "content", "data", "error"}``, in order; new
        calls are dispatched together, as one group."""
        async with self._lock:
            doc = await self.load()
            where = {call.key: self.known(call.key) for call in calls}
            new = [call for call in calls if where[call.key] is None]
            if new:
                batches = doc["runs"].setdefault(str(self._run), [])
                batches.append({"calls": [asdict(c) for c in new], "group": None, "ids": None})
                await self._save()  # before dispatch: the position is this batch's for good
                for index, call in enumerate(new):
                    where[call.key] = (self._run, len(batches) - 1, index)
            groups: dict[tuple[int, int], tuple[str, list[str]]] = {}
            for run, position, _ in where.values():  # type: ignore[misc]
                if (run, position) not in groups:
                    groups[run, position] = await self._group(run, position)
        results = []
        for call in calls:
            run, position, index = where[call.key]  # type: ignore[misc]
            group_id, children = groups[run, position]
            collected = await self._collect(group_id)
            results.append(collected[children[index]])
        return results

    async def _group(self, run: int, position: int) -> tuple[str, list[str]]:
        assert self._doc is not None
        batches = self._doc["runs"][str(run)]
        if run != self._run:  # an earlier run (before an ask_user): its group is recorded
            batch = batches[position]
            if batch["group"] is None:
                raise ToolException(
                    "the reply of this remote call was lost when its worker died; ask again"
                )
            return batch["group"], batch["ids"]
        recorded = False
        for earlier in range(position + 1):  # every position up to this one, in order
            if earlier in self._issued:
                continue
            batch = batches[earlier]
            answer = await self._context.dispatch_group(
                [
                    {
                        "target_agent_type": call["target"],
                        "content": call["content"],
                        "extra_payload": {"langgraph_tool_call_id": call["key"]},
                    }
                    for call in batch["calls"]
                ]
            )
            self._issued[earlier] = answer
            if batch["group"] is None:
                batch["group"], batch["ids"] = answer["task_group_id"], answer["message_ids"]
                recorded = True
        if recorded:
            await self._save()
        answer = self._issued[position]
        return answer["task_group_id"], answer["message_ids"]

    async def _collect(self, group_id: str) -> dict[str, dict[str, Any]]:
        """One wait per group, shared by the tool calls in it."""
        waiting = self._collecting.get(group_id)
        if waiting is None:
            waiting = asyncio.ensure_future(self._context.collect_group_results(group_id))
            self._collecting[group_id] = waiting
        return await asyncio.shield(waiting)

    async def close(self) -> None:
        for waiting in self._collecting.values():
            if not waiting.done():
                waiting.cancel()
        for waiting in self._collecting.values():
            with contextlib.suppress(BaseException):
                await waiting


@dataclass(slots=True)
class _Turn:
    order: list[str]  # the turn's remote tool call ids, in the model's order
    answered: set[str]
    arrived: dict[str, tuple[Call, asyncio.Future[dict[str, Any]]]] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    flushing: asyncio.Task[None] | None = None


class Turns:
    """Gathers the remote tool calls of one model turn (the tool node runs them concurrently)
    and sends them as one group, in the order the model made them."""

    def __init__(self, calls: RemoteCalls) -> None:
        self._calls = calls
        self._open: dict[str, _Turn] = {}
        self._flushes: set[asyncio.Task[None]] = set()
        self._direct = 0

    async def close(self) -> None:
        for task in self._flushes:
            task.cancel()
        for task in list(self._flushes):
            with contextlib.suppress(BaseException):
                await task

    def direct_key(self, name: str, args: dict[str, Any]) -> str:
        """A key for a remote tool called outside a tool node (no tool call id)."""
        self._direct += 1
        return f"direct:{name}:{json.dumps(args, sort_keys=True, default=str)}:{self._direct}"

    async def call(
        self, call: Call, turn_key: str | None, order: list[str], answered: set[str]
    ) -> dict[str, Any]:
        if turn_key is None:
            (result,) = await self._calls.call([call])
            return result
        turn = self._open.get(turn_key)
        if turn is None:
            turn = self._open[turn_key] = _Turn(order, answered)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        turn.arrived[call.key] = (call, future)
        turn.changed.set()
        if turn.flushing is None:
            turn.flushing = asyncio.ensure_future(self._flush(turn_key, turn))
            self._flushes.add(turn.flushing)
            turn.flushing.add_done_callback(self._flushes.discard)
        return await future

    async def _flush(self, turn_key: str, turn: _Turn) -> None:
        try:
            await self._calls.load()
            expected = [
                key
                for key in turn.order
                if key not in turn.answered and self._calls.known(key) is None
            ]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(BATCH_GRACE_SECONDS):
                    while not all(key in turn.arrived for key in expected):
                        turn.changed.clear()
                        await turn.changed.wait()
            del self._open[turn_key]  # later arrivals make a turn of their own
            position = {key: i for i, key in enumerate(turn.order)}
            batch = sorted(turn.arrived.values(), key=lambda item: position.get(item[0].key, 1e9))
            results = await self._calls.call([call for call, _ in batch])
        except Exception as exc:
            self._open.pop(turn_key, None)
            for _, future in turn.arrived.values():
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:
            for _, future in turn.arrived.values():
                future.cancel()
            raise
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


def _turn_of(runtime: Any, tool_call_id: str) -> tuple[str | None, list[str], set[str]]:
    """The model turn a tool call belongs to: its message id, the turn's remote tool call ids in
    order, and the tool calls already answered."""
    state = getattr(runtime, "state", None)
    if isinstance(state, dict):
        messages = state.get("messages")
    else:
        messages = getattr(state, "messages", None)
    if not messages:
        return None, [], set()
    remote = {tool.name for tool in getattr(runtime, "tools", None) or () if _is_remote(tool)}
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    for message in reversed(messages):
        if isinstance(message, AIMessage) and any(
            tc.get("id") == tool_call_id for tc in message.tool_calls
        ):
            order = [
                call_id
                for tc in message.tool_calls
                if (call_id := tc.get("id")) and (not remote or tc["name"] in remote)
            ]
            turn_key = message.id or "|".join(order)
            return turn_key, order, answered
    return None, [], set()


def _is_remote(tool: BaseTool) -> bool:
    return bool((tool.metadata or {}).get("by_framework_remote_agent"))


class RemoteRequest(BaseModel):
    request: str = Field(description="What to ask the agent, in plain words.")


def remote_agent_tool(
    agent_type: str,
    description: str,
    *,
    name: str | None = None,
    args_schema: type[BaseModel] | None = None,
) -> BaseTool:
    """A LangChain tool that runs a task on another agent type (any worker, any machine) and
    returns its reply. The remote calls of one model turn go out as one ``dispatch_group``, in
    the model's order (a lone call is a group of one), and the run waits for them holding no
    slot, as with ``call_agent(wait_for_reply=True)``; each tool call gets its own child's
    reply. A failed child becomes an error message the model sees.

    The model fills ``args_schema`` (default: one string, ``request``, sent as the task's
    content); with a schema of your own the content is the dict of its fields."""
    schema = args_schema or RemoteRequest
    tool_args = create_model(  # the schema plus the runtime the tool node injects
        f"{schema.__name__}WithRuntime",
        __base__=schema,
        runtime=(Annotated[Any, InjectedToolArg], None),
    )
    tool_name = name or agent_type.replace("-", "_")

    async def run_remote(runtime: Any = None, **args: Any) -> str:
        scope = current_scope()
        content = args["request"] if args_schema is None else args
        tool_call_id = getattr(runtime, "tool_call_id", None)
        turn_key: str | None
        order: list[str]
        answered: set[str]
        if tool_call_id is None:
            turn_key, order, answered = None, [], set()
            tool_call_id = scope.turns.direct_key(tool_name, args)
        else:
            turn_key, order, answered = _turn_of(runtime, tool_call_id)
        call = Call(tool_call_id, agent_type, content)
        try:
            result = await scope.turns.call(call, turn_key, order, answered)
        except TaskCancelledError:
            raise
        except ToolException:
            raise
        except Exception as exc:  # e.g. no worker serves the agent type
            raise ToolException(f"could not call agent {agent_type!r}: {exc}") from exc
        if result["status"] != "completed":
            raise ToolException(
                f"agent {agent_type!r} {result['status']}: {result.get('error') or 'no reason'}"
            )
        reply = result.get("content")
        return reply if isinstance(reply, str) else json.dumps(reply, ensure_ascii=False)

    return StructuredTool(
        name=tool_name,
        description=description,
        args_schema=tool_args,
        coroutine=run_remote,
        handle_tool_error=True,
        metadata={"by_framework_remote_agent": agent_type},
    )


class AskUserRequest(BaseModel):
    question: str = Field(description="The question for the user, in plain words.")
    options: list[str] | None = Field(
        default=None, description="Answers the user may pick from, if the choice is closed."
    )


def ask_user_tool(
    name: str = "ask_user",
    description: str = (
        "Ask the user a question and wait for the answer. Use it when you need a decision or "
        "a fact only the user has."
    ),
) -> BaseTool:
    """A LangChain tool with which the model asks the human: ``interrupt`` underneath, so the
    task suspends (``ask_user``) and the answer, sent with ``client.resume``, is the tool's
    result, on whichever worker picks the resume up."""

    async def ask(question: str, options: list[str] | None = None) -> str:
        answer = interrupt({"prompt": question, "options": options})
        return answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False)

    return StructuredTool(
        name=name, description=description, args_schema=AskUserRequest, coroutine=ask
    )
