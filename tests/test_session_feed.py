"""Following sessions through a client's feed: one blocking read for all its followers, each
handed its own events in order from its own position, whoever joins, leaves, lags or fails."""

import asyncio
import functools
import random
from collections.abc import AsyncIterator

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from by_framework import (
    EventGap,
    GatewayClient,
    SessionEvent,
    Settings,
    StreamChunkEvent,
    TaskEndEvent,
    TaskTimeoutError,
)
from by_framework.protocol import encode_event
from by_framework.protocol.ids import new_id
from by_framework.redis import feed
from by_framework.redis.connection import HeldConnection
from by_framework.redis.engine import RedisEngine
from by_framework.redis.keys import KeySpace
from tests.support import eventually, redis_7, write_chunks


async def read_texts(
    client: GatewayClient, session: str, count: int, after: str = "0-0"
) -> list[str]:
    texts = []
    async for item in client.events(session, after, timeout=5):
        assert isinstance(item.event, StreamChunkEvent)
        texts.append(item.event.content)
        if len(texts) == count:
            break
    return texts


@pytest.fixture
def name(key_prefix: str) -> str:
    """The name of the connections under test, this test's own, to be found in CLIENT LIST."""
    return f"feed-{key_prefix}"


@pytest.fixture
async def named_redis(redis_url: str, name: str) -> AsyncIterator[Redis]:
    redis = Redis.from_url(redis_url, client_name=name)
    yield redis
    await redis.aclose()


@pytest.fixture
async def named(named_redis: Redis, settings: Settings) -> AsyncIterator[GatewayClient]:
    """A client whose connections are named."""
    client = GatewayClient(named_redis, settings=settings)
    yield client
    await client.aclose()


async def blocked_reads(redis: Redis, name: str) -> list[int]:
    """Ids of the named connections blocked in XREAD."""
    return [c["id"] for c in await redis.client_list()
            if c["name"] == name and c["cmd"] == "xread" and "b" in c["flags"]]  # fmt: skip


@pytest.fixture
def long_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The feed's read blocks far longer than the tests wait: only a wake-up ends it early."""
    monkeypatch.setattr(feed, "READ_BLOCK_MS", 60_000)


@pytest.mark.usefixtures("long_reads")
async def test_followers_share_one_read_and_each_gets_its_own_events(
    named: GatewayClient, redis: Redis, settings: Settings, name: str
) -> None:
    sessions = [f"s-many-{i}" for i in range(20)]
    followers = [asyncio.create_task(read_texts(named, s, 2)) for s in sessions]

    async def all_joined() -> bool:
        return named.engine.events.followers == 20

    await eventually(all_joined, what="the twenty followers to join")
    assert len(await eventually(lambda: blocked_reads(redis, name), what="a blocked read")) == 1
    for session in sessions:
        await write_chunks(redis, settings, session, f"{session}/a", f"{session}/b")
    assert await asyncio.gather(*followers) == [[f"{s}/a", f"{s}/b"] for s in sessions]


@pytest.mark.usefixtures("long_reads")
async def test_a_follower_that_joins_behind_the_blocked_read_gets_every_event(
    named_redis: Redis, redis: Redis, settings: Settings, name: str
) -> None:
    engine = RedisEngine(named_redis, settings)
    ahead, behind = engine.events.reader("s-behind"), engine.events.reader("s-behind")
    try:
        await write_chunks(redis, settings, "s-behind", "a", "b")
        first = await ahead.read("0-0", 10, 1000)
        waiting = asyncio.create_task(ahead.read(first[-1].stream_id, 10, 5000))
        # The feed now reads s-behind after "b", for `ahead` (its only follower): blocked.
        await eventually(lambda: blocked_reads(redis, name), what="the read after 'b'")
        # "c" written without letting this loop run (a blocking client): the read that brings
        # it is answered, and not yet handed out, when `behind` joins from the start. "c" alone
        # must not be taken for all that comes after 0-0.
        chunk = encode_event("m2", "echo", 1, StreamChunkEvent(content="c"))
        with SyncRedis.from_url(settings.redis_url or "") as blocking:
            blocking.xadd(
                KeySpace(settings.key_prefix).session_data_stream("s-behind"), {"e": chunk}
            )
        from_start = await behind.read("0-0", 10, 5000)
        assert [e.event.content for e in from_start] == ["a", "b", "c"]
        assert [e.event.content for e in await waiting] == ["c"]
    finally:
        await ahead.aclose()
        await behind.aclose()
        await engine.aclose()


