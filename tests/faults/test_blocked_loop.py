"""A task that blocks its worker's event loop for longer than the lease (time.sleep in
process_command) keeps its lease: it runs once and is never reclaimed by the other worker, and
keeps its session's turn: another run of the session waits for it."""

import asyncio

import pytest

from by_framework import AgentState, GatewayClient, Settings, StateChangeEvent
from tests.faults.test_reclaim import stop_all
from tests.support import eventually, output_of, task_events, wait_online, worker_process

BLOCKER = "tests.fault_agents.LoopBlocker"


@pytest.mark.parametrize(
    "timing",
    [
        {},  # the tests' own: a lease of 7.5 heartbeat intervals
        # the defaults' proportions (heartbeat 5 s, TTL 15 s, lease 15 s), scaled down: a lease
        # of barely three intervals leaves the thread little time to take over
        {"heartbeat_interval": 0.5, "heartbeat_ttl": 1.5, "lease_seconds": 1.5},
    ],
    ids=["test-timing", "default-proportions"],
)
async def test_a_loop_blocked_past_the_lease_keeps_its_task(
    client: GatewayClient, settings: Settings, timing: dict[str, float]
) -> None:
    settings = settings.model_copy(update=timing)
    block_s = 4.0
    assert block_s > 2 * settings.lease_seconds
    first = worker_process(settings, "blocked-1", BLOCKER)
    second = worker_process(settings, "blocked-2", BLOCKER)
    try:
        await wait_online(client, "blocked-1")
        await wait_online(client, "blocked-2")
        sent = await client.send_message("fault-blocker", "s-blocked", {"block": block_s})
        events = await task_events(client, sent.session_id, sent.message_id, timeout=30)
        record = await client.get_task(sent.message_id)
        logs = output_of(first) + output_of(second)
        assert record is not None and record.status is AgentState.COMPLETED, logs
        runs = [e for e in events if e == StateChangeEvent(state="running")]
        assert len(runs) == 1, logs
        assert record.delivery_count == 1, logs
        assert "reclaimed" not in logs
        assert "renewing its leases from a thread" in logs  # the lease thread said so
        # Both workers stayed online all along and still are.
        assert await client.registry.is_online("blocked-1")
        assert await client.registry.is_online("blocked-2")
    finally:
        await asyncio.to_thread(stop_all, first, second)


async def test_a_loop_blocked_past_the_lease_keeps_its_session_turn(
    client: GatewayClient, settings: Settings
) -> None:
    """Two messages into one session, on two workers: the first blocks its loop holding the
    turn for longer than the turn's lease; the second runs only after it, never beside it."""
    block_s = 2 * settings.turn_lease
    first = worker_process(settings, "turn-1", "tests.fault_agents.TurnBlocker")
    second = worker_process(settings, "turn-2", "tests.fault_agents.TurnBlocker")
    try:
        await wait_online(client, "turn-1")
        await wait_online(client, "turn-2")
        one = await client.send_message(
            "fault-turn-blocker", "s-turn", {"block": block_s}, target_worker_id="turn-1"
        )

        async def first_holds_the_turn() -> bool:
            holder = await client.engine.turns.holder("s-turn", "fault-turn-blocker")
            return holder == one.message_id

        await eventually(first_holds_the_turn, what="the first run holding the turn")
        two = await client.send_message(
            "fault-turn-blocker", "s-turn", {"block": 0}, target_worker_id="turn-2"
        )
        held = []
        for sent in (one, two):
            result = await client.wait_for_result(sent.message_id, timeout=30)
            assert result.status is AgentState.COMPLETED, output_of(first) + output_of(second)
            held.append(result.data["held"])
        logs = output_of(first) + output_of(second)
        assert held[1][0] >= held[0][1], (held, logs)  # the second took the turn after
        assert "lost its turn" not in logs
    finally:
        await asyncio.to_thread(stop_all, first, second)
