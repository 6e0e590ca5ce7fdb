"""A task emits faster than its session stream's cap keeps: readers are told what was trimmed.

A real worker process streams CHUNKS chunks into a stream capped at MAXLEN entries; a follower
that reads slowly falls behind the cap, and Redis trims events it never read. It gets an
``EventGap`` in their place (or ``EventsTrimmedError`` with ``on_gap="raise"``), and the chunks
it saw plus the gaps' counts add up to what was emitted.
"""

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from typing import Any, Literal

import pytest
from redis.asyncio import Redis

from by_framework import (
    EventGap,
    EventsTrimmedError,
    GatewayClient,
    SessionEvent,
    Settings,
    StreamChunkEvent,
    TaskEndEvent,
)
from by_framework.protocol import encode_event
from by_framework.redis.engine import RedisEngine
from by_framework.redis.keys import KeySpace
from tests.support import ROOT, output_of, redis_7, spawn, wait_online, worker_process

CHUNKS = 20_000
MAXLEN = 1_000


def chatter_worker(settings: Settings, worker_id: str) -> subprocess.Popen[str]:
    return worker_process(
        settings,
        worker_id,
        "tests.fault_agents.Chatterbox",
        env={"BYAI_DATA_STREAM_MAXLEN": str(MAXLEN)},
    )


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=15)
    print(output_of(process)[-2000:])


async def follow_slowly(
    client: GatewayClient,
    session_id: str,
    message_id: str,
    on_gap: Literal["mark", "raise"] = "mark",
) -> list[Any]:
    """Every item up to the task's end, taken at a pace well below the worker's."""
    items: list[Any] = []
    events = client.events(session_id, until_message_id=message_id, timeout=60, on_gap=on_gap)
    async for item in events:
        items.append(item)
        if len(items) % 5 == 0:
            await asyncio.sleep(0.001)
    return items


def stream_position(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq)


async def test_a_slow_follower_gets_a_gap_for_every_trimmed_run_of_events(
    client: GatewayClient, settings: Settings
) -> None:
    worker = chatter_worker(settings, "chatter-live")
    try:
        await wait_online(client, "chatter-live")
        sent = await client.send_message("fault-chatter", "trim-live", {"chunks": CHUNKS})
        items = await follow_slowly(client, "trim-live", sent.message_id)
    finally:
        stop(worker)
    gaps = [i for i in items if isinstance(i, EventGap) and i.message_ids]
    assert gaps, "the follower never fell behind the cap: nothing was trimmed"
    unnamed = [i for i in items if isinstance(i, EventGap) and not i.message_ids]
    print(f"{len(gaps)} gaps of {sum(g.trimmed or 0 for g in gaps)} events, {len(unnamed)} more")
    events = [i.event for i in items if isinstance(i, SessionEvent)]
    seen = [int(e.content) for e in events if isinstance(e, StreamChunkEvent)]
    # Chunks trimmed before the follower's first read are one unnamed gap (counted in entries of
    # every kind); from its first chunk on, each one is seen or counted by its task's gap.
    assert seen[0] == 0 or unnamed
    assert seen[0] + len(seen) + sum(g.trimmed or 0 for g in gaps) == CHUNKS
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    for gap in gaps:
        assert gap.message_ids == (sent.message_id,)
        assert gap.session_id == "trim-live"
        assert stream_position(gap.after) < stream_position(gap.before)
    assert isinstance(items[-1].event, TaskEndEvent)


async def test_on_gap_raise_raises_when_events_were_trimmed(
    client: GatewayClient, settings: Settings
) -> None:
    worker = chatter_worker(settings, "chatter-raise")
    try:
        await wait_online(client, "chatter-raise")
        sent = await client.send_message("fault-chatter", "trim-raise", {"chunks": CHUNKS})
        with pytest.raises(EventsTrimmedError, match="trim-raise"):
            await follow_slowly(client, "trim-raise", sent.message_id, on_gap="raise")
        await client.wait_for_result(sent.message_id, timeout=60)
    finally:
        stop(worker)


