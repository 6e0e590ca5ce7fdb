"""A worker's fetch on a real Redis Cluster: streams on different masters read at once, one
blocking read per slot; the first to answer ends the others' waits, and nothing is taken off a
stream that the fetch does not hand out."""

import asyncio
import time

import pytest
from redis.asyncio.cluster import RedisCluster

from by_framework.redis.cluster_batching import ClusterUnavailable
from by_framework.redis.engine import RedisEngine
from by_framework.redis.fetcher import ClusterFetcher
from tests.support import LocalCluster

BLOCK_MS = 3_000


def streams_on_each_master(cluster: RedisCluster, prefix: str) -> list[str]:
    """A stream per master, plus a second of the first one's slot (read together)."""
    by_port: dict[int, str] = {}
    n = 0
    while len(by_port) < len(cluster.get_primaries()):
        stream = f"{prefix}:ctrl:{{s{n}}}"
        by_port.setdefault(cluster.get_node_from_key(stream).port, stream)
        n += 1
    first = next(iter(by_port.values()))
    return [*by_port.values(), first + ":same-slot"]


async def pending_count(cluster: RedisCluster, streams: list[str], group: str) -> int:
    return sum([(await cluster.xpending(stream, group))["pending"] for stream in streams])


async def test_reads_streams_of_every_master_in_one_fetch(
    engine: RedisEngine, cluster_client: RedisCluster, cluster_prefix: str
) -> None:
    streams = streams_on_each_master(cluster_client, cluster_prefix)
    await engine.control.prepare(streams)
    for stream in streams:
        await cluster_client.xadd(stream, {"x": stream})
    fetcher = engine.control.fetcher(streams, "c1")
    assert isinstance(fetcher, ClusterFetcher)
    try:
        found: set[str] = set()
        async with asyncio.timeout(10):
            while found != set(streams):  # the fetch may answer before every slot's read did
                found |= {d.stream for d in await fetcher.fetch(10, BLOCK_MS, own_pending=False)}
        again = await fetcher.fetch(10, 0, own_pending=True)  # now pending, for this consumer
        assert sorted(d.stream for d in again) == sorted(streams)
        assert {d.fields[b"x"].decode() for d in again} == set(streams)
    finally:
        await fetcher.aclose()


async def test_an_entry_on_one_master_ends_the_wait_at_once(
    engine: RedisEngine, cluster_client: RedisCluster, cluster_prefix: str
) -> None:
    streams = streams_on_each_master(cluster_client, cluster_prefix)
    group = engine.settings.consumer_group
    await engine.control.prepare(streams)
    fetcher = engine.control.fetcher(streams, "c1")
    try:
        assert await fetcher.fetch(10, 300, own_pending=False) == []  # every read timed out
        for stream in streams:
            waiting = asyncio.create_task(fetcher.fetch(10, BLOCK_MS, own_pending=False))
            await asyncio.sleep(0.3)  # every slot's read is blocked by now
            started = time.monotonic()
            await cluster_client.xadd(stream, {"x": "1"})
            deliveries = await waiting
            assert time.monotonic() - started < 1.0  # not the block time
            assert [d.stream for d in deliveries] == [stream]
        # The reads that were unblocked took nothing: only what was handed out is pending.
        assert await pending_count(cluster_client, streams, group) == len(streams)
    finally:
        await fetcher.aclose()


async def test_a_slot_moved_under_a_blocked_read_is_read_on_its_new_master(
    engine: RedisEngine,
    cluster_client: RedisCluster,
    own_cluster: LocalCluster,
    cluster_prefix: str,
) -> None:
    streams = streams_on_each_master(cluster_client, cluster_prefix)[:2]
    await engine.control.prepare(streams)
    fetcher = engine.control.fetcher(streams, "c1")
    try:
        assert await fetcher.fetch(10, 100, own_pending=False) == []
        slot = cluster_client.keyslot(streams[0])
        source = own_cluster.owner(slot)
        target = next(port for port in own_cluster.masters() if port != source)
        own_cluster.move_slot(slot, target)
        await cluster_client.xadd(streams[0], {"x": "moved"})  # (the client follows MOVED)
        found = []
        async with asyncio.timeout(10):
            while not found:
                found = await fetcher.fetch(10, 500, own_pending=False)
        assert [d.fields[b"x"] for d in found] == [b"moved"]
    finally:
        await fetcher.aclose()


async def test_a_read_cut_by_redis_fails_as_unavailable_and_the_next_one_reads(
    engine: RedisEngine,
    cluster_client: RedisCluster,
    own_cluster: LocalCluster,
    cluster_prefix: str,
) -> None:
    streams = streams_on_each_master(cluster_client, cluster_prefix)
    await engine.control.prepare(streams)
    fetcher = engine.control.fetcher(streams, "c1")
    try:
        blocked = asyncio.create_task(fetcher.fetch(10, BLOCK_MS, own_pending=False))
        await asyncio.sleep(0.3)
        for port in own_cluster.masters():
            own_cluster.cli(port, "CLIENT", "KILL", "TYPE", "normal")
        with pytest.raises(ClusterUnavailable):
            await blocked
        await cluster_client.xadd(streams[1], {"x": "after"})
        found = []
        async with asyncio.timeout(10):
            while not found:
                found = await fetcher.fetch(10, 500, own_pending=False)
        assert [d.fields[b"x"] for d in found] == [b"after"]
    finally:
        await fetcher.aclose()
