"""Session data streams: bounded (MAXLEN ~), expiring (TTL refreshed on every write)."""

import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from by_framework.common.aio import Backoff
from by_framework.protocol import ErrorEvent, MalformedEntry, SessionEvent, decode_event
from by_framework.redis.batching import CommandBatcher
from by_framework.redis.connection import HeldConnection
from by_framework.redis.keys import KeySpace
from by_framework.redis.replies import stream_entries


class RedisEventLog:
    def __init__(
        self, redis: Redis, batcher: CommandBatcher, keys: KeySpace, maxlen: int, ttl: int
    ) -> None:
        self._redis = redis
        self._batcher = batcher
        self._keys = keys
        self._maxlen = maxlen
        self._ttl = ttl

    async def append(self, session_id: str, *events: bytes) -> None:
        """Append, waiting out a Redis outage (the caller may cancel). A reply lost to a dropped
        connection can make an event land twice; readers drop such repeats by sequence."""
        stream = self._keys.session_data_stream(session_id)
        commands = [
            ("XADD", stream, "MAXLEN", "~", self._maxlen, "*", "e", event) for event in events
        ]
        backoff = Backoff()
        while True:
            try:
                await self._batcher.execute(*commands, ("EXPIRE", stream, self._ttl))
                return
            except (RedisConnectionError, RedisTimeoutError):
                await backoff.pause()

    def reader(self, session_id: str) -> "RedisEventReader":
        return RedisEventReader(self._redis, self._keys.session_data_stream(session_id))

    async def last_id(self, session_id: str) -> str:
        """Id of the newest event, or "0-0": reading after it sees only what comes next."""
        newest = await self._redis.xrevrange(self._keys.session_data_stream(session_id), count=1)
        return newest[0][0].decode() if newest else "0-0"


class RedisEventReader:
    """XREADs one session stream on a connection held for the follower's whole iteration."""

    def __init__(self, redis: Redis, stream: str) -> None:
        self._stream = stream
        self._connection = HeldConnection(redis)

    async def read(self, after: str, count: int, block_ms: int | None) -> list[SessionEvent]:
        block: tuple[Any, ...] = () if block_ms is None else ("BLOCK", block_ms)
        command = ("XREAD", "COUNT", count, *block, "STREAMS", self._stream, after)
        reply = await self._connection.call(command, block_ms)
        return [
            _decode(entry_id.decode(), fields)
            for _, entries in stream_entries(reply)
            for entry_id, fields in entries
        ]

    async def aclose(self) -> None:
        await self._connection.aclose()


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