async def test_a_reader_resuming_before_the_trimmed_range_gets_a_gap_first(
    client: GatewayClient, settings: Settings, redis: Redis
) -> None:
    worker = chatter_worker(settings, "chatter-resume")
    try:
        await wait_online(client, "chatter-resume")
        small = await client.send_message("fault-chatter", "trim-small", {"chunks": MAXLEN // 2})
        await client.wait_for_result(small.message_id, timeout=60)
        sent = await client.send_message("fault-chatter", "trim-resume", {"chunks": CHUNKS})
        async with contextlib.aclosing(client.events("trim-resume", timeout=30)) as reading:
            first = await anext(reading)
        await client.wait_for_result(sent.message_id, timeout=60)
    finally:
        stop(worker)

    untrimmed = await read_all(client, "trim-small")
    assert not [i for i in untrimmed if isinstance(i, EventGap)]
    assert len(untrimmed) == MAXLEN // 2 + 3  # running, the chunks, result, end

    if not await redis_7(redis):
        pytest.skip("Redis < 7 does not count what it trimmed: readers see gaps by seq alone")
    stream = KeySpace(settings.key_prefix).session_data_stream("trim-resume")
    info = await redis.xinfo_stream(stream)
    trimmed = info["entries-added"] - info["length"]
    assert trimmed > 0

    from_start = await read_all(client, "trim-resume")
    gap = from_start[0]
    assert isinstance(gap, EventGap)
    assert (gap.trimmed, gap.after, gap.before) == (trimmed, "0-0", from_start[1].stream_id)
    assert not [i for i in from_start[1:] if isinstance(i, EventGap)]
    assert gap.trimmed + len(from_start) - 1 == CHUNKS + 3

    resumed = await read_all(client, "trim-resume", after=first.stream_id)
    assert isinstance(resumed[0], EventGap)
    assert (resumed[0].after, resumed[0].before) == (first.stream_id, from_start[1].stream_id)
    assert resumed[1:] == from_start[1:]


async def read_all(client: GatewayClient, session_id: str, after: str = "0-0") -> list[Any]:
    """Every item the session's stream holds after ``after``, up to its end."""
    items: list[Any] = []
    try:
        async with asyncio.timeout(1):
            async for item in client.events(session_id, after):
                items.append(item)
    except TimeoutError:
        pass
    return items


async def test_the_cli_prints_a_line_for_the_events_trimmed(
    redis: Redis, settings: Settings
) -> None:
    """A run's seq jumping from 10 to 50 (forged: events 11-49 gone) is a gap on any Redis."""
    engine = RedisEngine(redis, settings)
    try:
        for seq in (*range(1, 11), 50):
            chunk = encode_event("task-1", "echo", seq, StreamChunkEvent(content=str(seq)))
            await engine.events.append("trim-cli", chunk)
        end = encode_event("task-1", "echo", 51, TaskEndEvent(status="completed"))
        await engine.events.append("trim-cli", end)
    finally:
        await engine.aclose()
    command = [
        sys.executable, "-m", "by_framework", "tail", "trim-cli", "--until-end",
        "--redis-url", str(settings.redis_url), "--key-prefix", settings.key_prefix,
    ]  # fmt: skip
    tail = spawn(command, ROOT, {**os.environ, "PYTHONPATH": str(ROOT)})
    assert await asyncio.to_thread(tail.wait, 30) == 0, output_of(tail)
    lines = [json.loads(line) for line in output_of(tail).splitlines()]
    assert [line.get("content") for line in lines[:10]] == [str(seq) for seq in range(1, 11)]
    gap = lines[10]
    assert (gap["type"], gap["trimmed"], gap["tasks"]) == ("events_trimmed", 39, ["task-1"])
    assert (gap["after"], gap["before"]) == (lines[9]["id"], lines[11]["id"])
    assert "39 events of task task-1 of session 'trim-cli' were trimmed" in gap["message"]
    assert lines[11]["content"] == "50" and lines[12]["type"] == "end"
