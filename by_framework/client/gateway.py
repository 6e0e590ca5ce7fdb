"""GatewayClient: send commands, follow a session's output, look up tasks."""

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from by_framework.common.aio import Backoff
from by_framework.errors import (
    InvalidContentError,
    InvalidMessageError,
    TaskNotFoundError,
    TaskTimeoutError,
)
from by_framework.protocol import (
    AgentTaskResult,
    AskAgentCommand,
    MessageHeader,
    SessionEvent,
    TaskEndEvent,
    encode_command,
)
from by_framework.protocol.records import TaskRecord
from by_framework.redis.engine import RedisEngine
from by_framework.redis.registry import WorkerRegistry
from by_framework.settings import Settings

READ_BATCH = 500
READ_BLOCK_MS = 2_000  # within redis-py's default 5 s socket timeout


class Interceptor(Protocol):
    async def before_send(self, command: Any, header: MessageHeader) -> tuple[Any, MessageHeader]:
        """Return the (possibly changed) command and header to send."""


@dataclass(frozen=True, slots=True)
class SendResponse:
    message_id: str
    session_id: str
    trace_id: str


class GatewayClient:
    """Publishes commands to control streams and reads session data streams.

    ``redis_client`` is the client from ``init_redis``; the key prefix comes from ``registry`` (or
    ``key_prefix``, or ``BYAI_KEY_PREFIX``), so client and workers agree on key names.
    """

    def __init__(
        self,
        redis_client: Any,
        registry: WorkerRegistry | None = None,
        *,
        key_prefix: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        if settings is None:
            prefix = key_prefix or (registry.keys.prefix if registry is not None else None)
            settings = Settings.resolve(key_prefix=prefix)
        self._engine = RedisEngine(redis_client, settings)
        self.registry = registry or self._engine.registry
        self._interceptors: list[Interceptor] = []

    @classmethod
    def connect(cls, settings: Settings) -> "GatewayClient":
        """A client on a connection of its own, made from ``settings``; ``aclose`` closes it."""
        engine = RedisEngine.connect(settings)
        client = cls(engine.redis, settings=settings)
        client._engine = engine
        return client

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
    ) -> SendResponse:
        """Queue a task for ``target_agent_type`` (or one named worker) and return at once.

        Raises ``NoOnlineWorkerError`` when no online worker would get it, ``InvalidMessageError``
        for a bad session id or agent type, ``InvalidContentError`` for content that is not JSON.
        """
        fields: dict[str, Any] = {
            "session_id": session_id,
            "target_agent_type": target_agent_type,
            "user_code": user_code,
            "metadata": dict(metadata or {}),
        }
        if trace_id:
            fields["trace_id"] = trace_id
        try:
            header = MessageHeader(**fields)
        except ValidationError as exc:
            problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
            raise InvalidMessageError(f"cannot send this message: {problems}") from None
        command: Any = AskAgentCommand(content=content, extra_payload=extra_payload or {})
        for interceptor in self._interceptors:
            command, header = await interceptor.before_send(command, header)
        try:
            envelope = encode_command(header, command)
        except TypeError as exc:
            raise InvalidContentError(f"{exc}; send str, numbers, lists or dicts") from None
        await self._engine.control.send(header, envelope, target_worker_id)
        return SendResponse(header.message_id, header.session_id, header.trace_id)

    async def get_task(self, message_id: str) -> TaskRecord | None:
        """The task's execution record (status, timeline, worker, result), or None."""
        return await self._engine.tasks.get(message_id)

    async def list_session_tasks(self, session_id: str) -> list[TaskRecord]:
        return await self._engine.tasks.list_session(session_id)

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
    ) -> AsyncIterator[SessionEvent]:
        """The session's events in order, from after the stream id ``after`` ("0-0": the start).

        Remember the ``stream_id`` of the last event seen and pass it as ``after`` to resume
        after a disconnect with nothing lost or repeated. With ``until_message_id`` the iterator
        ends after that task's end marker; with ``timeout`` it raises ``TaskTimeoutError``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        backoff = Backoff()
        last_seq: dict[str, int] = {}  # per task: the newest event of its current run
        while True:
            block_ms = READ_BLOCK_MS
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TaskTimeoutError(
                        f"no end of task {until_message_id or '(any)'} on session {session_id!r} "
                        f"within {timeout}s; the task goes on: read again with after={after!r}"
                    )
                block_ms = max(1, min(block_ms, int(left * 1000)))
            try:
                batch = await self._engine.events.read(session_id, after, READ_BATCH, block_ms)
            except self._engine.transient_errors:
                await backoff.pause()  # reconnect and resume from the last event seen
                continue
            backoff.reset()
            for event in batch:
                after = event.stream_id
                if event.seq == 0:  # a run starts (or an engine error event)
                    last_seq[event.message_id] = 0
                elif event.seq <= last_seq.get(event.message_id, -1):
                    continue  # a repeat written by a retry after a lost reply
                else:
                    last_seq[event.message_id] = event.seq
                yield event
                if (
                    until_message_id is not None
                    and event.message_id == until_message_id
                    and isinstance(event.event, TaskEndEvent)
                ):
                    return

    async def wait_for_result(
        self, message_id: str, timeout: float | None = None
    ) -> AgentTaskResult:
        """Block (without polling) until the task's run ends; its result.

        A suspended task (waiting for the user) counts as ended: its status says so.
        """
        session_id = await self._engine.tasks.session_of(message_id)
        if session_id is None:
            raise TaskNotFoundError(f"no task {message_id!r}: never sent, or past its retention")
        # Take the stream position first: a run ending after it shows up in what follows it.
        after = await self.last_event_id(session_id)
        record = await self._engine.tasks.get(message_id)
        if record is not None and record.status.has_ended_run and record.result is not None:
            return record.result
        async for _ in self.events(session_id, after, until_message_id=message_id, timeout=timeout):
            pass
        record = await self._engine.tasks.get(message_id)
        if record is None or record.result is None:
            raise TaskNotFoundError(f"task {message_id!r} ended but its record is gone")
        return record.result

    async def aclose(self) -> None:
        await self._engine.aclose()