@pytest.mark.parametrize("backlog", [feed.BACKLOG, 2])
async def test_events_read_while_a_followers_gap_is_looked_for_come_again_after_the_gap(
    redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch, backlog: int
) -> None:
    """A follower joins and asks what was trimmed past its position in one round trip: a read
    may hand it events before the answer comes. Those are dropped and read again after the
    gap, so that the gap comes first. (The answer is held here until the read has come.) With
    a small backlog, that read fills it: the feed, with no follower to read for, is idle when
    the gap is found, and must be told to read again."""
    monkeypatch.setattr(feed, "BACKLOG", backlog)
    if not await redis_7(redis):
        pytest.skip("Redis < 7 does not count what it trimmed: readers see gaps by seq alone")
    await write_chunks(redis, settings, "s-trimmed", *"abcdefgh")
    stream = KeySpace(settings.key_prefix).session_data_stream("s-trimmed")
    await redis.xtrim(stream, maxlen=3, approximate=False)
    held = [entry_id.decode() for entry_id, _ in await redis.xrange(stream)]
    engine = RedisEngine(redis, settings)
    reader = engine.events.reader("s-trimmed")
    batcher = engine.events._feed._batcher
    execute = batcher.execute

    async def read_for_it() -> bool:
        return reader.waiting > 0

    held_once: list[bool] = []

    async def answer_after_a_read(*commands: tuple[object, ...]) -> list[object]:
        replies = await execute(*commands)
        if commands[0][0] == "XINFO" and not held_once:  # the first join's look
            held_once.append(True)
            await eventually(read_for_it, what="the events read for it")
        return replies

    monkeypatch.setattr(batcher, "execute", answer_after_a_read)
    try:
        items: list[SessionEvent | EventGap] = []
        async with asyncio.timeout(15):  # a feed left idle would never hand out the rest
            while len(items) < 4:
                events = [item for item in items if isinstance(item, SessionEvent)]
                items += await reader.read(events[-1].stream_id if events else "0-0", 10, 1000)
        gap, *again = items
        assert isinstance(gap, EventGap)
        assert (gap.after, gap.before, gap.trimmed) == ("0-0", held[0], 5)
        assert [(e.stream_id, e.event.content) for e in again if isinstance(e, SessionEvent)] == [
            (held[0], "f"), (held[1], "g"), (held[2], "h")
        ]  # fmt: skip
    finally:
        await reader.aclose()
        await engine.aclose()


@pytest.mark.usefixtures("long_reads")
async def test_a_follower_that_breaks_off_leaves_the_others_reading(
    named: GatewayClient, redis: Redis, settings: Settings, name: str
) -> None:
    await write_chunks(redis, settings, "s-quit", "x")
    assert await read_texts(named, "s-quit", 1) == ["x"]  # joined, took one, broke off
    staying = asyncio.create_task(read_texts(named, "s-stay", 1))

    async def only_staying_read_for() -> bool:
        return named.engine.events.followers == 1 and bool(await blocked_reads(redis, name))

    await eventually(only_staying_read_for, what="the quitter gone, the stayer read for")
    await write_chunks(redis, settings, "s-quit", "y")
    await write_chunks(redis, settings, "s-stay", "z")
    assert await staying == ["z"]
    assert await read_texts(named, "s-quit", 2) == ["x", "y"]  # a new follower, from the start


async def test_a_slow_follower_holds_back_neither_the_others_nor_memory(
    redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed, "BACKLOG", 10)
    monkeypatch.setattr(feed, "READ_COUNT", 5)
    engine = RedisEngine(redis, settings)
    slow, fast = engine.events.reader("s-slow"), engine.events.reader("s-fast")
    try:
        await write_chunks(redis, settings, "s-slow", *map(str, range(100)))
        (first,) = await slow.read("0-0", 1, 1000)  # joined; then it takes nothing for a while
        await write_chunks(redis, settings, "s-fast", *map(str, range(100)))
        taken, after = [], "0-0"
        while len(taken) < 100:
            batch = await fast.read(after, 7, 1000)
            taken += [e.event.content for e in batch]
            after = batch[-1].stream_id
        assert taken == [str(i) for i in range(100)]
        assert slow.waiting <= 10 + 5  # stopped reading for it at its backlog, within a read
        rest, after = [first.event.content], first.stream_id
        while len(rest) < 100:
            batch = await slow.read(after, 3, 1000)
            rest += [e.event.content for e in batch]
            after = batch[-1].stream_id
        assert rest == [str(i) for i in range(100)]  # read again for it as it caught up
    finally:
        await slow.aclose()
        await fast.aclose()
        await engine.aclose()


