"""Write-behind of a task's events on the real Redis: order, backpressure, errors, abandon."""

import asyncio

import pytest
from redis.asyncio import Redis

from by_framework.errors import EventWriteError
from by_framework.redis.batching import FLUSHES_IN_FLIGHT, CommandBatcher
from by_framework.redis.events import RedisEventLog
from by_framework.redis.keys import KeySpace
from by_framework.redis.ttl_refreshes import TtlRefreshes
from by_framework.worker.event_writer import EventWriter
from tests.support import eventually


@pytest.fixture
async def event_log(redis: Redis, key_prefix: str):
    batcher = CommandBatcher(redis)
    yield RedisEventLog(redis, batcher, KeySpace(key_prefix), 100_000, TtlRefreshes(60))
    await batcher.aclose()


async def hold_flushes(event_log: RedisEventLog, key: str, seconds: int) -> list[asyncio.Task]:
    """Hold every flush the batcher can have in flight on a BLPOP of ``key``: a write queued now
    waits behind them. Pushing FLUSHES_IN_FLIGHT values to ``key`` lets them go."""
    blockers = []
    for _ in range(FLUSHES_IN_FLIGHT):  # one by one: each goes out in a flush of its own
        blockers.append(asyncio.create_task(event_log._batcher.execute(("BLPOP", key, seconds))))
        await asyncio.sleep(0.05)
    return blockers


async def release(redis: Redis, key: str, blockers: list[asyncio.Task]) -> None:
    await redis.rpush(key, *[1] * len(blockers))
    await asyncio.gather(*blockers)


async def put_held_back(
    writer: EventWriter, event: bytes, redis: Redis, key: str, blockers: list[asyncio.Task]
) -> None:
    """``writer.put(event)`` waits while the flushes are held, and returns once they go."""
    put = asyncio.create_task(writer.put(event))
    await asyncio.sleep(0.1)  # on purpose: a window in which it must not return
    assert not put.done()
    await release(redis, key, blockers)
    await asyncio.wait_for(put, 5)


async def taken(writer: EventWriter) -> bool:
    """Whether the writer has taken all that was queued (and sent it, or waits to)."""
    return writer.backlog == 0


async def stream_values(redis: Redis, key_prefix: str, session_id: str) -> list[bytes]:
    entries = await redis.xrange(KeySpace(key_prefix).session_data_stream(session_id))
    return [fields[b"e"] for _, fields in entries]


async def test_events_land_in_order_and_flush_waits_for_all(
    redis: Redis, key_prefix: str, event_log: RedisEventLog
) -> None:
    writer = EventWriter(event_log, "s1", backlog=16)
    for i in range(1000):
        await writer.put(str(i).encode())  # returns at once unless 16 are queued
    await writer.flush()
    assert await stream_values(redis, key_prefix, "s1") == [str(i).encode() for i in range(1000)]


async def test_a_full_backlog_holds_the_task_back(
    redis: Redis, key_prefix: str, event_log: RedisEventLog
) -> None:
    writer = EventWriter(event_log, "s2", backlog=2)
    # Hold the write in flight: the batcher's pipelines wait on this client's BLPOPs.
    blockers = await hold_flushes(event_log, f"{key_prefix}:b", 1)
    await writer.put(b"a")
    # Taken by the writer, which now waits behind the BLPOP.
    await eventually(lambda: taken(writer), what='the writer to take "a"')
    await writer.put(b"b")
    await writer.put(b"c")  # backlog 2 full
    await put_held_back(writer, b"d", redis, f"{key_prefix}:b", blockers)
    await writer.flush()
    assert await stream_values(redis, key_prefix, "s2") == [b"a", b"b", b"c", b"d"]


async def test_a_task_fills_its_next_batch_while_the_full_one_is_written(
    redis: Redis, key_prefix: str, event_log: RedisEventLog
) -> None:
    """A full backlog waits for the writer to take it, not for its write: producing and
    writing overlap (waiting for the write made a streaming task and Redis take turns); at most
    one batch is in flight and one queued."""
    writer = EventWriter(event_log, "s-next", backlog=2)
    blockers = await hold_flushes(event_log, f"{key_prefix}:b", 5)
    async with asyncio.timeout(1):
        for event in (b"a", b"b", b"c", b"d"):  # "c" finds a, b queued: the writer takes them
            await writer.put(event)
    assert writer.backlog == 2  # c, d queued; a, b in flight behind the BLPOP
    await put_held_back(writer, b"e", redis, f"{key_prefix}:b", blockers)
    await writer.flush()
    assert await stream_values(redis, key_prefix, "s-next") == [b"a", b"b", b"c", b"d", b"e"]


