"""Sub-calls of a running task: ``call_agent``, ``dispatch_group``, ``collect_group_results``.

Durable by journal: the k-th sub-call of run r of task M has an id derived from (M, r, k), and
its record is written in the script that sends it. A re-run of M after a crash makes the same
calls in the same order (user code must issue them deterministically), finds their records, and
gets recorded results back at once instead of dispatching again.

While it waits, a task gives up its concurrency slot. Waiting is event driven: the child's
``finish`` wakes the worker holding the parent through its notice stream. The waiter arms its
future before it reads the journal, so no wake-up can slip between the two; a re-read every
``recheck`` seconds is the safety net (a wake-up trimmed away, a parent that moved workers).
"""

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError

from by_framework.errors import (
    InvalidMessageError,
    TaskCancelledError,
    TaskNotFoundError,
    TaskTimeoutError,
)
from by_framework.metrics.recorder import WorkerMetrics
from by_framework.ports import Orchestration, SubCall
from by_framework.protocol import AgentTaskResult, AskAgentCommand, MessageHeader, encode_command
from by_framework.protocol.ids import sub_call_id
from by_framework.protocol.plain_json import require_json
from by_framework.tracing import Attributes, Span, child_span

T = TypeVar("T")


class Waiters:
    """Futures of waiting tasks, by the child or group id whose end wakes them."""

    def __init__(self) -> None:
        self._futures: defaultdict[str, set[asyncio.Future[None]]] = defaultdict(set)

    def arm(self, key: str) -> asyncio.Future[None]:
        future = asyncio.get_running_loop().create_future()
        self._futures[key].add(future)
        return future

    def disarm(self, key: str, future: asyncio.Future[None]) -> None:
        futures = self._futures.get(key)
        if futures is not None:
            futures.discard(future)
            if not futures:
                del self._futures[key]

    def wake(self, key: str) -> None:
        for future in self._futures.pop(key, ()):
            if not future.done():
                future.set_result(None)


class Slot(Protocol):
    """The task's place in the worker's capacity, given up while it waits."""

    def release(self) -> None: ...

    async def acquire(self) -> None: ...


class StateWriter(Protocol):
    async def __call__(self, waiting: bool, detail: str) -> None:
        """Record (and announce) that the task starts or stops waiting for sub-calls."""