async def test_a_session_key_that_is_not_a_stream_fails_its_follower_only(
    named: GatewayClient, redis: Redis, settings: Settings
) -> None:
    keys = KeySpace(settings.key_prefix)
    await redis.set(keys.session_data_stream("s-wrong"), "not a stream")
    good = asyncio.create_task(read_texts(named, "s-good", 1))
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await read_texts(named, "s-wrong", 1)
    await write_chunks(redis, settings, "s-good", "fine")
    assert await good == ["fine"]


async def test_a_closed_client_follows_nothing(redis: Redis, settings: Settings) -> None:
    client = GatewayClient(redis, settings=settings)
    await client.aclose()
    with pytest.raises(RuntimeError, match="this client is closed"):
        await read_texts(client, "s-closed", 1)


async def test_a_position_that_is_not_a_stream_id_is_refused(named: GatewayClient) -> None:
    with pytest.raises(ValueError, match="not a stream id: 'latest'"):
        await read_texts(named, "s-any", 1, after="latest")


@pytest.mark.parametrize("protocol", [2, 3])
async def test_events_read_alike_in_both_protocols(
    redis_url: str, settings: Settings, protocol: int
) -> None:
    redis = Redis.from_url(redis_url, protocol=protocol)
    client = GatewayClient(redis, settings=settings)
    try:
        await write_chunks(redis, settings, "s-resp", "one", "two", "three")
        assert await read_texts(client, "s-resp", 3) == ["one", "two", "three"]
    finally:
        await client.aclose()
        await redis.aclose()


async def test_a_call_cut_short_leaves_no_reply_behind(
    named_redis: Redis, redis: Redis, settings: Settings, name: str
) -> None:
    stream = KeySpace(settings.key_prefix).session_data_stream("s-cut")
    connection = HeldConnection(named_redis)
    try:
        cut = asyncio.create_task(
            connection.call(("XREAD", "BLOCK", 2000, "STREAMS", stream, "0-0"), 2000)
        )
        await eventually(lambda: blocked_reads(redis, name), what="XREAD after 0-0 blocked")
        cut.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cut
        await redis.xadd(stream, {"e": "a"})
        # Had the cut XREAD stayed on the connection, Redis would answer it now, and this call
        # would take that answer for its own.
        assert await connection.call(("XLEN", stream)) == 1
    finally:
        await connection.aclose()


