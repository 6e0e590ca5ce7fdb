"""``workers drain`` and ``resume``: a drained worker finishes what it runs and takes nothing
new from its queues until resumed; the order is a signed command like any other."""

from by_framework import AgentState, GatewayClient, Settings
from tests.admin.support import run_cli, status_json, stop
from tests.support import eventually, wait_online, worker_process


async def test_a_drained_worker_finishes_its_task_and_takes_no_new_one_until_resumed(
    client: GatewayClient, settings: Settings
) -> None:
    first = worker_process(settings, "dr-a")
    second = None
    try:
        await wait_online(client, "dr-a")
        long = await client.send_message("echo", "dr-s", {"sleep": 8})  # outlasts a slow start
        await eventually(lambda: _running(client, long.message_id))
        await eventually(lambda: _in_flight(settings, "dr-a"))  # published with a heartbeat
        second = worker_process(settings, "dr-b")
        await wait_online(client, "dr-b")

        code, output = await run_cli(settings, "workers", "drain", "dr-a")
        assert code == 0, output
        assert output.startswith("worker dr-a is draining: it takes no new work")
        assert "its 1 task(s) in flight finish there" in output
        (shown,) = [w for w in (await status_json(settings))["workers"] if w["worker_id"] == "dr-a"]
        assert shown["state"] == "draining"

        during = [await client.send_message("echo", "dr-s", {"i": i}) for i in range(6)]
        for sent in during:
            assert (await client.wait_for_result(sent.message_id)).status is AgentState.COMPLETED
            record = await client.get_task(sent.message_id)
            assert record is not None and record.worker_id == "dr-b"
        assert (await client.wait_for_result(long.message_id)).status is AgentState.COMPLETED
        record = await client.get_task(long.message_id)
        assert record is not None and record.worker_id == "dr-a"

        code, output = await run_cli(settings, "workers", "resume", "dr-a")
        assert (code, output) == (0, "worker dr-a is running: it takes new work again\n")
        code, output = await run_cli(settings, "workers", "drain", "dr-b")
        assert code == 0, output
        after = [await client.send_message("echo", "dr-s", {"i": i}) for i in range(3)]
        for sent in after:
            await client.wait_for_result(sent.message_id)
            record = await client.get_task(sent.message_id)
            assert record is not None and record.worker_id == "dr-a"
    finally:
        stop(first, *([second] if second else []))


async def _running(client: GatewayClient, message_id: str) -> bool:
    record = await client.get_task(message_id)
    return record is not None and record.status is AgentState.RUNNING


async def test_a_worker_with_a_signing_key_refuses_an_unsigned_drain(
    client: GatewayClient, settings: Settings
) -> None:
    key = {"BYAI_SIGNING_KEY": "drain-test-key"}
    worker = worker_process(settings, "dr-k", env=key)
    try:
        await wait_online(client, "dr-k")
        code, output = await run_cli(settings, "workers", "drain", "dr-k", "--timeout", "2")
        assert code == 1
        assert "worker 'dr-k' did not confirm the drain within 2s (it reports running)" in output
        assert "set BYAI_SIGNING_KEY here too" in output

        async def refused() -> list | None:  # type: ignore[type-arg]
            document = await status_json(settings)
            return document["workers"] if document["dead_letters"] == 1 else None

        (shown,) = await eventually(refused)
        assert shown["state"] == "running"
        _, letters = await run_cli(settings, "dead-letter", "list")
        assert "unsigned command" in letters

        code, output = await run_cli(settings, "workers", "drain", "dr-k", **key)
        assert code == 0, output
        assert output.startswith("worker dr-k is draining")
    finally:
        stop(worker)


async def _in_flight(settings: Settings, worker_id: str) -> int | None:
    """How many tasks the worker last said it runs, once it says so."""
    shown = [w for w in (await status_json(settings))["workers"] if w["worker_id"] == worker_id]
    return shown[0]["in_flight"] if shown else None
