"""SessionFeed: every session a client follows, read by one blocking XREAD on one connection.

A gateway follows many sessions at once (a browser each). One blocking XREAD per follower costs a
connection each, and a round trip per batch of events of each session: on a busy client those
reads, their writes and their replies were most of its CPU, and an XREAD served for a handful of
events a good part of Redis's. The feed reads all the followed streams in one XREAD, from the
earliest position any of a stream's followers needs, and hands each follower the events past its
own position, in order.

A follower that joins while the feed is blocked wakes it through the feed's wake stream (an XADD
where the XREAD is waiting), so it is read from at once. A follower whose backlog of events not
yet taken reaches ``BACKLOG`` is left out of the reads until it has taken them: a slow follower
holds neither the others nor unbounded memory. A failed read is retried, from the followers'
positions, until it succeeds: nothing is lost or handed out twice. The feed keeps its connection
between followers and stops reading when none is left.

Where a follower's reads start (its first, a resume from elsewhere, its return after a full
backlog), one XINFO STREAM, in the same round trip as the wake-up, tells whether Redis trimmed
entries past its position that it never read: the follower then hands out an ``EventGap`` first
(and drops what a read handed it meanwhile, to read it again after the gap). Reads in between
cost nothing more; events a reader misses there show up as a jump in their task's sequence
numbers (the client's part).
"""

import asyncio
import time
from collections import deque
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from by_framework.common.aio import Backoff, cancel_and_wait
from by_framework.protocol import (
    ErrorEvent,
    EventGap,
    MalformedEntry,
    SessionEvent,
    decode_event,
)
from by_framework.protocol.ids import new_id
from by_framework.redis.batching import Batcher, RedisCommand
from by_framework.redis.connection import HeldConnection, RedisClient
from by_framework.redis.keys import KeySpace
from by_framework.redis.replies import stream_entries, stream_info

READ_BLOCK_MS = 2_000  # a read for followers that have all left lingers at most this long
READ_COUNT = 500  # entries per stream per read
BACKLOG = 2_000
"""Events a follower may have waiting, not yet taken, before the feed stops reading for it."""
WAKE_TTL = 60  # seconds the wake stream outlives the feed's last wake-up


