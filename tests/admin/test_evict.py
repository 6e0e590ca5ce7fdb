"""``workers evict``: a live worker hands back at once the work it has not started (a parent
waiting for its sub-call) and takes no more; a worker killed outright has its pending task
handed to a live worker now, not once its lease runs out."""

import signal

from by_framework import AgentState, GatewayClient, Settings
from by_framework.protocol.records import TaskRecord
from tests.admin.support import run_cli, status_json, stop
from tests.support import eventually, wait_online, worker_process

LONG_LEASE = 60.0  # the reclaim the eviction overtakes: a minute and a sweep


async def test_evicting_a_killed_worker_hands_its_task_to_a_live_one_before_its_lease_ends(
    client: GatewayClient, settings: Settings
) -> None:
    leased = settings.model_copy(update={"lease_seconds": LONG_LEASE})
    doomed = worker_process(leased, "ev-dead")
    survivor = None
    try:
        await wait_online(client, "ev-dead")
        sent = await client.send_message("echo", "ev-s", {"sleep": 30})
        await eventually(lambda: _held_by(client, sent.message_id, "ev-dead"))
        survivor = worker_process(leased, "ev-live", "tests.agents.EchoAgent",
                                  "--shutdown-timeout", "0.5")  # fmt: skip
        await wait_online(client, "ev-live")
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)

        code, output = await run_cli(settings, "workers", "evict", "ev-dead")
        assert code == 0, output
        assert output.startswith("worker ev-dead is not alive (last heartbeat ")
        assert output.endswith("): handed 1 pending task(s) back to their queues\n")
        # Taken by the live worker within seconds: its sweep would wait out the 60 s lease.
        record = await eventually(lambda: _held_by(client, sent.message_id, "ev-live"), 10)
        assert record.delivery_count == 2, "a crash counts as a delivery (max_deliveries)"
    finally:
        stop(*([survivor] if survivor else []))
        if doomed.poll() is None:
            doomed.kill()


async def test_evicting_a_live_worker_hands_back_its_waiting_parent_and_takes_no_more(
    client: GatewayClient, settings: Settings
) -> None:
    evicted = worker_process(settings, "ev-a", "tests.agents.OrchestraAgent")
    children = worker_process(settings, "ev-echo", "tests.agents.EchoAgent")
    other = None
    try:
        await wait_online(client, "ev-a")
        await wait_online(client, "ev-echo")
        # The child outlasts starting ev-b and the CLI on a busy machine: the parent is still
        # waiting for it when ev-a is evicted.
        call = {"op": "call", "target": "echo", "content": {"sleep": 10}}
        parent = await client.send_message("planner", "ev-s", call)

        async def waiting() -> bool:
            record = await client.get_task(parent.message_id)
            return record is not None and record.status is AgentState.WAITING_REPLY

        await eventually(waiting)
        other = worker_process(settings, "ev-b", "tests.agents.OrchestraAgent")
        await wait_online(client, "ev-b")

        code, output = await run_cli(settings, "workers", "evict", "ev-a")
        assert code == 0, output
        assert output.startswith("worker ev-a is evicted: its work not yet started went back")
        document = await status_json(settings)
        assert {w["worker_id"]: w["state"] for w in document["workers"]} == {
            "ev-a": "evicted",
            "ev-b": "running",
            "ev-echo": "running",
        }

        result = await client.wait_for_result(parent.message_id, timeout=30)
        assert result.status is AgentState.COMPLETED
        assert result.content == {"reply": {"sleep": 10}, "status": "completed"}
        record = await client.get_task(parent.message_id)
        assert record is not None and record.worker_id == "ev-b"
        assert len(record.children) == 1, "the replay waited for the child sent before"
        later = await client.send_message("planner", "ev-s", {"op": "upper", "text": "x"})
        await client.wait_for_result(later.message_id)
        record = await client.get_task(later.message_id)
        assert record is not None and record.worker_id == "ev-b"
    finally:
        stop(evicted, children, *([other] if other else []))


async def _held_by(client: GatewayClient, message_id: str, worker_id: str) -> TaskRecord | None:
    record = await client.get_task(message_id)
    if record is None or record.status is not AgentState.RUNNING:
        return None
    return record if record.worker_id == worker_id else None
