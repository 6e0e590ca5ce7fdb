"""A task body that swallows CancelledError: a force cancel, task_timeout and shutdown still end
it within a bound (it is left behind, its slot given back, its late outcome ignored)."""

import asyncio
import signal
import subprocess

from by_framework import AgentState, GatewayClient, Settings
from tests.faults.test_reclaim import kill
from tests.support import final_result, output_of, wait_online, worker_process

STUBBORN = "tests.fault_agents.Stubborn"
GRACE_S = 1.0


async def wait_running(client: GatewayClient, message_id: str, worker_id: str) -> None:
    async with asyncio.timeout(15):
        while True:
            record = await client.get_task(message_id)
            if record is not None and record.status is AgentState.RUNNING:
                if record.worker_id == worker_id:
                    return
            await asyncio.sleep(0.05)


async def test_force_cancel_ends_a_task_that_ignores_it(
    client: GatewayClient, settings: Settings
) -> None:
    worker = worker_process(
        settings,
        "stubborn",
        STUBBORN,
        "--cancel-grace-seconds", str(GRACE_S),
        "--max-concurrency", "1",
    )  # fmt: skip
    try:
        await wait_online(client, "stubborn")
        sent = await client.send_message("fault-stubborn", "s-force", {})
        await wait_running(client, sent.message_id, "stubborn")
        await client.cancel_task(sent.message_id, sent.session_id, "stop it", mode="force")
        result = await final_result(client, sent.message_id, timeout=GRACE_S + 10)
        assert result.status is AgentState.CANCELLED, output_of(worker)
        assert result.error is not None and "stop it" in result.error
        assert "did not stop" in result.error
        # Its only slot is free again: the worker takes the next task.
        quick = await client.send_message("fault-quick", "s-force", {})
        assert (await final_result(client, quick.message_id, timeout=10)).content == "quick"
    finally:
        kill(worker)


async def test_task_timeout_ends_a_task_that_ignores_it(
    client: GatewayClient, settings: Settings
) -> None:
    worker = worker_process(
        settings,
        "stubborn",
        STUBBORN,
        "--cancel-grace-seconds", str(GRACE_S),
        "--task-timeout", "1",
        "--max-concurrency", "1",
    )  # fmt: skip
    try:
        await wait_online(client, "stubborn")
        sent = await client.send_message("fault-stubborn", "s-timeout", {})
        result = await final_result(client, sent.message_id, timeout=1 + GRACE_S + 10)
        assert result.status is AgentState.FAILED, output_of(worker)
        assert result.error is not None and "task_timeout (1s)" in result.error
        assert "did not stop" in result.error
        quick = await client.send_message("fault-quick", "s-timeout", {})
        assert (await final_result(client, quick.message_id, timeout=10)).content == "quick"
    finally:
        kill(worker)


async def test_sigterm_exits_by_its_deadline_and_hands_the_task_back(
    client: GatewayClient, settings: Settings
) -> None:
    shutdown_s = 1.0
    first = worker_process(
        settings,
        "first",
        STUBBORN,
        "--cancel-grace-seconds", str(GRACE_S),
        "--shutdown-timeout", str(shutdown_s),
    )  # fmt: skip
    next_worker = None
    try:
        await wait_online(client, "first")
        sent = await client.send_message("fault-stubborn", "s-term", {})
        await wait_running(client, sent.message_id, "first")
        first.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.to_thread(first.wait, shutdown_s + GRACE_S + 8)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after SIGTERM:\n{output_of(first)}") from None
        assert code == 0, output_of(first)
        record = await client.get_task(sent.message_id)
        assert record is not None and record.status is AgentState.QUEUED, output_of(first)
        next_worker = worker_process(settings, "next", STUBBORN)
        await wait_running(client, sent.message_id, "next")
    finally:
        if first.poll() is None:
            kill(first)
        if next_worker is not None:
            kill(next_worker)
