"""The auto-batcher on the real Redis: order, errors, forgotten scripts, closing, and the
acknowledgements it joins."""

import asyncio

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError, DataError, ResponseError, TimeoutError

from by_framework.redis.batching import FLUSHES_IN_FLIGHT, CommandBatcher, evalsha
from by_framework.redis.connection import create_redis
from by_framework.redis.scripts import RELEASE_LOCK
from tests.support import pending_entries
from tests.test_slots import Monitor


async def test_concurrent_callers_share_pipelines_and_keep_their_order(
    redis: Redis, key_prefix: str
) -> None:
    batcher = CommandBatcher(redis)
    key = f"{key_prefix}:list"
    try:
        replies = await asyncio.gather(
            *(batcher.execute(("RPUSH", key, i), ("LLEN", key)) for i in range(200))
        )
    finally:
        await batcher.aclose()
    assert [length for _, length in replies] == list(range(1, 201))
    assert [int(v) for v in await redis.lrange(key, 0, -1)] == list(range(200))


async def test_an_error_reaches_only_its_caller(redis: Redis, key_prefix: str) -> None:
    batcher = CommandBatcher(redis)
    try:
        good, bad = await asyncio.gather(
            batcher.execute(("SET", f"{key_prefix}:a", 1)),
            batcher.execute(("INCR", f"{key_prefix}:a"), ("LPUSH", f"{key_prefix}:a", 1)),
            return_exceptions=True,
        )
    finally:
        await batcher.aclose()
    assert good == [True]
    assert isinstance(bad, ResponseError) and "WRONGTYPE" in str(bad)


async def test_scripts_redis_forgot_are_loaded_again(redis: Redis, key_prefix: str) -> None:
    batcher = CommandBatcher(redis)
    try:
        await redis.script_flush()
        (reply,) = await batcher.execute(evalsha(RELEASE_LOCK, [f"{key_prefix}:lock"], ["t"]))
    finally:
        await batcher.aclose()
    assert reply == 0


async def test_closing_fails_waiting_callers_instead_of_leaving_them_hanging(
    redis: Redis, key_prefix: str
) -> None:
    batcher = CommandBatcher(redis)
    waiting = asyncio.create_task(batcher.execute(("BLPOP", f"{key_prefix}:never", 5)))
    await asyncio.sleep(0.1)  # the flush is in flight
    await batcher.aclose()
    with pytest.raises(ConnectionError, match="closed before this command's reply"):
        await asyncio.wait_for(waiting, 1)


async def test_a_flush_without_replies_in_time_fails_and_the_next_reads_its_own(
    redis_url: str, key_prefix: str
) -> None:
    """The whole flush is bounded by the client's socket timeout; the connection it was cut
    on is dropped, so a late reply is never read as another command's."""
    client = create_redis(url=redis_url, socket_timeout=0.2)
    batcher = CommandBatcher(client)
    try:
        with pytest.raises(TimeoutError, match=r"no reply to 1 commands within 0.2s"):
            await batcher.execute(("BLPOP", f"{key_prefix}:empty", 1))
        assert await batcher.execute(
            ("SET", f"{key_prefix}:k", "v"), ("GET", f"{key_prefix}:k")
        ) == [
            True,
            b"v",
        ]
    finally:
        await batcher.aclose()
        await client.aclose()


async def test_a_command_that_cannot_be_sent_fails_only_its_caller(
    redis: Redis, key_prefix: str
) -> None:
    batcher = CommandBatcher(redis)
    try:
        good, bad = await asyncio.gather(
            batcher.execute(("SET", f"{key_prefix}:a", 1)),
            batcher.execute(("SET", f"{key_prefix}:b", None)),
            return_exceptions=True,
        )
    finally:
        await batcher.aclose()
    assert good == [True]
    assert isinstance(bad, DataError) and "cannot send ('SET'" in str(bad)
    assert await redis.exists(f"{key_prefix}:b") == 0


async def _kill_batcher_connections(
    redis: Redis, name: str, command: str | None = None
) -> set[int]:
    """Close the connections of the client named ``name`` (those last running ``command``)."""
    killed = set()
    for client in await redis.client_list():
        if client["name"] == name and command in (None, client["cmd"]):
            await redis.client_kill_filter(_id=client["id"])
            killed.add(int(client["id"]))
    return killed


async def test_connections_redis_closed_between_flushes_are_replaced_before_the_next(
    redis_url: str, redis: Redis, key_prefix: str
) -> None:
    name = f"{key_prefix}-batcher"
    client = create_redis(url=redis_url, client_name=name)
    batcher = CommandBatcher(client)
    try:
        await asyncio.gather(*(batcher.execute(("CLIENT", "ID")) for _ in range(50)))
        killed = await _kill_batcher_connections(redis, name)
        assert killed
        await asyncio.sleep(0.2)  # the close reaches this process
        assert await batcher.execute(
            ("SET", f"{key_prefix}:k", "v"), ("GET", f"{key_prefix}:k")
        ) == [True, b"v"]
        ids = await asyncio.gather(*(batcher.execute(("CLIENT", "ID")) for _ in range(50)))
        assert not {connection_id for (connection_id,) in ids} & killed
    finally:
        await batcher.aclose()
        await client.aclose()


