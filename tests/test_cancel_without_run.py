"""A worker told to cancel a task it holds no run of: the record that named it is stale (a run
whose end a failover lost, docs/cluster.md) and ends CANCELLED, or names another live worker,
which is told in turn."""

import asyncio

from by_framework import AgentState, GatewayClient, MessageHeader, Settings
from by_framework.protocol import (
    AskAgentCommand,
    CancelTaskCommand,
    StateChangeEvent,
    TaskEndEvent,
    TaskResultEvent,
    encode_command,
    encode_event,
)
from tests.agents import EchoAgent
from tests.support import final_result, running_worker, task_events

GHOST = "ghost"  # an agent type no worker of these tests serves


async def a_running_record_without_a_run(
    client: GatewayClient, session_id: str, worker_id: str
) -> MessageHeader:
    """A task whose record says RUNNING on ``worker_id`` while nothing runs it: begun by that
    worker id and acknowledged, its end never written (what a failover leaves when the session's
    master loses the record's end and the stream's master keeps the acknowledgement)."""
    registry = client.engine.registry  # a sender wants a live server of the agent type
    token = await registry.acquire(f"{GHOST}-server", 60)
    assert token is not None
    await registry.register(f"{GHOST}-server", [GHOST], token, 60)
    control = client.engine.control
    streams = control.streams([GHOST], worker_id)
    await control.prepare(streams)
    header = MessageHeader(session_id=session_id, target_agent_type=GHOST)
    await control.send(header, encode_command(header, AskAgentCommand(content="hi")), None)
    fetcher = control.fetcher(streams, worker_id)
    try:
        (delivery,) = await fetcher.fetch(1, 1000, own_pending=False)
    finally:
        await fetcher.aclose()
    running = encode_event(header.message_id, GHOST, 0, StateChangeEvent(state="running"))
    assert (await control.begin(delivery, header, worker_id, running)).action == "run"
    await control.acknowledge(delivery)
    return header


async def test_a_cancel_ends_a_running_record_its_live_worker_holds_no_run_of(
    client: GatewayClient, settings: Settings
) -> None:
    async with running_worker(EchoAgent(), settings, worker_id="w"):
        header = await a_running_record_without_a_run(client, "s-lost-end", "w")
        report = await client.cancel_task(header.message_id, "s-lost-end", reason="stuck")
        assert report.stopping == {header.message_id: "w"}  # the record names a live worker
        result = await final_result(client, header.message_id, timeout=10)
        assert (result.status, result.error) == (AgentState.CANCELLED, "stuck")
        events = await task_events(client, "s-lost-end", header.message_id, timeout=5)
        assert [type(event) for event in events[-3:]] == [
            StateChangeEvent,
            TaskResultEvent,
            TaskEndEvent,
        ]
        assert events[-3].state == "cancelled"
        # The worker goes on serving.
        sent = await client.send_message("echo", "s-lost-end", "after")
        assert (await final_result(client, sent.message_id, timeout=10)).content == "after"


async def test_a_cancel_sent_to_a_worker_that_does_not_run_the_task_reaches_its_holder(
    client: GatewayClient, settings: Settings
) -> None:
    async with (
        running_worker(EchoAgent(), settings, worker_id="holder"),
        running_worker(EchoAgent(), settings, worker_id="other"),
    ):
        sent = await client.send_message("echo", "s-moved", {"sleep": 30})
        async with asyncio.timeout(10):
            while (record := await client.get_task(sent.message_id)) is None or (
                record.status is not AgentState.RUNNING
            ):
                await asyncio.sleep(0.05)
        runs_it = record.worker_id
        told = "other" if runs_it == "holder" else "holder"
        # The cancel goes to the worker that does not run it (as one sent while the task moved).
        notice = MessageHeader(session_id="s-moved", target_agent_type=f"worker:{told}")
        cancel = CancelTaskCommand(
            message_ids=[sent.message_id], reason="moved", mode="force", cascade=False
        )
        await client.engine.orchestration.send_to_worker(told, encode_command(notice, cancel))
        result = await final_result(client, sent.message_id, timeout=10)
        assert (result.status, result.error) == (AgentState.CANCELLED, "moved")
        record = await client.get_task(sent.message_id)
        assert record is not None and record.worker_id == runs_it  # stopped by its own run
