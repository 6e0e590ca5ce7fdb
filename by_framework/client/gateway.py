"""GatewayClient: send commands, follow a session's output, look up tasks."""

import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, TypeVar

from by_framework.cancellation import cancel_tasks
from by_framework.client.scheduling import new_schedule
from by_framework.client.validation import new_ask, new_header
from by_framework.common.aio import Backoff
from by_framework.engine import connect_engine, engine_on_client
from by_framework.errors import (
    EventsTrimmedError,
    NoOnlineWorkerError,
    QueryError,
    SessionBusyError,
    TaskNotFoundError,
    TaskNotWaitingError,
    TaskTimeoutError,
)
from by_framework.ports import CancelReport, Engine, ReloadAck, WorkerDirectory
from by_framework.protocol import (
    AgentTaskResult,
    EventGap,
    MessageHeader,
    MultitaskStrategy,
    QueryCommand,
    ReloadPluginsCommand,
    ResumeCommand,
    SessionEvent,
    StreamMode,
    TaskEndEvent,
    TaskResultEvent,
    encode_command,
)
from by_framework.protocol.ids import new_id
from by_framework.protocol.plain_json import require_json
from by_framework.protocol.queries import GET_HISTORY, GET_STATE, UPDATE_STATE, QueryAnswer
from by_framework.protocol.records import TaskRecord
from by_framework.protocol.schedules import Schedule
from by_framework.settings import Settings

T = TypeVar("T")

READ_BATCH = 500
READ_BLOCK_MS = 2_000  # how long a follower waits for events before it checks its deadline
WORKER_POLL_CAP = 0.5  # longest pause between a waiting send's tries
QUERY_TIMEOUT_S = 10.0  # how long a question about a session's state waits for its answer
SENT_SESSIONS_KEPT = 10_000  # the sends whose sessions a client keeps, newest first


class Interceptor(Protocol):
    async def before_send(self, command: Any, header: MessageHeader) -> tuple[Any, MessageHeader]:
        """Return the (possibly changed) command and header to send."""


@dataclass(frozen=True, slots=True)
class ReloadReport:
    """Answers to one plugin reload: by worker id, and the online workers that did not answer."""

    reload_id: str
    answers: dict[str, ReloadAck]
    missing: list[str]

    @property
    def ok(self) -> bool:
        return not self.missing and all(a.status == "ok" for a in self.answers.values())


@dataclass(frozen=True, slots=True)
class SendResponse:
    message_id: str
    session_id: str
    trace_id: str


class _Runs:
    """The newest event read of each task's current run, for one reader of one session: an
    event at or below it is a repeat (a retry wrote it again after a lost reply), one past the
    next number says its task's events in between were trimmed."""

    def __init__(self, session_id: str) -> None:
        self._session_id = session_id
        self._newest: dict[str, tuple[int, str]] = {}  # message id -> (seq, stream id)

    def is_repeat(self, event: SessionEvent) -> bool:
        newest = self._newest.get(event.message_id)
        return event.seq > 0 and newest is not None and event.seq <= newest[0]

    def gap_before(self, event: SessionEvent) -> EventGap | None:
        """The events of its run trimmed before it, if any; it becomes its run's newest."""
        newest = self._newest.get(event.message_id)
        self._newest[event.message_id] = (event.seq, event.stream_id)
        if event.seq == 0 or newest is None or event.seq == newest[0] + 1:
            return None  # a run starts (or an engine error event), a task first seen, or no gap
        missing = event.seq - newest[0] - 1
        return EventGap(self._session_id, newest[1], event.stream_id, missing, (event.message_id,))


