"""Following a session: a connection of the follower's own, outside the client's pool, closed
however the follower stops, with no reply left behind on it; replies read alike in RESP2 and
RESP3."""

import asyncio

import pytest
from redis.asyncio import BlockingConnectionPool, Redis

from by_framework import GatewayClient, Settings, StreamChunkEvent
from by_framework.redis.engine import RedisEngine
from tests.support import write_chunks

FOLLOWER = "follower-under-test"


async def read_texts(client: GatewayClient, session: str, count: int) -> list[str]:
    texts = []
    async for item in client.events(session, timeout=5):
        assert isinstance(item.event, StreamChunkEvent)
        texts.append(item.event.content)
        if len(texts) == count:
            break
    return texts


async def connections_named(redis: Redis, name: str) -> int:
    return sum(1 for client in await redis.client_list() if client["name"] == name)


@pytest.fixture
async def one_connection(redis_url: str) -> Redis:
    """A client whose pool has a single connection, and gives up waiting for it after 2 s; its
    connections (its followers' too) are named, to be counted in CLIENT LIST."""
    pool = BlockingConnectionPool.from_url(
        redis_url, max_connections=1, timeout=2, client_name=FOLLOWER
    )
    redis = Redis(connection_pool=pool)
    yield redis
    await redis.aclose()


async def test_a_follower_that_breaks_off_closes_its_connection(
    one_connection: Redis, redis: Redis, settings: Settings
) -> None:
    client = GatewayClient(one_connection, settings=settings)
    await write_chunks(redis, settings, "s-back", "a", "b", "c")
    for _ in range(3):
        assert await read_texts(client, "s-back", 2) == ["a", "b"]
    await asyncio.sleep(0.1)  # the broken-off iterations are closed by the loop
    assert await connections_named(redis, FOLLOWER) == 0


async def test_a_follower_leaves_the_pool_to_sends_and_lookups(
    one_connection: Redis, redis: Redis, settings: Settings
) -> None:
    client = GatewayClient(one_connection, settings=settings)
    followers = [asyncio.create_task(read_texts(client, "s-pool", 1)) for _ in range(3)]
    await asyncio.sleep(0.3)  # all three blocked in XREAD
    assert await one_connection.ping()  # the pool's only connection is free
    assert await connections_named(redis, FOLLOWER) == 4
    await write_chunks(redis, settings, "s-pool", "x")
    assert await asyncio.gather(*followers) == [["x"]] * 3
    await asyncio.sleep(0.1)
    assert await connections_named(redis, FOLLOWER) == 1


async def test_a_read_cut_short_leaves_no_reply_behind(redis: Redis, settings: Settings) -> None:
    engine = RedisEngine(redis, settings)
    reader = engine.events.reader("s-cut")
    try:
        cut = asyncio.create_task(reader.read("0-0", 10, 2000))
        await asyncio.sleep(0.3)  # blocked in XREAD after 0-0
        cut.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cut
        await write_chunks(redis, settings, "s-cut", "a", "b")
        # Had the cut XREAD stayed on the connection, Redis would answer it when "a" came, and
        # this read would take that answer ("a", from after 0-0) for its own.
        (first,) = await reader.read("0-0", 1, None)
        later = await reader.read(first.stream_id, 10, 2000)
        assert [e.event.content for e in later] == ["b"]
    finally:
        await reader.aclose()
        await engine.aclose()


@pytest.mark.parametrize("protocol", [2, 3])
async def test_events_read_alike_in_both_protocols(
    redis_url: str, settings: Settings, protocol: int
) -> None:
    redis = Redis.from_url(redis_url, protocol=protocol)
    try:
        await write_chunks(redis, settings, "s-resp", "one", "two", "three")
        client = GatewayClient(redis, settings=settings)
        assert await read_texts(client, "s-resp", 3) == ["one", "two", "three"]
    finally:
        await redis.aclose()
