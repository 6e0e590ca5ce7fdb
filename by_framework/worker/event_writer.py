"""Write-behind for one task's events: ``emit_*`` returns once its event is queued.

An awaited round trip per chunk caps a streaming task at a few thousand chunks a second, however
the worker batches across tasks. Queued events travel together instead: one XADD each and one
EXPIRE per write. Order is kept (one write in flight per task, events in the order they were
queued), and the queue is bounded (a full one waits for the writer to take it), so a task that
outruns Redis, or waits out an outage, is held back in ``put``. The task's own steps that others
can see — its sub-calls and its end — come after ``flush``, so its events always precede them on
the session stream.
"""

import asyncio

from pydantic import BaseModel

from by_framework.common.aio import cancel_and_wait
from by_framework.errors import EventWriteError
from by_framework.ports import EventLog
from by_framework.protocol import MessageHeader
from by_framework.protocol.codec import EventEncoder

BACKLOG = 512
"""Events a task may have queued, besides the batch being written, before ``put`` waits."""


class EventWriter:
    def __init__(self, events: EventLog, session_id: str, backlog: int = BACKLOG) -> None:
        self._events = events
        self._session_id = session_id
        self._backlog = backlog
        self._queued: list[bytes] = []
        self._writing: asyncio.Task[None] | None = None
        self._scheduled = False  # a start of the writer is due on the next loop turn
        self._in_flight = False  # the writer has taken a batch and waits for its reply
        self._took: asyncio.Future[None] | None = None  # set when the writer takes a batch
        self._error: BaseException | None = None

    async def put(self, event: bytes) -> None:
        """Queue the event for writing; with a full backlog, first wait until the writer takes
        it."""
        self._raise_error()
        if len(self._queued) >= self._backlog:
            await self._room()
        self._queued.append(event)
        if self._writing is None and not self._scheduled:
            # Started after the callbacks ready by then, not here: a task that emits and then
            # ends without waiting hands its events to ``take`` first (they go with its outcome:
            # one round trip instead of two), and no writer is made for nothing. The body runs
            # in a task of its own, and the runner hears of its end through callbacks queued
            # as it ends: a ``call_soon`` made before that runs before them, a timer due at
            # once (``call_later(0)``) after them.
            self._scheduled = True
            asyncio.get_running_loop().call_later(0, self._start)

    @property
    def backlog(self) -> int:
        """Events queued and not yet sent (a batch on its way to Redis not included)."""
        return len(self._queued)

    async def flush(self) -> None:
        """Return once every queued event is written; raise if one could not be."""
        self._start()
        if self._writing is not None:
            await asyncio.wait({self._writing})  # cancelling the caller leaves the writer be
        self._raise_error()

    async def _room(self) -> None:
        """Until the writer has taken the full queue: the task fills the next batch while
        that one is on its way (waiting for it to be written left Redis and the task taking
        turns). At most twice the backlog is held, one batch queued and one in flight."""
        self._start()
        if self._writing is not None:
            if self._took is None:
                self._took = asyncio.get_running_loop().create_future()
            await asyncio.wait({self._took, self._writing}, return_when=asyncio.FIRST_COMPLETED)
        self._raise_error()

    async def take(self) -> list[bytes]:
        """For the task's end: let a write in flight finish, then hand over what is still
        queued, for the caller to write with the task's outcome, in one step. Raises as
        ``flush`` does."""
        if self._in_flight and self._writing is not None:
            await asyncio.wait({self._writing})
        taken, self._queued = self._queued, []
        self._raise_error()
        return taken

    async def aclose(self) -> None:
        """Stop writing (events still queued are dropped): for a run that is being abandoned."""
        if self._writing is not None:
            await cancel_and_wait(self._writing)
        self._queued.clear()

    def _start(self) -> None:
        self._scheduled = False
        if self._writing is None and self._queued:
            self._writing = asyncio.create_task(self._write_queued(), name="event-writer")

    async def _write_queued(self) -> None:
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                self._in_flight = True
                if self._took is not None:
                    self._took.set_result(None)
                    self._took = None
                try:
                    await self._events.append(self._session_id, *batch)
                except Exception as exc:  # outages are waited out inside append: this is final
                    self._error = exc
                    self._queued.clear()
                finally:
                    self._in_flight = False
        finally:
            self._writing = None

    def _raise_error(self) -> None:
        if self._error is not None:
            error = self._error
            raise EventWriteError(
                f"events of this task could not be written to session {self._session_id!r}: "
                f"{type(error).__name__}: {error}"
            ) from error


class TaskEvents(EventWriter):
    """One task's events, numbered in its sequence and written behind it. ``AgentContext.emit``
    feeds it; the runner keeps the rest: its own events (waiting, the end) numbered in the same
    sequence, what is still unwritten at the end (``take``), dropped when the run is handed
    back (``aclose``)."""

    def __init__(self, events: EventLog, header: MessageHeader) -> None:
        super().__init__(events, header.session_id)
        self.message_id = header.message_id
        self._encoder = EventEncoder(header.message_id, header.target_agent_type)
        self._seq = 1  # 0 is the "running" state event that begin writes

    def encode(self, event: BaseModel) -> bytes:
        """The event's envelope, taking the task's next sequence number."""
        seq, self._seq = self._seq, self._seq + 1
        return self._encoder.encode(seq, event)

    async def emit(self, event: BaseModel) -> None:
        await self.put(self.encode(event))