async def test_a_connection_closed_during_a_flush_fails_that_flush_and_the_next_reconnects(
    redis_url: str, redis: Redis, key_prefix: str
) -> None:
    """A flush whose connection is closed under it fails with a ConnectionError (its callers
    retry: it cannot know what Redis ran); the next flush connects again."""
    name = f"{key_prefix}-batcher"
    client = create_redis(url=redis_url, client_name=name)
    batcher = CommandBatcher(client)
    try:
        blocked = asyncio.create_task(batcher.execute(("BLPOP", f"{key_prefix}:never", 5)))
        await asyncio.sleep(0.1)  # the flush is in flight
        assert await _kill_batcher_connections(redis, name, "blpop")
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(blocked, 2)
        for _ in range(3):  # whichever connection each flush goes out on
            assert await batcher.execute(("INCR", f"{key_prefix}:k")) != []
        assert await redis.get(f"{key_prefix}:k") == b"3"
    finally:
        await batcher.aclose()
        await client.aclose()


async def test_a_flush_goes_out_while_another_waits_for_its_replies(
    redis: Redis, key_prefix: str
) -> None:
    """FLUSHES_IN_FLIGHT flushes travel at once: one held up by Redis does not hold up the next."""
    batcher = CommandBatcher(redis)
    try:
        blocked = asyncio.create_task(batcher.execute(("BLPOP", f"{key_prefix}:later", 5)))
        await asyncio.sleep(0.1)  # the first flush is in flight, waiting on BLPOP
        assert await asyncio.wait_for(batcher.execute(("RPUSH", f"{key_prefix}:later", 1)), 1)
        assert await asyncio.wait_for(blocked, 1) == [(f"{key_prefix}:later".encode(), b"1")]
    finally:
        await batcher.aclose()


async def test_acknowledgements_of_one_flush_go_as_one_xack_per_stream_and_group(
    redis: Redis, key_prefix: str
) -> None:
    streams = [f"{key_prefix}:s{n}" for n in range(2)]
    pending = {stream: await pending_entries(redis, stream, 5) for stream in streams}
    batcher = CommandBatcher(redis)
    async with Monitor(redis, key_prefix) as monitor:
        try:
            *acked, (stored,) = await asyncio.gather(
                *(
                    batcher.acknowledge(s, "g", entry_id)
                    for s in streams
                    for entry_id in pending[s]
                ),
                batcher.execute(("SET", f"{key_prefix}:k", "v")),
            )
        finally:
            await batcher.aclose()
        await monitor.caught_up(redis)
    assert acked == [None] * 10 and stored is True
    xacks = [command.args for command in monitor.commands if command.name == b"XACK"]
    assert sorted(xacks) == sorted(
        [b"XACK", s.encode(), b"g", *(entry_id.encode() for entry_id in pending[s])]
        for s in streams
    )
    for stream in streams:
        assert (await redis.xpending(stream, "g"))["pending"] == 0


async def test_an_acknowledgement_that_fails_fails_only_the_callers_of_its_stream(
    redis: Redis, key_prefix: str
) -> None:
    stream, not_a_stream = f"{key_prefix}:s", f"{key_prefix}:string"
    (entry_id,) = await pending_entries(redis, stream, 1)
    await redis.set(not_a_stream, "x")
    batcher = CommandBatcher(redis)
    try:
        wrong, right = await asyncio.gather(
            batcher.acknowledge(not_a_stream, "g", "1-0"),
            batcher.acknowledge(stream, "g", entry_id),
            return_exceptions=True,
        )
    finally:
        await batcher.aclose()
    assert isinstance(wrong, ResponseError) and "WRONGTYPE" in str(wrong)
    assert right is None
    assert (await redis.xpending(stream, "g"))["pending"] == 0


async def test_closing_fails_acknowledgements_still_waiting_for_a_flush(
    redis: Redis, key_prefix: str
) -> None:
    batcher = CommandBatcher(redis)
    (entry_id,) = await pending_entries(redis, f"{key_prefix}:s", 1)
    blocked = []
    for _ in range(FLUSHES_IN_FLIGHT):  # every flusher holds a flush in flight
        blocked.append(asyncio.create_task(batcher.execute(("BLPOP", f"{key_prefix}:never", 5))))
        await asyncio.sleep(0.1)
    waiting = asyncio.create_task(batcher.acknowledge(f"{key_prefix}:s", "g", entry_id))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    await batcher.aclose()
    for task in [*blocked, waiting]:
        with pytest.raises(ConnectionError, match="closed before this command's reply"):
            await asyncio.wait_for(task, 1)
    assert (await redis.xpending(f"{key_prefix}:s", "g"))["pending"] == 1
