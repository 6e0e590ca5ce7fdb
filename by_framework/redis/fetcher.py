"""Fetching a worker's control streams: XREADGROUP for one consumer, on connections held for the
loop that fetches (a worker's consumption loop, its notice loop).

On one Redis, one blocking read covers every stream. On a Redis Cluster a read may not span slots
(CROSSSLOT, even on one node), so the streams are read a slot at a time (streams of one slot
together), each slot's blocking read on a connection of its own to the slot's master, all at
once. The first read to answer ends the others' waits (CLIENT UNBLOCK: they answer as if their
block time were over, with nothing read, so nothing is taken off a stream that the fetch would
not hand out); their answers are merged.
"""

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import AskError, ClusterDownError, MovedError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from by_framework.ports import Delivery
from by_framework.redis.batching import Batcher
from by_framework.redis.cluster_batching import ClusterBatcher, ClusterUnavailable
from by_framework.redis.connection import HeldConnection, RedisClient
from by_framework.redis.orchestration import NOTICE_FIELD
from by_framework.redis.replies import stream_entries

log = logging.getLogger("by_framework.worker")

WAKE_FIELD = b"wake"
ASKED_PAUSE = 0.1  # seconds after a read of a migrating slot's target that found nothing
UNBLOCK_RETRY = 0.02
"""Seconds between CLIENT UNBLOCKs of a slot's read that was not blocked yet (still on its way)."""


@dataclass(frozen=True, slots=True)
class Markers:
    """Where a consumer's own entries that are not commands may be: wake-ups of its blocked
    read (``{wake: 1}``) on its own stream, notices (``{n: key}``) on its notice stream. The
    same shapes anywhere else are entries like any other (a command's decoding refuses them:
    dead-lettered), so that a forged or stray one is seen, not silently acknowledged."""

    own_stream: str
    notice_stream: str


async def create_groups(redis: RedisClient, group: str, streams: Sequence[str]) -> None:
    """Create the consumer group on each stream (and the stream), from its first entry: entries
    a client added to a stream that had lost its group are read too. An existing group stays."""
    pipe = redis.pipeline(transaction=False)
    for stream in streams:
        pipe.xgroup_create(stream, group, id="0", mkstream=True)
    for reply in await pipe.execute(raise_on_error=False):
        if isinstance(reply, ResponseError) and "BUSYGROUP" not in str(reply):
            raise reply


def fetcher_for(
    redis: RedisClient,
    batcher: Batcher,
    group: str,
    streams: Sequence[str],
    consumer: str,
    markers: Markers,
) -> "RedisFetcher | ClusterFetcher":
    """The fetcher of the streams for the consumer, on one Redis or on a cluster."""
    if isinstance(redis, RedisCluster):
        assert isinstance(batcher, ClusterBatcher)
        return ClusterFetcher(redis, batcher, group, streams, consumer, markers)
    assert isinstance(redis, Redis)
    return RedisFetcher(redis, batcher, group, streams, consumer, markers)


def _lost_stream(error: ResponseError) -> bool:
    """Whether a read failed because a stream or its group is gone: deleted, flushed, or lost
    with a restart that kept no data (NOGROUP), or deleted while the read blocked on it."""
    return str(error).startswith(("NOGROUP", "UNBLOCKED"))


def _read_command(
    group: str, consumer: str, streams: Sequence[str], count: int, block_ms: int | None
) -> tuple[Any, ...]:
    """XREADGROUP of the consumer's new entries, blocking ``block_ms`` (0: not at all), or with
    None, of its own pending ones."""
    start = ">" if block_ms is not None else "0"
    block = ("BLOCK", block_ms) if block_ms else ()
    return ("XREADGROUP", "GROUP", group, consumer, "COUNT", count, *block,
            "STREAMS", *streams, *[start] * len(streams))  # fmt: skip


