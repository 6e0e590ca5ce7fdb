"""Following a session: one connection per follower, given back however the follower stops,
with no reply left behind on it; replies read alike in RESP2 and RESP3."""

import asyncio

import pytest
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from by_framework import GatewayClient, Settings, StreamChunkEvent
from tests.support import write_chunks


async def read_texts(client: GatewayClient, session: str, count: int) -> list[str]:
    texts = []
    async for item in client.events(session, timeout=5):
        assert isinstance(item.event, StreamChunkEvent)
        texts.append(item.event.content)
        if len(texts) == count:
            break
    return texts


@pytest.fixture
async def one_connection(redis_url: str) -> Redis:
    """A client whose pool has a single connection, and gives up waiting for it after 2 s."""
    pool = BlockingConnectionPool.from_url(redis_url, max_connections=1, timeout=2)
    redis = Redis(connection_pool=pool)
    yield redis
    await redis.aclose()


async def test_a_follower_that_breaks_off_gives_its_connection_back(
    one_connection: Redis, settings: Settings
) -> None:
    client = GatewayClient(one_connection, settings=settings)
    await write_chunks(one_connection, settings, "s-back", "a", "b", "c")
    for _ in range(3):  # a connection kept by the first follower would starve the second
        assert await read_texts(client, "s-back", 2) == ["a", "b"]
    assert await one_connection.ping()


async def test_a_follower_cancelled_while_blocked_leaves_no_reply_behind(
    one_connection: Redis, settings: Settings
) -> None:
    client = GatewayClient(one_connection, settings=settings)
    follower = asyncio.create_task(read_texts(client, "s-cut", 1))
    await asyncio.sleep(0.3)  # blocked in XREAD on the pool's only connection
    follower.cancel()
    with pytest.raises(asyncio.CancelledError):
        await follower
    # Had the cut XREAD stayed on the connection, Redis would answer it with this event, and
    # the next command on that connection would read that answer instead of its own.
    await write_chunks(one_connection, settings, "s-cut", "late")
    await one_connection.set(f"{settings.key_prefix}:probe", "mine")
    assert await one_connection.get(f"{settings.key_prefix}:probe") == b"mine"
    assert await read_texts(client, "s-cut", 1) == ["late"]


async def test_a_follower_holds_its_connection_while_it_follows(
    one_connection: Redis, redis: Redis, settings: Settings
) -> None:
    client = GatewayClient(one_connection, settings=settings)
    follower = asyncio.create_task(read_texts(client, "s-full", 1))
    await asyncio.sleep(0.3)  # it holds the only connection
    with pytest.raises(RedisConnectionError, match="No connection available"):
        await one_connection.ping()
    await write_chunks(redis, settings, "s-full", "x")
    assert await follower == ["x"]
    assert await one_connection.ping()


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
