"""Real worker processes on the real Redis: sharing, locking, liveness, draining."""

import asyncio
import collections
import os
import signal
import subprocess
import time

import pytest
from redis.asyncio import Redis

from by_framework import (
    AgentState,
    GatewayClient,
    NoOnlineWorkerError,
    SendResponse,
    Settings,
    StateChangeEvent,
    StreamChunkEvent,
)
from by_framework.redis.keys import KeySpace
from tests.support import (
    eventually,
    final_result,
    output_of,
    task_records,
    wait_all,
    wait_online,
    worker_process,
)


async def run_counts(client: GatewayClient, sessions: list[str]) -> collections.Counter[str]:
    """How many times each task started (RUNNING events) across the sessions' streams."""
    starts: collections.Counter[str] = collections.Counter()
    for session in sessions:
        after = "0-0"
        while True:
            batch = [item async for item in _drain(client, session, after)]
            if not batch:
                break
            after = batch[-1].stream_id
            for item in batch:
                if item.event == StateChangeEvent(state="running"):
                    starts[item.message_id] += 1
    return starts


async def _drain(client: GatewayClient, session: str, after: str):  # type: ignore[no-untyped-def]
    try:
        async with asyncio.timeout(0.3):
            async for item in client.events(session, after):
                yield item
    except TimeoutError:
        return


def stop(process, sig: int = signal.SIGTERM, timeout: float = 20) -> int:  # type: ignore[no-untyped-def]
    if process.poll() is None:
        process.send_signal(sig)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"worker did not stop:\n{output_of(process)[-3000:]}") from None


async def test_three_workers_share_300_tasks_each_run_once(
    client: GatewayClient, settings: Settings
) -> None:
    workers = [worker_process(settings, f"w{i}") for i in range(3)]
    try:
        for i in range(3):
            await wait_online(client, f"w{i}")
        sessions = [f"s{i}" for i in range(10)]
        sends = await asyncio.gather(
            *(client.send_message("echo", sessions[i % 10], {"n": i, "sleep": 0.01})
              for i in range(300))
        )  # fmt: skip
        results = await wait_all(client, sends)
    finally:
        codes = [stop(w) for w in workers]
    assert codes == [0, 0, 0]
    assert [r.content["n"] for r in results] == list(range(300))
    assert all(r.status is AgentState.COMPLETED for r in results)
    pids = collections.Counter(r.data["pid"] for r in results)  # type: ignore[index]
    assert len(pids) == 3, f"every worker took a share: {pids}"
    starts = await run_counts(client, sessions)
    assert len(starts) == 300 and set(starts.values()) == {1}, "each task ran exactly once"
    records = [await client.get_task(s.message_id) for s in sends]
    assert {r.delivery_count for r in records if r is not None} == {1}


async def test_a_second_process_with_the_same_worker_id_refuses_to_start(
    client: GatewayClient, settings: Settings
) -> None:
    first = worker_process(settings, "dup")
    try:
        await wait_online(client, "dup")
        second = worker_process(settings, "dup")
        code = second.wait(timeout=20)
        assert code == 3
        assert "worker id 'dup' is held by another live process" in output_of(second)
        assert await client.registry.is_online("dup")  # the first is unharmed
    finally:
        assert stop(first) == 0
    assert not await client.registry.is_online("dup")
    restarted = worker_process(settings, "dup")  # the id is free again after a clean stop
    try:
        await wait_online(client, "dup")
    finally:
        assert stop(restarted) == 0


async def test_a_worker_whose_heartbeat_stops_goes_offline_after_the_ttl(
    client: GatewayClient, settings: Settings
) -> None:
    process = worker_process(settings, "frozen")
    try:
        await wait_online(client, "frozen")
        assert await client.registry.online_workers("echo") == ["frozen"]
        os.kill(process.pid, signal.SIGSTOP)
        stopped_at = time.monotonic()

        async def offline() -> bool:
            return not await client.registry.is_online("frozen")

        await eventually(offline, timeout=settings.heartbeat_ttl + 5, what="'frozen' offline")
        assert time.monotonic() - stopped_at >= settings.heartbeat_ttl - 0.5, "not before the ttl"
        assert await client.registry.online_workers("echo") == []
        assert await client.registry.workers_of("echo") == {"frozen"}  # still a member
        os.kill(process.pid, signal.SIGCONT)
        await wait_online(client, "frozen")  # it renews its lease and is back
    finally:
        os.kill(process.pid, signal.SIGCONT)
        assert stop(process) == 0