async def test_followers_joining_and_leaving_at_random_each_see_exactly_their_events(
    named: GatewayClient, redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While events stream into five sessions, forty followers join from the start or from an
    event already seen, take a few events, and leave; a small backlog makes some of them pause.
    Each must have seen the very next events of its session after its position, in order."""
    monkeypatch.setattr(feed, "BACKLOG", 8)
    monkeypatch.setattr(feed, "READ_COUNT", 5)
    keys = KeySpace(settings.key_prefix)
    sessions = [f"s-churn-{i}" for i in range(5)]
    rng = random.Random(7)
    seen_ids: dict[str, list[str]] = {s: [] for s in sessions}
    runs: list[tuple[str, str, list[str]]] = []  # session, start, ids read

    async def write() -> None:
        for n in range(200):
            await write_chunks(redis, settings, sessions[n % 5], str(n))
            if n % 20 == 0:
                await asyncio.sleep(0.01)

    async def follow(index: int) -> None:
        await asyncio.sleep(rng.random() * 0.5)
        session = rng.choice(sessions)
        known = seen_ids[session]
        start = rng.choice(known) if known and rng.random() < 0.5 else "0-0"
        wanted, got = rng.randint(1, 30), []
        try:
            async for item in named.events(session, start, timeout=1):
                got.append(item.stream_id)
                known.append(item.stream_id)
                if len(got) == wanted:
                    break
                if rng.random() < 0.1:
                    await asyncio.sleep(0.05)  # a slow taker
        except TaskTimeoutError:
            pass  # fewer events than it wanted were written after its start
        runs.append((session, start, got))

    await asyncio.gather(write(), *(follow(i) for i in range(40)))
    for session, start, got in runs:
        stream = await redis.xrange(keys.session_data_stream(session))
        ids = [entry_id.decode() for entry_id, _ in stream]
        first = 0 if start == "0-0" else ids.index(start) + 1
        assert got == ids[first : first + len(got)], (session, start)
    assert sum(len(got) for _, _, got in runs) > 200


async def test_event_batches_marks_idle_time_with_an_empty_batch(
    client: GatewayClient, redis: Redis, settings: Settings
) -> None:
    """What the gateway's SSE keep-alive rests on: [] after ``idle`` quiet seconds, the events
    as one batch when they come, and the read goes on."""
    batches = client.event_batches("idle-batches", idle=0.2)
    try:
        assert await asyncio.wait_for(anext(batches), 5) == []
        await write_chunks(redis, settings, "idle-batches", "a", "b")
        batch = await asyncio.wait_for(anext(batches), 5)
        assert [item.event.content for item in batch] == ["a", "b"]
        assert await asyncio.wait_for(anext(batches), 5) == []
    finally:
        await batches.aclose()


async def test_event_batches_end_at_the_named_tasks_end_within_a_batch(
    client: GatewayClient, redis: Redis, settings: Settings
) -> None:
    engine = RedisEngine(redis, settings)
    first, second = "batch-task-1", "batch-task-2"
    events = [
        encode_event(first, "echo", 1, StreamChunkEvent(content="x")),
        encode_event(first, "echo", 2, TaskEndEvent(status="completed")),
        encode_event(second, "echo", 1, StreamChunkEvent(content="y")),
    ]
    try:
        await engine.events.append("until-batches", *events)  # one read gets all three
    finally:
        await engine.aclose()
    batches = [
        batch
        async for batch in client.event_batches("until-batches", until_message_id=first, timeout=5)
    ]
    assert [[item.message_id for item in batch] for batch in batches] == [[first, first]]
    assert isinstance(batches[0][-1].event, TaskEndEvent)


async def all_have(seen: list[list[str]], count: int) -> bool:
    return all(len(texts) == count for texts in seen)


async def test_a_thousand_followers_of_one_session_cost_a_read_per_batch_not_per_follower(
    client: GatewayClient, redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gateway's fan-out: 1,000 followers of one session on one client. A batch of events
    written at once costs the client's feed the same XREADs whatever the followers."""
    reads = 0
    read = feed.SessionFeed._read

    async def counted(self: feed.SessionFeed, positions: dict[str, tuple[int, int]]) -> object:
        nonlocal reads
        reads += 1
        return await read(self, positions)

    monkeypatch.setattr(feed.SessionFeed, "_read", counted)
    seen: list[list[str]] = [[] for _ in range(1000)]

    async def follow(texts: list[str]) -> None:
        async for item in client.events("s-fan", timeout=30):
            assert isinstance(item.event, StreamChunkEvent)
            texts.append(item.event.content)

    followers = [asyncio.create_task(follow(texts)) for texts in seen]
    try:

        async def all_joined() -> bool:
            return client.engine.events.followers == 1000

        await eventually(all_joined, what="the thousand followers to join")
        await asyncio.sleep(0.2)  # the reads the joins woke are done
        before = reads
        written: list[str] = []
        for batch in range(5):
            texts = [f"{batch}/{n}" for n in range(3)]
            task = new_id()
            await client.engine.events.append(  # one batch: the XADDs in one pipeline
                "s-fan",
                *(encode_event(task, "echo", seq, StreamChunkEvent(content=text))
                  for seq, text in enumerate(texts, start=1)),
            )  # fmt: skip
            written += texts
            await eventually(
                functools.partial(all_have, seen, len(written)),
                what=f"every follower to have batch {batch}",
            )
        assert all(texts == written for texts in seen)
        # Redis answers a blocked XREAD right after the XADD that fed it: the first event of a
        # batch comes alone, the rest in the next read. Two per batch, not one per follower.
        assert reads - before <= 2 * 5
    finally:
        for task in followers:
            task.cancel()
        await asyncio.gather(*followers, return_exceptions=True)
