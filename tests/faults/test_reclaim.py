"""Workers die (SIGKILL) and tasks still finish: exactly once, reclaimed within lease + sweep."""

import asyncio
import collections
import signal
import time

from redis.asyncio import Redis

from by_framework import (
    AgentState,
    GatewayClient,
    SendResponse,
    Settings,
    StateChangeEvent,
    TaskResultEvent,
)
from by_framework.redis.keys import KeySpace
from tests.support import (
    eventually,
    output_of,
    task_records,
    wait_all,
    wait_online,
    worker_process,
)


async def tally(client: GatewayClient, sends: list[SendResponse]) -> dict[str, int]:
    """Sent / completed / lost / duplicated, from the session streams: what a user would see."""
    wanted = {s.message_id for s in sends}
    results: collections.Counter[str] = collections.Counter()
    runs: collections.Counter[str] = collections.Counter()

    async def read(session: str) -> None:
        try:
            async with asyncio.timeout(1):
                async for item in client.events(session):
                    if item.message_id not in wanted:
                        continue
                    if isinstance(item.event, TaskResultEvent):
                        results[item.message_id] += 1
                    elif item.event == StateChangeEvent(state="running"):
                        runs[item.message_id] += 1
        except TimeoutError:
            pass

    await asyncio.gather(*(read(session) for session in {s.session_id for s in sends}))
    counts = {
        "sent": len(wanted),
        "completed": len(results),
        "lost": len(wanted - set(results)),
        "duplicated": sum(1 for n in results.values() if n > 1),
        "rerun": sum(1 for n in runs.values() if n > 1),
    }
    print("fault tally:", counts)
    return counts


def kill(process) -> None:  # type: ignore[no-untyped-def]
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def stop_all(*processes) -> None:  # type: ignore[no-untyped-def]
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        assert process.wait(timeout=30) in {0, -signal.SIGKILL}, output_of(process)


async def test_sigkill_mid_task_the_task_finishes_on_another_worker(
    client: GatewayClient, settings: Settings
) -> None:
    task_s = 3.0  # long enough for the survivor to start (slowly, on a busy machine) before it ends
    victim = worker_process(settings, "victim")
    await wait_online(client, "victim")
    sent = await client.send_message("echo", "s-kill", {"n": 1, "sleep": task_s})

    async def running_on_the_victim() -> bool:
        (record,) = await task_records(client, [sent])
        return record.status is AgentState.RUNNING and record.worker_id == "victim"

    await eventually(running_on_the_victim, what="the task to run on the victim")
    survivor = worker_process(settings, "survivor")
    try:
        await wait_online(client, "survivor")
        running = await client.get_task(sent.message_id)
        assert running is not None and running.status is AgentState.RUNNING, "ended before the kill"
        kill(victim)
        killed_at = time.monotonic()
        result = await client.wait_for_result(sent.message_id, timeout=30)
        recovered_in = time.monotonic() - killed_at
    finally:
        stop_all(survivor)
    record = await client.get_task(sent.message_id)
    assert result.status is AgentState.COMPLETED and result.content == {"n": 1, "sleep": task_s}
    assert record is not None and record.worker_id == "survivor"
    assert record.delivery_count == 2
    assert [s for s, _ in record.timeline] == ["queued", "running", "running", "completed"]
    bound = settings.lease_seconds + settings.sweep_interval + task_s  # + the task's own run
    print(f"recovered {recovered_in:.2f}s after SIGKILL (bound {bound:.2f}s + scheduling)")
    assert recovered_in < bound + 1.5
    counts = await tally(client, [sent])
    assert (counts["lost"], counts["duplicated"]) == (0, 0)


async def test_sigkill_with_100_tasks_in_flight_across_3_workers(
    client: GatewayClient, settings: Settings
) -> None:
    workers = [worker_process(settings, f"w{i}") for i in range(3)]
    try:
        for i in range(3):
            await wait_online(client, f"w{i}")
        sends = await asyncio.gather(
            *(client.send_message("echo", f"s{i % 10}", {"n": i, "sleep": 0.5})
              for i in range(100))
        )  # fmt: skip

        async def every_worker_runs_some() -> bool:
            records = await task_records(client, sends)
            holders = {r.worker_id for r in records if r.status is AgentState.RUNNING}
            return holders == {"w0", "w1", "w2"}

        await eventually(every_worker_runs_some, what="every worker to run tasks")
        kill(workers[0])
        results = await wait_all(client, list(sends), timeout=60)
    finally:
        stop_all(*workers)
    assert [r.content["n"] for r in results] == list(range(100))
    assert all(r.status is AgentState.COMPLETED for r in results)
    counts = await tally(client, list(sends))
    assert counts["completed"] == 100
    assert (counts["lost"], counts["duplicated"]) == (0, 0)
    assert counts["rerun"] > 0, "the killed worker's tasks ran again elsewhere"


async def test_a_task_longer_than_the_lease_is_never_reclaimed(
    client: GatewayClient, settings: Settings
) -> None:
    workers = [worker_process(settings, f"long-{i}") for i in range(2)]
    try:
        for i in range(2):
            await wait_online(client, f"long-{i}")
        long_task = settings.lease_seconds * 3
        sent = await client.send_message("echo", "s-long", {"sleep": long_task})
        result = await client.wait_for_result(sent.message_id, timeout=30)
    finally:
        stop_all(*workers)
    record = await client.get_task(sent.message_id)
    assert result.status is AgentState.COMPLETED
    assert record is not None and record.delivery_count == 1
    counts = await tally(client, [sent])
    assert (counts["lost"], counts["duplicated"], counts["rerun"]) == (0, 0, 0)


async def test_a_command_that_kills_every_worker_is_dead_lettered_after_max_deliveries(
    client: GatewayClient, settings: Settings, redis: Redis
) -> None:
    crash = ("tests.agents.CrashAgent", "--max-deliveries", "2")
    first = worker_process(settings, "crash-1", *crash)
    await wait_online(client, "crash-1")
    poison = await client.send_message("echo", "s-poison", "crash")
    assert await asyncio.to_thread(first.wait, 20) == 17  # run 1 killed its worker
    second = worker_process(settings, "crash-2", *crash)
    assert await asyncio.to_thread(second.wait, 20) == 17  # run 2 (reclaimed) killed this one
    third = worker_process(settings, "crash-3", *crash)
    try:
        result = await client.wait_for_result(poison.message_id, timeout=20)
        fine = await client.send_message("echo", "s-poison", "still flowing")
        assert (await client.wait_for_result(fine.message_id, timeout=20)).content == (
            "still flowing"
        )
    finally:
        stop_all(third)
    assert result.status is AgentState.FAILED
    assert "gave up after 2 deliveries (max_deliveries=2)" in (result.error or "")
    keys = KeySpace(settings.key_prefix)
    (dead,) = await redis.xrange(keys.dead_letter_stream())
    assert b"gave up after 2 deliveries" in dead[1][b"reason"]
    assert b'"content":"crash"' in dead[1][b"field:e"]
    pending = await redis.xpending(keys.agent_type_stream("echo"), settings.consumer_group)
    assert pending["pending"] == 0
