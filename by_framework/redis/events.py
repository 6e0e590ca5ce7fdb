"""Session data streams: bounded (MAXLEN ~), expiring (TTL refreshed on every write)."""

import asyncio
import math
import time
from typing import Any

from hiredis import pack_command
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from by_framework.common.aio import Backoff
from by_framework.protocol import ErrorEvent, MalformedEntry, SessionEvent, decode_event
from by_framework.redis.batching import CommandBatcher
from by_framework.redis.connection import reply_timeout
from by_framework.redis.keys import KeySpace


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
    """XREADs one session stream on a pool connection held from the first read to ``aclose``.

    A follower reads over and over; redis-py's path for each command (a pool checkout under a
    lock, its retry wrapper, the reply turned into dicts) cost a busy client more than decoding
    the events it read. A read that fails or is cut short leaves the connection disconnected
    (redis-py does so for any interrupted read), and the next read connects it again.
    """

    def __init__(self, redis: Redis, stream: str) -> None:
        self._redis = redis
        self._stream = stream
        self._reply_timeout = reply_timeout(redis)
        self._connection: AbstractConnection | None = None

    async def read(self, after: str, count: int, block_ms: int | None) -> list[SessionEvent]:
        block: tuple[Any, ...] = () if block_ms is None else ("BLOCK", block_ms)
        packed = pack_command(("XREAD", "COUNT", count, *block, "STREAMS", self._stream, after))
        if self._connection is None:
            self._connection = await self._redis.connection_pool.get_connection()
        connection = self._connection
        wait = None if self._reply_timeout is None else self._reply_timeout + (block_ms or 0) / 1000
        try:
            async with asyncio.timeout(wait):
                await connection.send_packed_command(packed, check_health=False)
                reply = await connection.read_response(timeout=math.inf)
        except TimeoutError:  # the connection was disconnected when the read was cut short
            raise RedisTimeoutError(f"Redis sent no reply to an XREAD within {wait:g}s") from None
        if not reply:
            return []
        # RESP2: [[stream, entries]]; RESP3: {stream: entries}. Entries: [[id, [field, value, ...]]]
        entries = next(iter(reply.values())) if isinstance(reply, dict) else reply[0][1]
        return [_decode(entry_id.decode(), _pairs(fields)) for entry_id, fields in entries]

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await self._redis.connection_pool.release(connection)


def _pairs(fields: list[bytes] | None) -> dict[bytes, bytes]:
    if not fields:  # an entry deleted while pending comes back with no fields
        return {}
    items = iter(fields)
    return dict(zip(items, items, strict=True))


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