def _deliveries(
    group: str, reply: Any, acks: list[tuple[Any, ...]], markers: Markers
) -> list[Delivery]:
    """The deliveries of a read's reply; wake-ups and notices add their XACK to ``acks``."""
    deliveries = []
    for stream, entries in stream_entries(reply):
        name = stream.decode()
        for entry_id, fields in entries:
            if name == markers.own_stream and fields.keys() == {WAKE_FIELD}:
                acks.append(("XACK", name, group, entry_id))
            elif name == markers.notice_stream and fields.keys() == {NOTICE_FIELD}:
                acks.append(("XACK", name, group, entry_id))
                notice = fields[NOTICE_FIELD].decode(errors="replace")
                deliveries.append(Delivery(name, entry_id.decode(), {}, notice=notice))
            else:
                # A pending entry deleted from the stream (trimmed) comes back with no fields.
                deliveries.append(Delivery(name, entry_id.decode(), fields))
    return deliveries


class RedisFetcher:
    """XREADGROUPs a set of control streams for one consumer, in one read, on one Redis."""

    def __init__(
        self,
        redis: Redis,
        batcher: Batcher,
        group: str,
        streams: Sequence[str],
        consumer: str,
        markers: Markers,
    ) -> None:
        self._redis = redis
        self._markers = markers
        self._batcher = batcher
        self._connection = HeldConnection(redis)
        self._group = group
        self._streams = list(streams)
        self._consumer = consumer

    async def fetch(self, count: int, block_ms: int, *, own_pending: bool) -> list[Delivery]:
        """The deliveries read; none when a stream or group was gone, which is made again."""
        block = None if own_pending else block_ms
        command = _read_command(self._group, self._consumer, self._streams, count, block)
        try:
            reply = await self._connection.call(command, block)
        except ResponseError as error:
            if not _lost_stream(error):
                raise
            log.warning("%s; recreating the consumer group %r", error, self._group)
            await create_groups(self._redis, self._group, self._streams)
            return []
        acks: list[tuple[Any, ...]] = []
        deliveries = _deliveries(self._group, reply, acks, self._markers)
        if acks:
            await self._batcher.execute(*acks)
        return deliveries

    async def aclose(self) -> None:
        await self._connection.aclose()


class _SlotReader:
    """The reads of the streams of one slot, on a connection to the master that serves it (a
    new one when the slot moved)."""

    def __init__(self, fetcher: "ClusterFetcher", streams: list[str]) -> None:
        self._fetcher = fetcher
        self.streams = streams
        self.node: ClusterNode | None = None
        self.client_id: int | None = None
        self._connection: HeldConnection | None = None

    async def read(self, count: int, block_ms: int | None) -> list[Delivery]:
        """The slot's deliveries (none when the slot moved or a stream or group was gone,
        which is made again); ``ClusterUnavailable`` when its master cannot be reached."""
        fetcher = self._fetcher
        topology = fetcher.batcher.topology
        node = topology.node_of(("XREADGROUP", "STREAMS", self.streams[0]))
        if node != self.node or self._connection is None:
            await self.aclose()
            self.node, self._connection = node, HeldConnection(fetcher.redis, node)
        connection = self._connection
        command = _read_command(fetcher.group, fetcher.consumer, self.streams, count, block_ms)
        try:
            self.client_id = await connection.client_id()
            reply = await connection.call(command, block_ms)
        except MovedError as error:  # resharded: the next read goes to the new master
            await topology.moved(error)
            return []
        except AskError as error:  # being resharded, and the streams are on the target now
            target = topology.node_at(error.host, error.port)
            reply = await self._asked(target, count, own_pending=block_ms is None)
        except ClusterDownError as error:
            topology.doubt()
            raise ClusterUnavailable(str(error)) from error
        except ResponseError as error:
            if str(error).startswith("UNBLOCKED"):
                # The stream went while the read blocked: deleted, or migrated to another
                # node. The next read finds out which (NOGROUP, or a redirection).
                return []
            if not _lost_stream(error):
                raise
            log.warning("%s; recreating the consumer group %r", error, fetcher.group)
            await create_groups(fetcher.redis, fetcher.group, self.streams)
            return []
        except (RedisConnectionError, RedisTimeoutError, OSError) as error:
            topology.doubt()
            raise ClusterUnavailable(f"{node.name}: {error}") from error
        finally:
            self.client_id = None  # no longer blocked: nothing to unblock
        acks: list[tuple[Any, ...]] = []
        deliveries = _deliveries(fetcher.group, reply, acks, fetcher.markers)
        if acks:
            await fetcher.batcher.execute(*acks)
        return deliveries

    async def _asked(self, target: ClusterNode, count: int, *, own_pending: bool) -> Any:
        """One read (no wait: ASKING covers one command) on the node the slot is migrating to;
        a pause first when it finds nothing, so a long migration is not read in a busy loop."""
        fetcher = self._fetcher
        block = None if own_pending else 0
        command = _read_command(fetcher.group, fetcher.consumer, self.streams, count, block)
        asked = HeldConnection(fetcher.redis, target)
        try:
            await asked.call(("ASKING",))
            reply = await asked.call(command)
        except (RedisConnectionError, RedisTimeoutError, OSError) as error:
            fetcher.batcher.topology.doubt()
            raise ClusterUnavailable(f"{target.name}: {error}") from error
        finally:
            await asked.aclose()
        if not reply:
            await asyncio.sleep(ASKED_PAUSE)
        return reply

    async def unblock(self) -> None:
        """End the wait of the read blocked now, if any (it answers with nothing read)."""
        if self.client_id is None or self.node is None:
            return
        try:
            await self._fetcher.batcher.execute_on(self.node, ("CLIENT", "UNBLOCK", self.client_id))
        except ClusterUnavailable:
            pass  # the read fails on its own

    async def aclose(self) -> None:
        if self._connection is not None:
            await self._connection.aclose()
            self._connection = None