async def test_sigterm_stops_a_worker_whose_startup_never_ends(
    client: GatewayClient, settings: Settings, redis: Redis
) -> None:
    """A worker is online only once its own start-up is done: this one, whose on_startup waits
    for ever, holds its worker id but never counts as online; SIGTERM stops it, lock released."""
    process = worker_process(settings, "stuck", "tests.agents.StuckStartAgent")
    lock = KeySpace(settings.key_prefix).worker_lock("stuck")
    await eventually(lambda: redis.exists(lock), what="the worker id taken")
    await asyncio.sleep(1)  # on_startup, which waits for ever, runs next
    assert not await client.registry.is_online("stuck")
    with pytest.raises(NoOnlineWorkerError):
        await client.send_message("echo", "s-stuck", "hi", wait_for_worker=0)
    assert stop(process, timeout=10) == 0
    assert "worker stuck stopped while starting" in output_of(process)
    assert not await redis.exists(lock)  # released on the way out


async def test_a_start_up_longer_than_the_lock_ttl_keeps_the_worker_id(
    client: GatewayClient, settings: Settings, redis: Redis
) -> None:
    """A worker whose on_startup takes six heartbeat TTLs (its loop blocked for half of it)
    holds its worker id all along: a second process with that id refuses to start, and the
    first then serves."""
    first = worker_process(settings, "slow", "tests.agents.SlowStartAgent")
    try:
        lock = KeySpace(settings.key_prefix).worker_lock("slow")
        await eventually(lambda: redis.exists(lock), what="the worker id taken")
        await asyncio.sleep(2 * settings.heartbeat_ttl)  # on_startup's blocking part
        second = worker_process(settings, "slow")
        try:
            assert await asyncio.to_thread(second.wait, 20) == 3, output_of(second)
        finally:
            stop(second)  # one that took the id (the bug this test is about) too
        assert "worker id 'slow' is held by another live process" in output_of(second)
        await wait_online(client, "slow")
        sent = await client.send_message("echo", "s-slow", "hi")
        assert (await final_result(client, sent.message_id)).status is AgentState.COMPLETED
    finally:
        assert stop(first) == 0
    assert "lost its id's lock" not in output_of(first)


async def test_a_lock_lost_while_starting_is_taken_again_once_started(
    client: GatewayClient, settings: Settings, redis: Redis
) -> None:
    """The lock of a starting worker vanishes (a Redis restart that lost it): said once, and
    once started the worker takes its id again and serves."""
    process = worker_process(settings, "slow", "tests.agents.SlowStartAgent")
    try:
        lock = KeySpace(settings.key_prefix).worker_lock("slow")
        await eventually(lambda: redis.exists(lock), what="the worker id taken")
        await redis.delete(lock)
        await wait_online(client, "slow", timeout=30)
        sent = await client.send_message("echo", "s-relock", "hi")
        assert (await final_result(client, sent.message_id)).status is AgentState.COMPLETED
    finally:
        assert stop(process) == 0
    output = output_of(process)
    assert output.count("worker slow lost its id's lock while starting") == 1, output
    assert "worker slow re-registered after losing its lock" in output


async def test_sigterm_drains_in_flight_tasks_and_loses_none(
    client: GatewayClient, settings: Settings
) -> None:
    first = worker_process(settings, "drain-1", "tests.agents.EchoAgent", "--max-concurrency", "5")
    await wait_online(client, "drain-1")
    sends = [await client.send_message("echo", "s-drain", {"n": i, "sleep": 0.4})
             for i in range(30)]  # fmt: skip

    async def five_started() -> bool:
        states = [r.status for r in await task_records(client, sends)]
        return states.count(AgentState.QUEUED) <= 25

    await eventually(five_started, what="the first five to run")  # the rest are queued
    assert stop(first) == 0
    done_by_first = [await client.get_task(s.message_id) for s in sends]
    finished = [r for r in done_by_first if r is not None and r.status is AgentState.COMPLETED]
    assert 5 <= len(finished) < 30
    assert all(r.status in {AgentState.COMPLETED, AgentState.QUEUED}
               for r in done_by_first if r is not None)  # fmt: skip
    second = worker_process(settings, "drain-2")
    try:
        results = await wait_all(client, sends)
    finally:
        assert stop(second) == 0
    assert [r.content["n"] for r in results] == list(range(30))
    starts = await run_counts(client, ["s-drain"])
    assert set(starts.values()) == {1}