class GatewayClient:
    """Publishes commands to control streams and reads session data streams.

    Give it an ``engine`` (``by_framework.engine.connect_engine``; ``aclose`` closes it), or
    ``connect(settings)``.
    The older form takes ``redis_client``, the client from ``init_redis``, and finds the key
    prefix in ``settings``, ``key_prefix``, ``registry`` or ``BYAI_KEY_PREFIX``, so client and
    workers agree on key names.
    """

    def __init__(
        self,
        redis_client: Any = None,
        registry: WorkerDirectory | None = None,
        *,
        key_prefix: str | None = None,
        settings: Settings | None = None,
        engine: Engine | None = None,
    ) -> None:
        if engine is None:
            if redis_client is None:
                raise TypeError("GatewayClient needs an engine or a redis_client")
            engine = engine_on_client(
                redis_client, registry, key_prefix=key_prefix, settings=settings
            )
        self._engine = engine
        self.registry: WorkerDirectory = registry or engine.registry
        self._interceptors: list[Interceptor] = []
        self._sent_sessions: dict[str, str] = {}  # message id -> session, of its newest sends

    @classmethod
    def connect(cls, settings: Settings) -> "GatewayClient":
        """A client on a connection of its own, made from ``settings``; ``aclose`` closes it."""
        return cls(engine=connect_engine(settings))

    @property
    def engine(self) -> Engine:
        """The engine it works on: its ports serve what has no call of the client's (the HTTP
        gateway's session owners and rate limit)."""
        return self._engine

    def add_interceptor(self, interceptor: Interceptor) -> None:
        """Run ``interceptor.before_send(command, header)`` on every command, in order added."""
        self._interceptors.append(interceptor)

    async def send_message(
        self,
        target_agent_type: str,
        session_id: str,
        content: Any,
        user_code: str | None = None,
        metadata: dict[str, Any] | None = None,
        target_worker_id: str | None = None,
        *,
        extra_payload: dict[str, Any] | None = None,
        trace_id: str | None = None,
        wait_for_worker: float | None = None,
        configurable: dict[str, Any] | None = None,
        stream_mode: list[StreamMode] | None = None,
        multitask_strategy: MultitaskStrategy = "enqueue",
    ) -> SendResponse:
        """Queue a task for ``target_agent_type`` (or one named worker) and return once queued.

        ``configurable``, ``stream_mode`` and ``multitask_strategy`` travel in the command
        (``AskAgentCommand``): per-run values for the agent, what of the run to stream, and what
        to do while another run of the session by that agent type is in flight; with
        ``"reject"`` a send while one is seen raises ``SessionBusyError`` at once (and one that
        races such a run is refused by the worker: the task ends FAILED saying so).

        With no online worker to get it, the send waits up to ``wait_for_worker`` seconds (None:
        the ``worker_wait_seconds`` setting; 0: not at all) for one, such as a worker registering
        again after a Redis restart, then raises ``NoOnlineWorkerError``. Raises
        ``InvalidMessageError`` for a bad session id (one made of anything but letters, digits
        and ``-_.:@+=~``) or agent type, ``InvalidContentError`` for content, metadata or
        extra_payload that is not plain JSON (a datetime, UUID, bytes or set is refused, not
        turned into a string).
        """
        require_json(
            content=content,
            metadata=metadata,
            extra_payload=extra_payload,
            configurable=configurable,
        )
        header = new_header(
            "send this message",
            session_id=session_id,
            target_agent_type=target_agent_type,
            user_code=user_code,
            metadata=dict(metadata or {}),
            **({"trace_id": trace_id} if trace_id else {}),
            # placed by the engine; a session id that is not text is new_header's to refuse
            **_given(
                message_id=self._engine.tasks.new_message_id(session_id)
                if isinstance(session_id, str)
                else None
            ),
        )
        command = new_ask(
            "send this message",
            content=content,
            extra_payload=extra_payload or {},
            configurable=configurable or {},
            stream_mode=stream_mode,
            multitask_strategy=multitask_strategy,
        )
        if multitask_strategy == "reject":
            holder = await self._engine.turns.holder(session_id, target_agent_type)
            if holder is not None:
                raise SessionBusyError(session_id, target_agent_type, holder)
        header, envelope = await self._intercepted(command, header)
        if wait_for_worker is None:
            wait_for_worker = self._engine.settings.worker_wait_seconds
        await self._sent(header, envelope, target_worker_id, wait_for_worker)
        return SendResponse(header.message_id, header.session_id, header.trace_id)

    async def _sent(
        self, header: MessageHeader, envelope: bytes, target_worker_id: str | None, wait: float
    ) -> None:
        """Send; while no online worker would get it, try again until ``wait`` seconds are up.
        A refused send writes nothing, so trying again cannot queue the task twice."""
        deadline = time.monotonic() + wait
        backoff = Backoff(cap=WORKER_POLL_CAP)
        while True:
            try:
                await self._engine.control.send(header, envelope, target_worker_id)
                self._remember_session(header)
                return
            except NoOnlineWorkerError as exc:
                if time.monotonic() >= deadline:
                    if wait > 0:
                        raise NoOnlineWorkerError(f"{exc}; waited {wait:g}s for one") from None
                    raise
            await backoff.pause()

    def _remember_session(self, header: MessageHeader) -> None:
        """Keep the session of a task sent: ``wait_for_result`` on it skips looking it up."""
        self._sent_sessions[header.message_id] = header.session_id
        if len(self._sent_sessions) > SENT_SESSIONS_KEPT:
            del self._sent_sessions[next(iter(self._sent_sessions))]

    async def resume(
        self,
        message_id: str,
        session_id: str,
        content: Any = None,
        reply_data: dict[str, Any] | None = None,
    ) -> SendResponse:
        """Answer a task waiting for the user (it called ``ask_user``): a ``ResumeCommand`` with
        ``content`` and ``reply_data`` re-invokes it on any worker of its agent type.

        Raises ``TaskNotWaitingError`` (and changes nothing) if the task is not waiting for the
        user: finished, running, already resumed, or unknown; ``InvalidContentError`` for an
        answer that is not plain JSON.
        """
        require_json(content=content, reply_data=reply_data)
        record = await self._engine.tasks.get(message_id)
        if record is None or record.session_id != session_id:
            raise TaskNotWaitingError(
                f"no task {message_id!r} in session {session_id!r}: never sent, or past its "
                "retention"
            )
        header = MessageHeader(
            message_id=message_id,
            session_id=session_id,
            target_agent_type=record.agent_type,
            parent_message_id=record.parent_message_id,
            task_group_id=record.task_group_id,
            parent_span_id=record.parent_span_id,
            user_code=record.user_code,
            metadata=record.metadata,
            **({"trace_id": record.trace_id} if record.trace_id else {}),
        )
        command = ResumeCommand(content=content, reply_data=dict(reply_data or {}))
        header, envelope = await self._intercepted(command, header)
        await self._engine.orchestration.resume(header, envelope)
        return SendResponse(header.message_id, header.session_id, header.trace_id)

    async def cancel_task(
        self,
        message_id: str,
        session_id: str,
        reason: str = "",
        mode: Literal["graceful", "force"] = "graceful",
    ) -> CancelReport:
        """Cancel a task and its sub-calls, breadth-first through the task tree.

        Queued tasks and tasks waiting for the user end CANCELLED at once (a queued one is
        skipped when a worker picks it up); running ones are stopped by their workers:
        ``graceful`` lets a task see ``context.cancelled`` for ``cancel_grace_seconds``,
        ``force`` cancels it at once. Finished tasks stay as they are.
        """
        return await self.cancel_tasks(session_id, [message_id], reason, mode)

    async def cancel_session(
        self,
        session_id: str,
        reason: str = "",
        mode: Literal["graceful", "force"] = "graceful",
    ) -> CancelReport:
        """Cancel every unfinished task of the session, and their sub-calls."""
        records = await self._engine.tasks.list_session(session_id)
        roots = [record.message_id for record in records if not record.status.is_terminal]
        return await self.cancel_tasks(session_id, roots, reason, mode)

    async def cancel_tasks(
        self,
        session_id: str,
        message_ids: list[str],
        reason: str = "",
        mode: Literal["graceful", "force"] = "graceful",
    ) -> CancelReport:
        if mode not in ("graceful", "force"):
            raise ValueError(f"mode must be 'graceful' or 'force', not {mode!r}")
        return await cancel_tasks(
            self._engine.orchestration, session_id, message_ids, reason or "cancelled", mode
        )

    async def _intercepted(
        self, command: Any, header: MessageHeader
    ) -> tuple[MessageHeader, bytes]:
        """The header and envelope to send, after every interceptor had its say."""
        for interceptor in self._interceptors:
            command, header = await interceptor.before_send(command, header)
        return header, encode_command(header, command)

    async def reload_plugins(self, reason: str = "", timeout: float = 10.0) -> ReloadReport:
        """Ask every online worker to reload its plugins; each rebuilds its configs (tasks
        already running keep the old ones) and answers. Returns the answers by worker id and
        the workers that did not answer within ``timeout`` seconds."""
        store = self._engine.plugin_store
        reload_id = new_id()
        after = await store.last_answer_id()
        workers = await self.registry.all_online()
        header = MessageHeader(session_id=f"reload-{reload_id}", target_agent_type="*")
        envelope = encode_command(header, ReloadPluginsCommand(reload_id=reload_id, reason=reason))
        for worker_id in workers:
            await self._engine.orchestration.send_to_worker(worker_id, envelope)
        answers = await store.answers(reload_id, after, set(workers), timeout)
        missing = sorted(set(workers) - answers.keys())
        return ReloadReport(reload_id, answers, missing)

    # A session's state, as its agent type's worker keeps it (threads, checkpoints, ADK state)

    async def get_state(
        self,
        session_id: str,
        agent_type: str,
        *,
        user_code: str | None = None,
        thread_id: str | None = None,
        timeout: float = QUERY_TIMEOUT_S,
    ) -> dict[str, Any]:
        """The session's current state with ``agent_type``, read by one of its workers (no
        checkpointer or session store needed here): for a LangGraph graph, its thread's
        ``values``, ``next`` nodes, ``checkpoint_id``, ``interrupts``...; for an ADK agent, the
        session's ``state`` and its last events. ``thread_id``: a LangGraph thread other than
        the session's conversation. Raises ``QueryError`` if the worker cannot say, and
        ``NoOnlineWorkerError`` with no worker of the agent type online."""
        args = _given(thread_id=thread_id)
        state: dict[str, Any] = await self.query(
            agent_type, session_id, GET_STATE, args, user_code=user_code, timeout=timeout
        )
        return state

    async def get_history(
        self,
        session_id: str,
        agent_type: str,
        *,
        limit: int = 20,
        before: str | None = None,
        user_code: str | None = None,
        thread_id: str | None = None,
        timeout: float = QUERY_TIMEOUT_S,
    ) -> list[dict[str, Any]]:
        """The session's past states with ``agent_type``, newest first, ``limit`` at a time
        (LangGraph: checkpoints; ADK: events); ``before``: the id of the last one of the
        previous page (a checkpoint id, an event id)."""
        args = _given(limit=limit, before=before, thread_id=thread_id)
        history: list[dict[str, Any]] = await self.query(
            agent_type, session_id, GET_HISTORY, args, user_code=user_code, timeout=timeout
        )
        return history

    async def update_state(
        self,
        session_id: str,
        agent_type: str,
        values: dict[str, Any],
        *,
        as_node: str | None = None,
        checkpoint_id: str | None = None,
        user_code: str | None = None,
        thread_id: str | None = None,
        timeout: float = QUERY_TIMEOUT_S,
    ) -> dict[str, Any]:
        """Change the session's state with ``agent_type`` as LangGraph's ``update_state`` does
        (``values`` through the state's reducers, as if ``as_node`` wrote them) or ADK's state
        delta; the worker waits for the session's turn, so no run is in flight meanwhile.
        ``checkpoint_id`` (LangGraph) forks: the update goes on top of that earlier checkpoint,
        and the session's next message runs from the fork. Returns the new state's reference
        (e.g. its ``checkpoint_id``)."""
        args = _given(
            values=values, as_node=as_node, checkpoint_id=checkpoint_id, thread_id=thread_id
        )
        updated: dict[str, Any] = await self.query(
            agent_type,
            session_id,
            UPDATE_STATE,
            args,
            user_code=user_code,
            writes=True,
            timeout=timeout,
        )
        return updated

    async def query(
        self,
        agent_type: str,
        session_id: str,
        name: str,
        args: dict[str, Any] | None = None,
        *,
        user_code: str | None = None,
        writes: bool = False,
        timeout: float = QUERY_TIMEOUT_S,
    ) -> Any:
        """Ask one online worker of ``agent_type`` the question ``name`` about the session
        (what its ``answer_query`` answers) and wait up to ``timeout`` seconds for the answer.
        ``writes``: the question changes the state (the worker takes the session's turn)."""
        require_json(args=args)
        header = new_header(
            "ask this", session_id=session_id, target_agent_type=agent_type, user_code=user_code
        )
        workers = await self._engine.registry.online_workers(agent_type)
        if not workers:
            raise NoOnlineWorkerError(f"no online worker serves agent type {agent_type!r}")
        worker = random.choice(workers)
        command = QueryCommand(
            name=name, args=args or {}, reply_to=new_id(), writes=writes, timeout=timeout
        )
        header, envelope = await self._intercepted(command, header)
        await self._engine.orchestration.send_to_worker(worker, envelope)
        raw = await self._engine.answers.take(command.reply_to, timeout)
        if raw is None:
            raise QueryError(
                f"worker {worker} ({agent_type}) gave no answer to {name!r} within {timeout:g}s"
            )
        answer = QueryAnswer.model_validate_json(raw)
        if answer.error is not None:
            raise QueryError(f"{name} of session {session_id!r} ({agent_type}): {answer.error}")
        return answer.value

    async def get_task(self, message_id: str) -> TaskRecord | None:
        """The task's execution record (status, timeline, worker, result), or None."""
        return await self._engine.tasks.get(message_id)

    async def list_session_tasks(self, session_id: str) -> list[TaskRecord]:
        return await self._engine.tasks.list_session(session_id)

    async def schedule(
        self,
        target_agent_type: str,
        session_id: str,
        content: Any,
        *,
        at: datetime | float,
        user_code: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Schedule:
        """Send this message at ``at`` (an aware datetime, or Unix time), once, from whichever
        worker takes it; stored in Redis until then, so nothing needs to keep running here.
        Checked as ``send_message`` checks, and ``InvalidScheduleError`` for a time in the
        past. With no online worker for it then, it is tried again every few seconds."""
        schedule, first = new_schedule(
            target_agent_type, session_id, content, user_code, metadata, at=at
        )
        await self._engine.schedules.add(schedule, first)
        return schedule.model_copy(update={"next_at": first})

    async def schedule_cron(
        self,
        cron: str,
        target_agent_type: str,
        session_id: str,
        content: Any,
        *,
        timezone: str = "UTC",
        user_code: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Schedule:
        """Send this message on every tick of ``cron`` ("0 9 * * *": 09:00 every day; a sixth,
        leading field counts seconds) in ``timezone`` (an IANA name), each time a new task in
        ``session_id``, until ``cancel_schedule``. Each tick is sent once however many workers
        run; ticks missed while no worker ran are not made up (the first one fires late)."""
        schedule, first = new_schedule(
            target_agent_type, session_id, content, user_code, metadata,
            cron=cron, timezone=timezone,
        )  # fmt: skip
        await self._engine.schedules.add(schedule, first)
        return schedule.model_copy(update={"next_at": first})

    async def list_schedules(self) -> list[Schedule]:
        """Every schedule of the deployment, soonest first, with what its firings did."""
        return await self._engine.schedules.all()

    async def cancel_schedule(self, schedule_id: str) -> bool:
        """Remove a schedule (tasks it sent go on); False if there is none of that id."""
        return await self._engine.schedules.remove(schedule_id)

    async def last_event_id(self, session_id: str) -> str:
        """The session's current end: ``events(session_id, after=it)`` sees only what follows."""
        return await self._engine.events.last_id(session_id)

    async def events(
        self,
        session_id: str,
        after: str = "0-0",
        *,
        until_message_id: str | None = None,
        timeout: float | None = None,
        on_gap: Literal["mark", "raise"] = "mark",
    ) -> AsyncIterator[SessionEvent | EventGap]:
        """The session's events in order, from after the stream id ``after`` ("0-0": the start).

        Remember the ``stream_id`` of the last event seen and pass it as ``after`` to resume
        after a disconnect with nothing lost or repeated. With ``until_message_id`` the iterator
        ends after that task's end marker; with ``timeout`` it raises ``TaskTimeoutError``.

        Events the stream's cap (``data_stream_maxlen``) trimmed before this reader read them
        come as an ``EventGap`` in their place (``on_gap="mark"``), or raise
        ``EventsTrimmedError`` (``on_gap="raise"``).
        """
        batches = self.event_batches(
            session_id, after, until_message_id=until_message_id, timeout=timeout, on_gap=on_gap
        )
        async for batch in batches:
            for item in batch:
                yield item

    async def event_batches(
        self,
        session_id: str,
        after: str = "0-0",
        *,
        until_message_id: str | None = None,
        timeout: float | None = None,
        on_gap: Literal["mark", "raise"] = "mark",
        idle: float | None = None,
    ) -> AsyncIterator[list[SessionEvent | EventGap]]:
        """What ``events`` yields, a list per read from Redis: for a reader that handles a batch
        at once (the HTTP gateway writes one SSE chunk per batch). With ``idle``, an empty list
        after that many seconds without events (the gateway's keep-alive)."""
        if on_gap not in ("mark", "raise"):
            raise ValueError(f"on_gap must be 'mark' or 'raise', not {on_gap!r}")
        now = time.monotonic()
        deadline = None if timeout is None else now + timeout
        quiet_until = None if idle is None else now + idle
        backoff = Backoff()
        runs = _Runs(session_id)
        reader = self._engine.events.reader(session_id)
        try:
            while True:
                now = time.monotonic()
                block_s = READ_BLOCK_MS / 1000
                if deadline is not None:
                    if deadline <= now:
                        raise TaskTimeoutError(
                            f"no end of task {until_message_id or '(any)'} on session "
                            f"{session_id!r} within {timeout}s; the task goes on: read again "
                            f"with after={after!r}"
                        )
                    block_s = min(block_s, deadline - now)
                if quiet_until is not None and idle is not None:
                    if quiet_until <= now:
                        yield []
                        quiet_until = now + idle
                    block_s = min(block_s, quiet_until - now)
                try:
                    batch = await reader.read(after, READ_BATCH, max(1, int(block_s * 1000)))
                except self._engine.transient_errors:
                    await backoff.pause()  # reconnect and resume from the last event seen
                    continue
                backoff.reset()
                out: list[SessionEvent | EventGap] = []
                ended = False
                for event in batch:
                    if isinstance(event, EventGap):
                        gap: EventGap | None = event
                    else:
                        after = event.stream_id
                        if runs.is_repeat(event):
                            continue
                        gap = runs.gap_before(event)
                    if gap is not None:
                        if on_gap == "raise":
                            if out:  # what came before the gap, then the error in its place
                                yield out
                            raise EventsTrimmedError(gap)
                        out.append(gap)
                    if isinstance(event, EventGap):
                        continue
                    out.append(event)
                    if (
                        until_message_id is not None
                        and event.message_id == until_message_id
                        and isinstance(event.event, TaskEndEvent)
                    ):
                        ended = True
                        break
                if out:
                    yield out
                    if idle is not None:
                        quiet_until = time.monotonic() + idle
                if ended:
                    return
        finally:
            await reader.aclose()

    async def wait_for_result(
        self, message_id: str, timeout: float | None = None
    ) -> AgentTaskResult:
        """Block (without polling) until the task's run ends; its result.

        A suspended task (waiting for the user) counts as ended: its status says so. Like the
        wait itself, its lookups wait out a lost connection (a Redis restart) until ``timeout``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        tasks = self._engine.tasks
        session_id = self._sent_sessions.get(message_id)
        if session_id is None:
            session_id = await self._looking_up(lambda: tasks.session_of(message_id), deadline)
        if session_id is None:
            raise TaskNotFoundError(f"no task {message_id!r}: never sent, or past its retention")
        after, record = await self._looking_up(
            lambda: tasks.wait_point(session_id, message_id), deadline
        )
        if record is None:  # past its retention, or lost with a cluster's master (its run
            # writes it again): the task index, on another slot, tells which
            if await self._looking_up(lambda: tasks.session_of(message_id), deadline) is None:
                raise TaskNotFoundError(f"no task {message_id!r}: past its retention")
        elif record.status.has_ended_run and record.result is not None:
            return record.result
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        result = None
        async for item in self.events(session_id, after, until_message_id=message_id, timeout=left):
            if isinstance(item, EventGap):  # its end may be among the events trimmed
                result = None  # the record says
                record = await self._looking_up(lambda: tasks.get(message_id), deadline)
                if record is not None and record.status.has_ended_run:
                    break
            elif item.message_id == message_id and isinstance(item.event, TaskResultEvent):
                result = item.event.result  # the run's own: written at once with its end
        if result is not None:
            return result
        record = await self._looking_up(lambda: tasks.get(message_id), deadline)
        if record is None or record.result is None:
            raise TaskNotFoundError(f"task {message_id!r} ended but its record is gone")
        return record.result

    async def _looking_up(self, lookup: Callable[[], Awaitable[T]], deadline: float | None) -> T:
        """The lookup's answer, retried through connection trouble until ``deadline``."""
        backoff = Backoff()
        while True:
            try:
                return await lookup()
            except self._engine.transient_errors:
                if deadline is not None and time.monotonic() >= deadline:
                    raise
                await backoff.pause()

    async def aclose(self) -> None:
        await self._engine.aclose()


def _given(**args: Any) -> dict[str, Any]:
    """The arguments that were given (not None)."""
    return {name: value for name, value in args.items() if value is not None}