class ClusterFetcher:
    """``RedisFetcher`` on a Redis Cluster: a read per slot, all at once, merged."""

    def __init__(
        self,
        redis: RedisCluster,
        batcher: ClusterBatcher,
        group: str,
        streams: Sequence[str],
        consumer: str,
        markers: Markers,
    ) -> None:
        self.redis = redis
        self.batcher = batcher
        self.group = group
        self.consumer = consumer
        self.markers = markers
        by_slot: dict[int, list[str]] = {}
        for stream in streams:
            by_slot.setdefault(redis.keyslot(stream), []).append(stream)
        self._readers = [_SlotReader(self, slot_streams) for slot_streams in by_slot.values()]

    async def fetch(self, count: int, block_ms: int, *, own_pending: bool) -> list[Delivery]:
        """The deliveries of every slot's read; with ``own_pending``, the consumer's own pending
        ones (no wait). Raises ``ClusterUnavailable`` only if no read handed anything out."""
        await self.batcher.topology.ready()
        block = None if own_pending else block_ms
        reads = [asyncio.create_task(reader.read(count, block)) for reader in self._readers]
        try:
            if block is not None and len(reads) > 1:
                await self._first_then_the_rest(reads)
            await asyncio.wait(reads)
        except BaseException:
            for read in reads:
                read.cancel()
            await asyncio.gather(*reads, return_exceptions=True)
            raise
        return _merged(read for read in reads)

    async def _first_then_the_rest(self, reads: list["asyncio.Task[list[Delivery]]"]) -> None:
        """Once one read answers, unblock the others until they all answered."""
        _, pending = await asyncio.wait(reads, return_when=asyncio.FIRST_COMPLETED)
        while pending:
            waiting = [reader for reader, read in zip(self._readers, reads, strict=True)
                       if read in pending]  # fmt: skip
            await asyncio.gather(*(reader.unblock() for reader in waiting))
            _, pending = await asyncio.wait(pending, timeout=UNBLOCK_RETRY)

    async def aclose(self) -> None:
        for reader in self._readers:
            await reader.aclose()


def _merged(reads: Iterable["asyncio.Task[list[Delivery]]"]) -> list[Delivery]:
    """Every read's deliveries; a read's error is raised only when no read handed any out (the
    entries read are the consumer's now: dropping them would leave them to the lease sweep)."""
    deliveries: list[Delivery] = []
    errors: list[BaseException] = []
    for read in reads:
        error = read.exception()
        if error is None:
            deliveries.extend(read.result())
        else:
            errors.append(error)
    if errors and not deliveries:
        raise errors[0]
    for error in errors:
        log.warning("a slot's fetch failed (%s); the others' entries are handed out", error)
    return deliveries