async def test_tasks_still_running_at_the_deadline_are_handed_back(
    client: GatewayClient, settings: Settings
) -> None:
    first = worker_process(settings, "late-1", "tests.agents.EchoAgent", "--shutdown-timeout",
                           "0.3")  # fmt: skip
    await wait_online(client, "late-1")
    sends = [await client.send_message("echo", "s-late", {"n": i, "sleep": 2}) for i in range(3)]

    async def all_running() -> bool:
        return all(r.status is AgentState.RUNNING for r in await task_records(client, sends))

    await eventually(all_running, what="the three tasks to run")
    assert stop(first) == 0
    for sent in sends:
        record = await client.get_task(sent.message_id)
        assert record is not None and record.status is AgentState.QUEUED
    second = worker_process(settings, "late-2")
    try:
        results = await wait_all(client, sends)
    finally:
        assert stop(second) == 0
    assert [r.content["n"] for r in results] == [0, 1, 2]
    records = [await client.get_task(s.message_id) for s in sends]
    # An interrupted run is not a crash: it does not count against max_deliveries.
    assert all(r.worker_id == "late-2" and r.delivery_count == 1 for r in records if r)
    assert [s for s, _ in records[0].timeline] == [  # type: ignore[union-attr]
        "queued",
        "running",
        "queued",
        "running",
        "completed",
    ]


async def test_a_reader_that_disconnects_resumes_from_its_last_id(
    client: GatewayClient, settings: Settings, redis_url: str
) -> None:
    process = worker_process(settings, "streamer", "tests.agents.ShowcaseAgent")
    try:
        await wait_online(client, "streamer")
        sends = [await client.send_message("showcase", "s-read", "go") for _ in range(5)]
        for sent in sends:
            await client.wait_for_result(sent.message_id, timeout=20)
    finally:
        assert stop(process) == 0
    everything = [i async for i in _drain(client, "s-read", "0-0")]
    assert len(everything) == 45
    seen = []
    after = "0-0"
    for _ in range(10):  # read a few events, drop the connection, reconnect from the last id
        connection = Redis.from_url(redis_url)
        reader = GatewayClient(connection, settings=settings)
        try:
            async for item in reader.events("s-read", after, timeout=5):
                seen.append(item)
                after = item.stream_id
                if len(seen) % 7 == 0 or len(seen) == len(everything):
                    break
        finally:
            await reader.aclose()
            await connection.aclose()
        if len(seen) == len(everything):
            break
    assert [i.stream_id for i in seen] == [i.stream_id for i in everything]
    chunks: dict[str, list[str]] = collections.defaultdict(list)
    for item in seen:
        if isinstance(item.event, StreamChunkEvent):
            chunks[item.message_id].append(item.event.content)
    assert list(chunks.values()) == [["thinking about it", "a", "b", "c"]] * 5


async def test_fetched_tasks_waiting_for_a_slot_are_handed_back_at_the_deadline(
    client: GatewayClient, settings: Settings, redis: Redis
) -> None:
    # One slot, three streams (two agent types and the worker's own): one fetch can bring three
    # entries, of which two wait for the slot when the shutdown deadline passes.
    first = worker_process(settings, "slots-1", "tests.agents.ShowcaseAgent",
                           "--max-concurrency", "1", "--shutdown-timeout", "0.3")  # fmt: skip
    await wait_online(client, "slots-1")
    blocker = await client.send_message("showcase", "s-slots", {"n": 0, "sleep": 1})

    async def running(sends: list[SendResponse]) -> bool:
        return any(r.status is AgentState.RUNNING for r in await task_records(client, sends))

    # The blocker holds the only slot; the next three queue up.
    await eventually(lambda: running([blocker]), what="the blocker to run")
    queued = [
        await client.send_message("showcase", "s-slots", {"n": 1, "sleep": 3}),
        await client.send_message("showcase-b", "s-slots", {"n": 2, "sleep": 3}),
        await client.send_message("showcase", "s-slots", {"n": 3, "sleep": 3},
                                  target_worker_id="slots-1"),
    ]  # fmt: skip
    await client.wait_for_result(blocker.message_id, timeout=10)
    # One of the three runs; the same fetch brought the two others, which wait for the slot.
    await eventually(lambda: running(queued), what="one of the three to run")
    assert stop(first) == 0
    assert "handing back 3 task(s)" in output_of(first)
    keys = KeySpace(settings.key_prefix)
    for stream in (keys.agent_type_stream("showcase"), keys.agent_type_stream("showcase-b"),
                   keys.worker_stream("slots-1")):  # fmt: skip
        pending = await redis.xpending(stream, settings.consumer_group)
        assert pending["pending"] == 0, f"{stream} still has entries pending for the old worker"
    for sent in queued:
        record = await client.get_task(sent.message_id)
        assert record is not None and record.status is AgentState.QUEUED
    # The same worker id again: the direct-routed task was handed back to its own stream.
    second = worker_process(settings, "slots-1", "tests.agents.ShowcaseAgent")
    try:
        results = await wait_all(client, queued)
    finally:
        assert stop(second) == 0
    assert [r.content["n"] for r in results] == [1, 2, 3]
