"""AgentContext: what a running task sees of the engine."""

from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from by_framework.history import SessionHistory
from by_framework.plugins.configs import ConfigSet
from by_framework.plugins.hooks import HookRunner
from by_framework.plugins.model import AgentConfig
from by_framework.protocol import (
    AgentState,
    AgentTaskResult,
    ArtifactEvent,
    AskUserEvent,
    MessageHeader,
    MultitaskStrategy,
    StateChangeEvent,
    StreamChunkEvent,
)
from by_framework.tracing import Span, child_span
from by_framework.worker.event_writer import TaskEvents
from by_framework.worker.subcalls import SubCalls
from by_framework.worker.turns import SessionTurnTaker, Turn
from by_framework.worker.workspace import Workspace


class AgentContext:
    """The per-task runtime: identity of the task, its output stream, its workspace, and its
    sub-calls to other agents."""

    def __init__(
        self,
        header: MessageHeader,
        events: TaskEvents,
        worker_id: str,
        workspace: Workspace,
        *,
        subcalls: SubCalls,
        configs: ConfigSet,
        hooks: HookRunner,
        history: SessionHistory,
        turns: SessionTurnTaker,
    ) -> None:
        self.header = header
        self.worker_id = worker_id
        self._events = events
        self._workspace = workspace
        self._subcalls = subcalls
        self._configs = configs
        self._hooks = hooks
        self._turns = turns
        self.history = history
        """The session's turns recorded so far (``await context.history.list()``, or
        ``async for message in context.history``), from the worker's history store."""
        self.error: BaseException | None = None
        """The exception the task's last attempt raised, if any (for ``on_task_error``)."""

    @property
    def session_id(self) -> str:
        return self.header.session_id

    @property
    def trace_id(self) -> str:
        return self.header.trace_id

    @property
    def message_id(self) -> str:
        return self.header.message_id

    @property
    def parent_message_id(self) -> str | None:
        return self.header.parent_message_id

    @property
    def current_agent_id(self) -> str:
        """The agent type this task runs as."""
        return self.header.target_agent_type

    @property
    def user_code(self) -> str | None:
        return self.header.user_code

    @property
    def metadata(self) -> dict[str, Any]:
        return self.header.metadata

    @property
    def config_version(self) -> int:
        """The version of the plugin configs this task runs with (kept through reloads)."""
        return self._configs.version

    def get_agent_config(self, agent_id: str) -> AgentConfig | None:
        """The plugin-built config (tools, prompts, skills, callbacks, sub-agents) of
        ``agent_id`` as of this task's start, or None if no plugin registered one."""
        return self._configs.configs.get(agent_id)

    @property
    def cancelled(self) -> bool:
        """True once a graceful cancel reached this task: wrap up and return soon (after
        ``cancel_grace_seconds`` it is cancelled outright)."""
        return self._subcalls.cancel_reason is not None

    @property
    def cancel_reason(self) -> str | None:
        return self._subcalls.cancel_reason

    @property
    def span(self) -> Span | None:
        """This task's span when the worker traces (else None): open your own spans under it
        with ``context.span.child("span", name, attributes)`` (a context manager)."""
        return self._subcalls.span

    @property
    def workspace(self) -> Path:
        """This task's own directory, created on first use and removed when the task ends."""
        return self._workspace.path

    async def emit_chunk(self, content: str, kind: Literal["text", "reasoning"] = "text") -> None:
        """Stream a piece of output (``kind="reasoning"`` for thoughts and tool logs)."""
        await self.emit(StreamChunkEvent(content=content, kind=kind))

    async def emit_state(self, state: str | AgentState, detail: str | None = None) -> None:
        await self.emit(StateChangeEvent(state=str(state), detail=detail))

    async def emit_artifact(self, artifact: ArtifactEvent) -> None:
        await self.emit(artifact)

    async def emit(self, event: BaseModel) -> None:
        """Append any event to the session's data stream, numbered in this task's sequence.

        Returns once the event is queued: a task's events are written behind it, in order, and
        are all on the stream before its sub-calls, its waiting state and its end. Raises
        ``EventWriteError`` if an earlier event of this task could not be written."""
        await self._events.emit(event)

    async def flush_events(self) -> None:
        """Wait until every event emitted so far is on the session stream."""
        await self._events.flush()

    # Other agents and the user

    async def call_agent(
        self,
        target_agent_type: str,
        content: Any,
        wait_for_reply: bool = True,
        timeout: float | None = None,
        *,
        extra_payload: dict[str, Any] | None = None,
    ) -> AgentTaskResult | str:
        """Run a task on another agent type, in this session, as a child of this task.

        With ``wait_for_reply`` (the default) this task waits, holding no concurrency slot, and
        gets the child's ``AgentTaskResult`` (a failed child is a result with status FAILED, not
        an exception); otherwise it gets the child's message id at once. Sub-calls are journaled:
        if this task is re-run after a crash, calls made in the same order return their recorded
        results and are not sent again, so issue them in a deterministic order.
        Raises ``NoOnlineWorkerError`` if no worker serves ``target_agent_type``,
        ``TaskTimeoutError`` after ``timeout`` seconds (the child goes on), and
        ``TaskCancelledError`` once this task is cancelled.
        """
        await self._hooks.run("on_call_agent_start", self, target_agent_type, content)
        await self.flush_events()
        reply = await self._subcalls.call_agent(
            target_agent_type, content, wait_for_reply, timeout, extra_payload
        )
        await self._hooks.run("on_call_agent_complete", self, target_agent_type, reply)
        return reply

    async def dispatch_group(
        self, calls: list[dict[str, Any]], wait_for_reply: bool = True
    ) -> dict[str, Any]:
        """Dispatch sub-calls in parallel, atomically; returns at once with
        ``{"task_group_id": ..., "message_ids": [...]}``. Each call is a dict with
        ``target_agent_type``, ``content`` and optionally ``extra_payload``."""
        await self.flush_events()
        return await self._subcalls.dispatch_group(calls, wait_for_reply)

    async def collect_group_results(
        self, task_group_id: str, timeout: float | None = None
    ) -> dict[str, dict[str, Any]]:
        """Wait (holding no slot) until every child of the group has ended; message id ->
        ``{"status", "content", "data", "error"}`` in dispatch order, one entry per child."""
        return await self._subcalls.collect_group_results(task_group_id, timeout)

    def session_turn(
        self, strategy: MultitaskStrategy = "enqueue"
    ) -> AbstractAsyncContextManager[Turn]:
        """Hold the session's turn for this task's agent type while the block runs: one run at a
        time per session and agent type, across every worker. ``strategy`` (the message's
        ``multitask_strategy``) says what to do when another run holds it: ``enqueue`` waits for
        it; ``reject`` raises ``SessionBusyError`` (the task ends FAILED saying so);
        ``interrupt`` and ``rollback`` cancel that run (it ends CANCELLED), wait for it to stop,
        and name it in ``Turn.superseded`` so that the block can undo its writes on
        ``rollback``. Raises ``TaskCancelledError`` if this task is cancelled while it waits.
        Worker adapters (LangGraph, ADK) take it for every run::

            async with context.session_turn(command.multitask_strategy) as turn:
                ...
        """
        return self._turns.hold(self.header, strategy, lambda: self.cancelled)

    async def ask_user(self, event: AskUserEvent) -> AgentTaskResult:
        """Put the question on the session stream and return the result that suspends this task
        (status WAITING_USER): ``return await context.ask_user(...)``. The answer comes back as a
        ``ResumeCommand`` to ``process_command``, on any worker of this agent type."""
        with child_span(self.span, "ask_user", "ask_user", {"byf.prompt_chars": len(event.prompt)}):
            await self.emit(event)
        return AgentTaskResult(
            status=AgentState.WAITING_USER,
            content=event.prompt,
            data={"ask_user": event.model_dump(mode="json")},
        )