class SubCalls:
    """The journal cursor of one run of one task."""

    def __init__(
        self,
        header: MessageHeader,
        run: int,
        orchestration: Orchestration,
        waiters: Waiters,
        slot: Slot,
        set_waiting: StateWriter,
        recheck: float,
        retrying: Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]],
        metrics: WorkerMetrics,
    ) -> None:
        self._header = header
        self._run = run
        self._orchestration = orchestration
        self._waiters = waiters
        self._slot = slot
        self._set_waiting = set_waiting
        self._recheck = recheck
        self._retrying = retrying
        self._metrics = metrics
        self._next_call = 0
        self._cancel_reason: str | None = None
        self._armed: set[asyncio.Future[None]] = set()
        self.waiting = 0
        self.span: Span | None = None
        """The task's span when the worker traces: the parent of its sub-calls' spans."""

    # Cancellation

    @property
    def cancel_reason(self) -> str | None:
        return self._cancel_reason

    def cancel(self, reason: str) -> None:
        """A graceful cancel: waits end with ``TaskCancelledError``, new calls are refused."""
        self._cancel_reason = reason
        for future in self._armed:
            if not future.done():
                future.set_result(None)

    def _raise_if_cancelled(self) -> None:
        if self._cancel_reason is not None:
            raise TaskCancelledError(
                f"task {self._header.message_id} was cancelled: "
                f"{self._cancel_reason or 'no reason given'}"
            )

    # The calls

    async def call_agent(
        self,
        target_agent_type: str,
        content: Any,
        wait_for_reply: bool,
        timeout: float | None,
        extra_payload: dict[str, Any] | None,
    ) -> AgentTaskResult | str:
        attributes: Attributes = {
            "byf.target_agent_type": target_agent_type,
            "byf.wait": wait_for_reply,
        }
        name = f"call_agent {target_agent_type}"
        with child_span(self.span, "call_agent", name, attributes) as span:
            reply = await self._call_agent(
                target_agent_type, content, wait_for_reply, timeout, extra_payload, span
            )
            if span is not None and isinstance(reply, AgentTaskResult):
                span.set({"byf.status": reply.status.value})
            return reply

    async def _call_agent(
        self,
        target_agent_type: str,
        content: Any,
        wait_for_reply: bool,
        timeout: float | None,
        extra_payload: dict[str, Any] | None,
        span: Span | None,
    ) -> AgentTaskResult | str:
        call = self._take_numbers(1)
        self._raise_if_cancelled()
        child_id = sub_call_id(self._header.message_id, self._run, call)
        if span is not None:
            span.set({"byf.child_message_id": child_id})
        sub_call = self._sub_call(
            child_id, target_agent_type, content, wait_for_reply, None, extra_payload, span
        )
        if not wait_for_reply:
            await self._dispatch([sub_call], None)
            return child_id
        future = self._arm(child_id)  # before the send: the child may end at once
        try:
            sent = await self._dispatch([sub_call], None)
        except BaseException:
            self._disarm(child_id, future)
            raise

        async def replied() -> AgentTaskResult | None:
            session = self._header.session_id
            results = await self._retrying(lambda: self._orchestration.results(session, [child_id]))
            return results[child_id]

        what = f"the reply of {target_agent_type!r} (sub-call {child_id})"
        # A child sent just now has no result to read yet: wait for its wake-up first.
        return await self._wait(child_id, replied, timeout, what, armed=future, fresh=sent)

    async def dispatch_group(
        self, calls: Sequence[dict[str, Any]], wait_for_reply: bool
    ) -> dict[str, Any]:
        with child_span(
            self.span, "dispatch_group", "dispatch_group", {"byf.wait": wait_for_reply}
        ) as span:
            group = await self._dispatch_group(calls, wait_for_reply, span)
            if span is not None:
                span.set(
                    {
                        "byf.task_group_id": group["task_group_id"],
                        "byf.calls": len(group["message_ids"]),
                    }
                )
            return group

    async def _dispatch_group(
        self, calls: Sequence[dict[str, Any]], wait_for_reply: bool, span: Span | None
    ) -> dict[str, Any]:
        if isinstance(calls, dict | str) or not calls:
            raise InvalidMessageError(
                "dispatch_group takes a non-empty list of calls such as "
                '[{"target_agent_type": "researcher", "content": "..."}]'
            )
        first = self._take_numbers(len(calls))
        self._raise_if_cancelled()
        parent = self._header.message_id
        group_id = sub_call_id(parent, self._run, first, kind="group")
        sub_calls = []
        for index, call in enumerate(calls):
            if not isinstance(call, dict) or "target_agent_type" not in call:
                raise InvalidMessageError(
                    f"dispatch_group call {index} must be a dict with a 'target_agent_type' "
                    f"(and 'content', optionally 'extra_payload'), got {call!r}"
                )
            child_id = sub_call_id(parent, self._run, first + index)
            sub_calls.append(
                self._sub_call(
                    child_id,
                    call["target_agent_type"],
                    call.get("content"),
                    wait_for_reply,
                    group_id,
                    call.get("extra_payload"),
                    span,
                )
            )
        await self._dispatch(sub_calls, group_id)
        return {
            "task_group_id": group_id,
            "message_ids": [sub_call.header.message_id for sub_call in sub_calls],
        }

    async def collect_group_results(
        self, group_id: str, timeout: float | None
    ) -> dict[str, dict[str, Any]]:
        session = self._header.session_id

        async def gathered() -> dict[str, dict[str, Any]] | None:
            group = await self._retrying(lambda: self._orchestration.group(session, group_id))
            if group is None:
                raise TaskNotFoundError(
                    f"no task group {group_id!r} in session {session!r}: pass the "
                    "task_group_id that dispatch_group returned (groups expire with record_ttl)"
                )
            children, remaining = group
            if remaining > 0:
                return None
            results = await self._retrying(lambda: self._orchestration.results(session, children))
            if any(result is None for result in results.values()):
                return None  # counted down but not readable yet: read again
            return {
                child: result.model_dump(mode="json")
                for child, result in results.items()
                if result is not None  # none is, as checked above
            }

        return await self._wait(group_id, gathered, timeout, f"task group {group_id}")

    # Internals

    async def _dispatch(self, calls: Sequence[SubCall], group_id: str | None) -> bool:
        """Send the calls, unless a run before this one did: True if sent now."""
        try:
            sent = await self._retrying(
                lambda: self._orchestration.dispatch(self._header, calls, group_id)
            )
        except TaskCancelledError as exc:
            # Cancelled in Redis before this worker heard of it: the run ends CANCELLED, as
            # it would had the cancel come first, whatever the agent makes of the error.
            if self._cancel_reason is None:
                self.cancel(exc.reason or str(exc))
            raise
        if sent:
            self._metrics.sub_calls_sent(self._header.target_agent_type, len(calls))
        return sent

    def _take_numbers(self, count: int) -> int:
        """Call numbers in call order, taken before the first await: concurrent calls started
        in a deterministic order get deterministic numbers."""
        first, self._next_call = self._next_call, self._next_call + count
        return first

    def _sub_call(
        self,
        message_id: str,
        target_agent_type: str,
        content: Any,
        wait_for_reply: bool,
        group_id: str | None,
        extra_payload: dict[str, Any] | None,
        span: Span | None = None,
    ) -> SubCall:
        parent = self._header
        require_json(content=content, extra_payload=extra_payload)
        try:
            header = MessageHeader(
                message_id=message_id,
                session_id=parent.session_id,
                trace_id=parent.trace_id,
                source_agent_type=parent.target_agent_type,
                target_agent_type=target_agent_type,
                parent_message_id=parent.message_id,
                task_group_id=group_id,
                parent_span_id=span.span_id if span is not None else None,
                user_code=parent.user_code,
                metadata=dict(parent.metadata),
            )
        except ValidationError as exc:
            problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
            raise InvalidMessageError(f"cannot call this agent: {problems}") from None
        command = AskAgentCommand(
            content=content, wait_for_reply=wait_for_reply, extra_payload=extra_payload or {}
        )
        return SubCall(header, encode_command(header, command), wait_for_reply)

    async def _wait(
        self,
        key: str,
        ready: Callable[[], Awaitable[T | None]],
        timeout: float | None,
        what: str,
        *,
        armed: asyncio.Future[None] | None = None,
        fresh: bool = False,
    ) -> T:
        """``ready()``'s value once it has one, waking on notices for ``key`` (on ``armed`` if
        the caller armed it already; ``fresh``: nothing to read before the first wake-up).
        While it waits the task gives up its slot and is recorded ``waiting_reply``. A wake-up
        names an ended child or a counted-down group, so the value is read as the task is
        recorded running again, in one round trip (should it not be there yet, the task waits
        again). Redis calls go through ``retrying``: an outage makes the task wait, not fail
        (dispatch is idempotent)."""
        future = armed or self._arm(key)
        paused = False
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        try:
            if not fresh and (value := await ready()) is not None:
                return value
            while True:
                self._raise_if_cancelled()
                if not paused:  # the state writes are outside the timeout: none is cut short
                    await self._pause(what)
                    paused = True
                try:
                    async with asyncio.timeout_at(deadline):
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(asyncio.shield(future), self._recheck)
                        self._raise_if_cancelled()
                        if not future.done():  # the periodic re-read: a wake-up may be lost
                            if (value := await ready()) is not None:
                                return value
                            continue
                except TimeoutError:
                    raise TaskTimeoutError(
                        f"no {what} within {timeout:g}s; the sub-call goes on"
                    ) from None
                self._disarm(key, future)
                future = self._arm(key)
                paused = False
                if (value := await self._resume_reading(ready, what)) is not None:
                    return value
        except asyncio.CancelledError:
            if paused:  # the run ends here: it needs no slot back
                self.waiting -= 1
                paused = False
            raise
        finally:
            try:
                if paused:
                    await self._resume(what)
            finally:
                self._disarm(key, future)

    async def _pause(self, what: str) -> None:
        """Record the task waiting for ``what`` and give up its slot."""
        await self._set_waiting(True, what)
        self._slot.release()
        self.waiting += 1

    async def _resume(self, what: str) -> None:
        """Take a slot back and record the task running again (unless it is cancelled)."""
        self.waiting -= 1
        await self._slot.acquire()
        if self._cancel_reason is None:
            await self._set_waiting(False, what)

    async def _resume_reading(
        self, ready: Callable[[], Awaitable[T | None]], what: str
    ) -> T | None:
        """``_resume`` and ``ready()`` together: their Redis calls go in one batch."""
        self.waiting -= 1
        await self._slot.acquire()
        if self._cancel_reason is not None:
            return await ready()
        running = asyncio.ensure_future(self._set_waiting(False, what))
        try:
            return await ready()
        finally:
            await running

    def _arm(self, key: str) -> asyncio.Future[None]:
        future = self._waiters.arm(key)
        self._armed.add(future)
        return future

    def _disarm(self, key: str, future: asyncio.Future[None]) -> None:
        self._armed.discard(future)
        self._waiters.disarm(key, future)
