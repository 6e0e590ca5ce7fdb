"""Auto-batching: commands issued concurrently travel together in one pipeline.

On this kind of machine one awaited round trip costs the Python client far more than Redis spends
on the command, so a worker running many tasks sends their chunks, state transitions and acks in one
pipeline per flush. Two flushes are in flight at most, each on its own connection; whatever callers
queue meanwhile goes in the next one. A single caller's commands stay together and in order (one
caller's commands travel in one flush); commands of different callers are ordered only by their
callers' awaits.

A flush is one write and its replies read back, bounded as a whole by the client's socket timeout,
on a connection of the batcher's own, made like the pool's but without a socket timeout of its own.
redis-py bounds each write and each reply with that timeout (a timer, and a task per write) and
takes a connection from the pool for every pipeline: together a sixth of a busy worker's CPU. A
connection Redis closed between flushes is connected again before the next write; a flush cut
short disconnects it (redis-py does so for any read or write that is interrupted), so no reply is
ever read by the wrong caller. Commands are packed by hiredis when they are queued: a command that
cannot be packed fails its own caller only.

Acknowledgements (``acknowledge``) are the one exception to one command per call: the entries
acknowledged for one flush go at its end as one XACK per stream and group, so a worker finishing
many tasks at once acknowledges them in one command (a no-op task's commands in Redis 16.5 ->
15.6).
"""

import asyncio
import math
from collections.abc import Sequence
from typing import Any, Protocol

from hiredis import pack_command
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError, DataError, NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from by_framework.common.aio import cancel_and_wait
from by_framework.redis.connection import RedisClient, reply_timeout, unpooled_connection
from by_framework.redis.scripts import ALL_SCRIPTS, A, Script

RedisCommand = tuple[Any, ...]
_Queued = tuple[Sequence[RedisCommand], bytes, "asyncio.Future[list[Any]]"]
_Ack = tuple[str, str, str, "asyncio.Future[Any]"]  # stream, group, entry id: the XACK's reply

FLUSHES_IN_FLIGHT = 2
"""Flushes in flight at once, each on its own connection: while Redis runs one, the worker goes on
with its tasks and the next flush is already on its way, instead of the two taking turns."""

SOURCES = {script.sha: script.source for script in ALL_SCRIPTS}
"""Each script's source by its sha, to load it where Redis answers NOSCRIPT."""


class Batcher(Protocol):
    """What the engine's parts send commands through: a ``CommandBatcher`` on one Redis, a
    ``ClusterBatcher`` on a cluster."""

    async def execute(self, *commands: RedisCommand) -> list[Any]: ...

    async def acknowledge(self, stream: str, group: str, entry_id: str) -> None: ...

    async def aclose(self) -> None: ...


def evalsha(script: Script[A], keys: Sequence[str], args: A, *tail: Any) -> RedisCommand:
    """The script's call: ``args`` its NamedTuple (``Script.args``), ``tail`` the values that
    follow them for a script that takes a tail."""
    return ("EVALSHA", script.sha, len(keys), *keys, *args, *tail)


def pack_one(command: RedisCommand) -> bytes:
    try:
        return pack_command(command)
    except TypeError as exc:  # an argument that is not str, bytes, int or float
        raise DataError(f"cannot send {command!r} to Redis: {exc}") from None


async def _closed_by_redis(connection: AbstractConnection) -> bool:
    """Whether an idle connection has something to read (no reply is owed between flushes, so
    that is Redis closing it) or is broken. redis-py answers True for a closed socket up to 8.1
    and raises ConnectionError from 8.2 on: either way it is not written to again."""
    try:
        return await connection.can_read()
    except (ConnectionError, OSError):
        return True


def _fail(batch: Sequence[_Queued], acks: Sequence[_Ack], error: BaseException) -> None:
    """Every caller still waiting on these commands and acknowledgements gets ``error``."""
    futures: list[asyncio.Future[Any]] = [future for _, _, future in batch]
    futures += [future for _, _, _, future in acks]
    for future in futures:
        if not future.done():
            future.set_exception(error)


