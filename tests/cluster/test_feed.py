"""The session feed on a real Redis Cluster: sessions on every master followed at once, woken
by sharded Pub/Sub, read per master; a wake-up that never comes only delays events, and a
session whose slot moves is followed on its new master."""

import asyncio
import time

from redis.asyncio.cluster import RedisCluster

from by_framework import StreamChunkEvent
from by_framework.protocol import SessionEvent, encode_event
from by_framework.protocol.ids import new_id
from by_framework.redis.cluster_feed import POLL_SECONDS
from by_framework.redis.engine import RedisEngine
from by_framework.redis.feed import FeedFollower
from tests.support import LocalCluster


def sessions_on_each_master(engine: RedisEngine, cluster: RedisCluster) -> list[str]:
    """Two sessions per master."""
    by_port: dict[int, list[str]] = {}
    while any(len(by_port.get(node.port, [])) < 2 for node in cluster.get_primaries()):
        session_id = new_id()
        stream = engine.keys.session_data_stream(session_id)
        by_port.setdefault(cluster.get_node_from_key(stream).port, []).append(session_id)
    return [session for sessions in by_port.values() for session in sessions[:2]]


def chunk(text: str) -> bytes:
    return encode_event(new_id(), "echo", 1, StreamChunkEvent(content=text))


async def next_texts(reader: FeedFollower, after: str, timeout: float) -> tuple[list[str], str]:
    """The texts of the next events read after ``after`` (waiting up to ``timeout``), and the
    id to read after next."""
    events = await reader.read(after, 100, int(timeout * 1000))
    texts = [e.event.content for e in events if isinstance(e, SessionEvent)]
    last = events[-1].stream_id if events and isinstance(events[-1], SessionEvent) else after
    return texts, last


async def test_follows_sessions_on_every_master_woken_by_their_appends(
    engine: RedisEngine, cluster_client: RedisCluster
) -> None:
    sessions = sessions_on_each_master(engine, cluster_client)
    readers = [engine.events.reader(session_id) for session_id in sessions]
    positions = ["0-0"] * len(sessions)
    try:
        for round_ in range(3):
            for session_id in sessions:
                await engine.events.append(session_id, chunk(f"{session_id}:{round_}"))
            started = time.monotonic()
            for i, reader in enumerate(readers):
                texts, positions[i] = await next_texts(reader, positions[i], 5)
                assert texts == [f"{sessions[i]}:{round_}"]
            # woken, not found by the poll: well under a poll's period for them all
            assert time.monotonic() - started < POLL_SECONDS
    finally:
        for reader in readers:
            await reader.aclose()


async def test_an_append_that_wakes_nobody_is_read_by_the_poll(
    engine: RedisEngine, cluster_client: RedisCluster
) -> None:
    session_id = new_id()
    reader = engine.events.reader(session_id)
    try:
        assert await reader.read("0-0", 10, 200) == []
        stream = engine.keys.session_data_stream(session_id)
        await cluster_client.xadd(stream, {"e": chunk("unannounced")})  # no SPUBLISH
        texts, _ = await next_texts(reader, "0-0", POLL_SECONDS * 3)
        assert texts == ["unannounced"]
    finally:
        await reader.aclose()


async def test_a_followed_session_whose_slot_moves_is_followed_on_its_new_master(
    engine: RedisEngine, own_cluster: LocalCluster, cluster_client: RedisCluster
) -> None:
    session_id = new_id()
    stream = engine.keys.session_data_stream(session_id)
    reader = engine.events.reader(session_id)
    try:
        await engine.events.append(session_id, chunk("before"))
        texts, after = await next_texts(reader, "0-0", 5)
        assert texts == ["before"]
        slot = cluster_client.keyslot(stream)
        source = own_cluster.owner(slot)
        own_cluster.move_slot(slot, next(p for p in own_cluster.masters() if p != source))
        await asyncio.sleep(0.2)  # the feed hears its subscription end, subscribes again
        for text in ("after-1", "after-2"):
            await engine.events.append(session_id, chunk(text))
            texts, after = await next_texts(reader, after, 5)
            assert texts == [text]
    finally:
        await reader.aclose()


async def test_subscriptions_cut_by_redis_are_made_again(
    engine: RedisEngine, own_cluster: LocalCluster
) -> None:
    session_id = new_id()
    reader = engine.events.reader(session_id)
    try:
        await engine.events.append(session_id, chunk("first"))
        texts, after = await next_texts(reader, "0-0", 5)
        assert texts == ["first"]
        for port in own_cluster.masters():
            own_cluster.cli(port, "CLIENT", "KILL", "TYPE", "pubsub")
        await engine.events.append(session_id, chunk("second"))  # read by the poll, at worst
        texts, after = await next_texts(reader, after, POLL_SECONDS * 3)
        assert texts == ["second"]
        await asyncio.sleep(0.2)  # subscribed again by now
        await engine.events.append(session_id, chunk("third"))
        started = time.monotonic()
        texts, after = await next_texts(reader, after, 5)
        assert texts == ["third"]
        assert time.monotonic() - started < POLL_SECONDS  # woken again, not polled
    finally:
        await reader.aclose()