async def test_a_refused_write_is_raised_at_the_next_emit_and_at_flush(
    redis: Redis, key_prefix: str, event_log: RedisEventLog
) -> None:
    await redis.set(KeySpace(key_prefix).session_data_stream("s3"), "not a stream")
    writer = EventWriter(event_log, "s3")
    await writer.put(b"x")
    with pytest.raises(EventWriteError, match=r"session 's3'.*WRONGTYPE"):
        await writer.flush()
    with pytest.raises(EventWriteError, match="WRONGTYPE"):
        await writer.put(b"y")


async def test_closing_abandons_what_is_queued_without_hanging(
    redis: Redis, key_prefix: str, event_log: RedisEventLog
) -> None:
    writer = EventWriter(event_log, "s4")
    blockers = await hold_flushes(event_log, f"{key_prefix}:b", 2)
    await writer.put(b"a")
    await eventually(lambda: taken(writer), what='the writer to take "a"')  # "a" is in flight
    await writer.put(b"b")  # queued behind it
    await asyncio.wait_for(writer.aclose(), 5)
    assert writer.backlog == 0
    await asyncio.wait_for(writer.flush(), 1)  # nothing left to wait for
    await release(redis, f"{key_prefix}:b", blockers)
    # "a" had left with the batcher and lands; "b" was dropped: an event written after it
    # comes right after "a".
    after = EventWriter(event_log, "s4")
    await after.put(b"c")
    await after.flush()
    assert await stream_values(redis, key_prefix, "s4") == [b"a", b"c"]


async def test_take_hands_over_what_is_queued_after_the_write_in_flight(
    redis: Redis, key_prefix: str, event_log: RedisEventLog
) -> None:
    writer = EventWriter(event_log, "s5")
    await writer.put(b"a")
    assert await writer.take() == [b"a"]  # not written yet: handed over, never written here
    await asyncio.sleep(0.05)  # on purpose: a window in which nothing must be written
    assert await stream_values(redis, key_prefix, "s5") == []

    blockers = await hold_flushes(event_log, f"{key_prefix}:b", 2)
    await writer.put(b"b")
    # The writer took "b" and waits behind the BLPOP.
    await eventually(lambda: taken(writer), what='the writer to take "b"')
    await writer.put(b"c")
    taking = asyncio.create_task(writer.take())
    await asyncio.sleep(0.1)  # on purpose: a window in which it must not return
    assert not taking.done()  # "b" is in flight: take waits for it
    await release(redis, f"{key_prefix}:b", blockers)
    assert await asyncio.wait_for(taking, 5) == []  # the writer wrote "c" after "b"
    assert await stream_values(redis, key_prefix, "s5") == [b"b", b"c"]


async def test_events_of_a_body_that_ends_at_once_are_taken_with_its_end(
    redis: Redis, key_prefix: str, event_log: RedisEventLog
) -> None:
    """The runner runs a task's body in a task of its own and hears of its end through
    callbacks: events the body queued just before ending are still queued when the runner
    takes them (they go with the outcome, in one round trip), not written on their own."""
    writer = EventWriter(event_log, "s-end")

    async def body() -> None:
        await writer.put(b"last chunk")

    await asyncio.wait({asyncio.create_task(body())})
    assert await writer.take() == [b"last chunk"]
    await asyncio.sleep(0.1)  # a writer started anyway would have written it by now
    assert await stream_values(redis, key_prefix, "s-end") == []


async def test_appends_set_the_streams_ttl_once_per_hundredth_of_it_and_on_a_stream_they_make(
    redis: Redis, key_prefix: str
) -> None:
    """The first append sets the TTL (6,000 s); appends within 60 s of it leave the TTL be (here
    set longer meanwhile, to show it); an append that finds the stream gone makes it again,
    every event in order, with its TTL."""
    batcher = CommandBatcher(redis)
    event_log = RedisEventLog(redis, batcher, KeySpace(key_prefix), 100, TtlRefreshes(6000))
    stream = KeySpace(key_prefix).session_data_stream("s-ttl")
    try:
        await event_log.append("s-ttl", b"1")
        assert 0 < await redis.ttl(stream) <= 6000
        await redis.expire(stream, 100_000)
        await event_log.append("s-ttl", b"2", b"3")
        assert await redis.ttl(stream) > 6000
        await redis.delete(stream)
        await event_log.append("s-ttl", b"4", b"5")
        assert [fields[b"e"] for _, fields in await redis.xrange(stream)] == [b"4", b"5"]
        assert 0 < await redis.ttl(stream) <= 6000
    finally:
        await batcher.aclose()