class CommandBatcher:
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis
        self._reply_timeout = reply_timeout(redis)
        self._response_callbacks = redis.response_callbacks
        self._queue: list[_Queued] = []
        self._acks: list[_Ack] = []
        self._wakeup = asyncio.Event()
        self._flushers: list[asyncio.Task[None]] = []

    async def execute(self, *commands: RedisCommand) -> list[Any]:
        """Run the commands in order, in the next pipeline; return their replies."""
        return await self._settle(commands, await self.submit(commands))

    async def submit(self, commands: Sequence[RedisCommand]) -> list[Any]:
        """The commands' replies as they came, an error reply as an exception in its place."""
        packed = b"".join([pack_one(command) for command in commands])
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._queue.append((commands, packed, future))
        self._wake_flushers()
        return await future

    async def acknowledge(self, stream: str, group: str, entry_id: str) -> None:
        """XACK of one entry, in the next flush's XACK of its stream and group."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._acks.append((stream, group, entry_id, future))
        self._wake_flushers()
        reply = await future
        if isinstance(reply, ResponseError):
            await self._recover(("XACK", stream, group, entry_id), reply)

    def _wake_flushers(self) -> None:
        self._wakeup.set()
        if not self._flushers:
            self._flushers = [
                asyncio.create_task(self._flush_forever(), name="redis-batcher")
                for _ in range(FLUSHES_IN_FLIGHT)
            ]

    async def aclose(self) -> None:
        flushers, self._flushers = self._flushers, []
        for flusher in flushers:
            await cancel_and_wait(flusher)

    def _new_connection(self) -> AbstractConnection:
        assert isinstance(self._redis, Redis)
        return unpooled_connection(self._redis)

    async def _flush_forever(self) -> None:
        batch: list[_Queued] = []
        acks: list[_Ack] = []
        connection: AbstractConnection | None = None
        try:
            while True:
                await self._wakeup.wait()
                batch, self._queue = self._queue, []
                acks, self._acks = self._acks, []
                self._wakeup.clear()
                if batch or acks:
                    if connection is None:
                        connection = self._new_connection()
                    await self._flush(batch, acks, connection)
                    batch, acks = [], []
        except BaseException:
            # Closed or cancelled mid-flight: no caller may wait forever for a reply.
            closed = ConnectionError("the Redis engine closed before this command's reply came")
            _fail([*batch, *self._queue], [*acks, *self._acks], closed)
            self._queue, self._acks = [], []
            raise
        finally:
            if connection is not None:
                await connection.disconnect()

    async def _flush(
        self, batch: list[_Queued], acks: list[_Ack], connection: AbstractConnection
    ) -> None:
        entries: dict[tuple[str, str], list[str]] = {}
        for stream, group, entry_id, _ in acks:
            entries.setdefault((stream, group), []).append(entry_id)
        xacks = [("XACK", stream, group, *ids) for (stream, group), ids in entries.items()]
        queued = [command for commands, _, _ in batch for command in commands]
        try:
            packed = b"".join([*(part for _, part, _ in batch), *map(pack_one, xacks)])
            replies = await self._exchange(connection, [*queued, *xacks], packed)
        except Exception as exc:  # connection lost or timed out: every caller of this flush sees it
            # Never reused after a failed exchange, whatever the client library did with it: a
            # reply still owed on it would reach the next flush's callers.
            await connection.disconnect()
            _fail(batch, acks, exc)
            return
        position = 0
        for commands, _, future in batch:
            if not future.done():
                future.set_result(replies[position : position + len(commands)])
            position += len(commands)
        acked = dict(zip(entries, replies[position:], strict=True))
        for stream, group, _, ack in acks:
            if not ack.done():
                ack.set_result(acked[stream, group])

    async def _exchange(
        self, connection: AbstractConnection, commands: list[RedisCommand], packed: bytes
    ) -> list[Any]:
        """Send the commands (``packed``) in one write, read their replies (an error reply in
        its place, as an exception), each through redis-py's reply callback for its command."""
        try:
            async with asyncio.timeout(self._reply_timeout):
                return await self._send_and_read(connection, commands, packed)
        except TimeoutError:
            raise RedisTimeoutError(
                f"Redis sent no reply to {len(commands)} commands within {self._reply_timeout:g}s"
            ) from None

    async def _send_and_read(
        self, connection: AbstractConnection, commands: list[RedisCommand], packed: bytes
    ) -> list[Any]:
        if connection.is_connected and await _closed_by_redis(connection):
            # Redis closed it (restart, idle timeout; no reply is owed between flushes): it is
            # not written to, and is connected again below. (redis-py's pool skips this check
            # when its maintenance notifications are on, as they are by default.)
            await connection.disconnect()
        callbacks = self._response_callbacks
        await connection.send_packed_command(packed, check_health=False)  # connects if dropped
        replies: list[Any] = []
        for command in commands:
            try:
                reply = await connection.read_response(timeout=math.inf)  # no timer per reply
            except ResponseError as error:
                replies.append(error)
                continue
            callback = callbacks.get(command[0])
            replies.append(reply if callback is None else callback(reply))
        return replies

    async def _settle(self, commands: Sequence[RedisCommand], replies: list[Any]) -> list[Any]:
        """One caller's replies, settled in the caller's task (never in a flusher, which must
        go on flushing): an error reply is recovered from, or raised."""
        settled = []
        for command, reply in zip(commands, replies, strict=True):
            if isinstance(reply, ResponseError):
                reply = await self._recover(command, reply)
            settled.append(reply)
        return settled

    async def _recover(self, command: RedisCommand, error: ResponseError) -> Any:
        """The reply to a command that failed with ``error``, or the error raised: scripts Redis
        forgot (restart, SCRIPT FLUSH) are loaded, and the command run again."""
        if not isinstance(error, NoScriptError):
            raise error
        await self._redis.script_load(SOURCES[command[1]])
        return await self._redis.execute_command(*command)