class SessionFeed:
    def __init__(self, redis: RedisClient, batcher: Batcher, keys: KeySpace) -> None:
        self._redis = redis
        self._batcher = batcher
        self._connection = HeldConnection(redis)
        self._wake_stream = keys.feed_wake(new_id())
        self._wake_position = "0-0"
        self._followers: dict[str, set[FeedFollower]] = {}  # by stream
        self._changed = asyncio.Event()  # a follower joined, or may be read for again
        self._reading: dict[str, tuple[int, int]] = {}  # the blocked read: stream -> position
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def follower(self, stream: str, session_id: str) -> "FeedFollower":
        return FeedFollower(self, stream, session_id)

    @property
    def follower_count(self) -> int:
        """Followers being read for now, over every session."""
        return sum(len(followers) for followers in self._followers.values())

    async def aclose(self) -> None:
        self._closed = True
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        await self._connection.aclose()

    async def _join(self, follower: "FeedFollower") -> dict[bytes, Any] | None:
        """Read for the follower from its position on, waking the blocked read if it misses it;
        the stream's XINFO STREAM (None: no such stream yet, or expired), asked in the same round
        trip as the wake-up."""
        if self._closed:
            raise RuntimeError("this client is closed: follow sessions with an open one")
        self._followers.setdefault(follower.stream, set()).add(follower)
        self._changed.set()
        wake: list[RedisCommand] = []
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._read_forever(), name="session-feed")
        else:
            wake = self._wake_up(follower)
        try:
            reply, *_ = await self._batcher.execute(("XINFO", "STREAM", follower.stream), *wake)
        except ResponseError:
            return None  # no such stream; the wake-up went out all the same
        return stream_info(reply)

    def _wake_up(self, follower: "FeedFollower") -> list[RedisCommand]:
        """What wakes the blocked read if it misses the follower (its stream, or its position):
        an entry on the feed's wake stream, which the read waits on too."""
        reading = self._reading.get(follower.stream)
        if self._reading and (reading is None or reading > follower.position):
            return [
                ("XADD", self._wake_stream, "MAXLEN", "1", "*", "w", "1"),
                ("EXPIRE", self._wake_stream, WAKE_TTL),
            ]
        return []

    async def _read_again(self, follower: "FeedFollower") -> None:
        """Read for a follower already joined from its position again: its loop is told (it
        may be idle, every follower's backlog full), its blocked read woken if it misses it."""
        self._changed.set()
        wake = self._wake_up(follower)
        if wake:
            await self._batcher.execute(*wake)

    def _leave(self, follower: "FeedFollower") -> None:
        followers = self._followers.get(follower.stream, set())
        followers.discard(follower)
        if not followers:
            self._followers.pop(follower.stream, None)

    async def _read_forever(self) -> None:
        try:
            await self._read_until_cancelled()
        except Exception as exc:  # a surprise: no follower may wait for ever on a dead feed
            for followers in self._followers.values():
                for follower in followers:
                    follower.fail(exc)
            raise

    async def _read_until_cancelled(self) -> None:
        backoff = Backoff()
        while True:
            positions = self._positions()
            if not positions:
                self._changed.clear()
                await self._changed.wait()
                continue
            try:
                entries = await self._read(positions)
            except (RedisConnectionError, RedisTimeoutError):
                await backoff.pause()  # reconnect and read again from the same positions
                continue
            except ResponseError as exc:
                await self._fail_unreadable(positions, exc)
                continue
            backoff.reset()
            self._hand_out(positions, entries)
            await asyncio.sleep(0)  # the followers take their events before the next read goes

    def _positions(self) -> dict[str, tuple[int, int]]:
        """Each stream to read, from the earliest position of its followers that take more."""
        # Run before every read over every follower: kept to plain attribute reads (``full``
        # spelled out), a tenth of a gateway's CPU with a thousand followers otherwise.
        positions: dict[str, tuple[int, int]] = {}
        for stream, followers in self._followers.items():
            wanted = [
                f.position for f in followers if len(f._backlog) < BACKLOG and f.error is None
            ]
            if wanted:
                positions[stream] = min(wanted)
        return positions

    async def _read(
        self, positions: dict[str, tuple[int, int]]
    ) -> dict[str, list[tuple[str, dict[bytes, bytes]]]]:
        streams = [self._wake_stream, *positions]
        after = [self._wake_position, *(f"{ms}-{seq}" for ms, seq in positions.values())]
        command = (
            "XREAD",
            "COUNT",
            READ_COUNT,
            "BLOCK",
            READ_BLOCK_MS,
            "STREAMS",
            *streams,
            *after,
        )
        self._reading = positions
        try:
            reply = await self._connection.call(command, READ_BLOCK_MS)
        finally:
            self._reading = {}
        entries: dict[str, list[tuple[str, dict[bytes, bytes]]]] = {}
        for stream, stream_entries_ in stream_entries(reply):
            name = stream.decode()
            if name == self._wake_stream:
                self._wake_position = stream_entries_[-1][0].decode()
                continue
            entries[name] = [(entry_id.decode(), fields) for entry_id, fields in stream_entries_]
        return entries

    def _hand_out(
        self,
        positions: dict[str, tuple[int, int]],
        entries: dict[str, list[tuple[str, dict[bytes, bytes]]]],
    ) -> None:
        """The events read go to the followers of their stream that the read covered: one that
        joined meanwhile further back is read for from its own position next time."""
        for stream, read in entries.items():
            events = [_decode(entry_id, fields) for entry_id, fields in read]
            start = positions[stream]
            for follower in self._followers.get(stream, ()):
                if start <= follower.position and not follower.full:
                    follower.deliver(events)

    async def _fail_unreadable(
        self, positions: dict[str, tuple[int, int]], error: ResponseError
    ) -> None:
        """An error for the whole read (a followed key that is not a stream): the followers of
        the keys at fault get it; the others go on."""
        pipe = self._redis.pipeline(transaction=False)
        for stream in positions:
            pipe.type(stream)
        try:
            kinds = await pipe.execute()
        except (RedisConnectionError, RedisTimeoutError):
            return  # read again; the error, if it stays, comes back
        bad = {
            s for s, kind in zip(positions, kinds, strict=True) if kind not in (b"stream", b"none")
        }
        for stream, followers in self._followers.items():
            if stream in bad or not bad:
                for follower in followers:
                    follower.fail(error)


class FeedFollower:
    """One follower of one session stream, reading through the client's feed."""

    def __init__(self, feed: SessionFeed, stream: str, session_id: str) -> None:
        self._feed = feed
        self.stream = stream
        self.session_id = session_id
        self.position = (0, 0)  # the id after which the feed reads for it
        self._handed = (0, 0)  # the id of the last event handed to the caller
        self._backlog: deque[SessionEvent | EventGap] = deque()
        self._arrived = asyncio.Event()
        self._joined = False
        self.error: Exception | None = None

    @property
    def waiting(self) -> int:
        """Events read for it and not yet taken."""
        return len(self._backlog)

    @property
    def full(self) -> bool:
        """Left out of the feed's reads: its backlog is full."""
        return len(self._backlog) >= BACKLOG

    async def read(self, after: str, count: int, block_ms: int) -> list[SessionEvent | EventGap]:
        """Up to ``count`` events after the stream id ``after``, waiting up to ``block_ms`` for
        the first; an ``EventGap`` first where Redis trimmed entries past ``after``."""
        if self.error is not None:
            raise self.error
        start = _parse_id(after)
        if start != self._handed:  # not where the last read ended: start over from there
            self._backlog.clear()
            self.position = self._handed = start
            self._joined = False
        if not self._joined:
            await self._join()
            self._joined = True
        if not self._backlog:
            self._arrived.clear()
            try:
                async with asyncio.timeout(block_ms / 1000):
                    await self._arrived.wait()
            except TimeoutError:
                return []
            if self.error is not None:
                raise self.error
        was_full = self.full
        taken = [self._backlog.popleft() for _ in range(min(count, len(self._backlog)))]
        if taken:
            last = taken[-1]
            self._handed = _parse_id(
                last.stream_id if isinstance(last, SessionEvent) else last.after
            )
        if was_full and not self.full:
            await self._join()  # read for it again
        return taken

    async def _join(self) -> None:
        """Have the feed read for it from its position on, and learn in the same round trip
        whether Redis trimmed entries past that position while it was not read for. If it did,
        a gap is marked, and what a read handed it meanwhile is dropped and read again after
        the gap (those events may have come from before or after the trim: read again, they
        come in order after it)."""
        position, waiting = self.position, len(self._backlog)
        info = await self._feed._join(self)
        gap = None if info is None else _trimmed_after(info, self.session_id, position)
        if gap is None:
            return
        while len(self._backlog) > waiting:
            self._backlog.pop()
        self._backlog.append(gap)
        self.position = position
        self._arrived.set()
        await self._feed._read_again(self)

    async def aclose(self) -> None:
        self._feed._leave(self)
        self._backlog.clear()

    def deliver(self, events: list[SessionEvent]) -> None:
        fresh = events
        if events and _parse_id(events[0].stream_id) <= self.position:  # read from further back
            fresh = [e for e in events if _parse_id(e.stream_id) > self.position]
        if fresh:
            self._backlog.extend(fresh)
            self.position = _parse_id(fresh[-1].stream_id)
            self._arrived.set()

    def fail(self, error: Exception) -> None:
        self.error = error
        self._arrived.set()


def _parse_id(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    if not (ms.isdigit() and (seq.isdigit() or not seq)):
        raise ValueError(f"not a stream id: {stream_id!r} (use an event's stream_id, or 0-0)")
    return int(ms), int(seq or 0)


def _decode(stream_id: str, fields: dict[bytes, bytes]) -> SessionEvent:
    """A malformed entry becomes an ErrorEvent in its place, so readers see it and move past it."""
    try:
        return decode_event(stream_id, fields)
    except MalformedEntry as exc:
        return SessionEvent(
            stream_id=stream_id,
            message_id="",
            seq=0,
            ts=time.time(),
            event=ErrorEvent(error=f"unreadable event {stream_id}: {exc.reason}"),
        )


def _trimmed_after(
    info: dict[bytes, Any], session_id: str, position: tuple[int, int]
) -> EventGap | None:
    """The entries Redis trimmed past ``position``, by the stream's XINFO STREAM, if any.

    Redis 7 counts the entries ever added: fewer held than added, and the position older than
    the first held, means some were trimmed (counted exactly from the start, "0-0"). Redis 6.2
    has no such count, and a stream that begins after the position may just have had nothing
    there: None, and readers see gaps by sequence numbers alone.
    """
    added = info.get(b"entries-added")
    if added is None:  # Redis < 7
        return None
    first = info[b"recorded-first-entry-id"].decode()
    if added == info[b"length"] or position >= _parse_id(first):
        return None
    count = added - info[b"length"] if position == (0, 0) else None
    return EventGap(session_id, "{}-{}".format(*position), first, count)
