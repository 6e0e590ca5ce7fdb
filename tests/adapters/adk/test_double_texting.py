"""Double-texting into one ADK session, with two worker processes sharing its store and each
message sent to another worker: concurrent messages take turns (ADK would refuse all but one
run with StaleSessionError), reject refuses, interrupt keeps the stopped run's events and
rollback rewinds them out of the session."""

import asyncio
from typing import Any

import pytest

from by_framework import (
    AgentState,
    GatewayClient,
    SendResponse,
    SessionBusyError,
    StreamChunkEvent,
)
from tests.adapters.adk.conftest import Serve
from tests.support import final_result

AGENT = "adk-steps"
SESSION = "s-steps"


async def send(client: GatewayClient, text: str, worker: str, **options: Any) -> SendResponse:
    return await client.send_message(
        AGENT, SESSION, text, user_code="ada", target_worker_id=worker, **options
    )


async def working(client: GatewayClient, sent: SendResponse) -> None:
    """Wait until the task's run is inside its slow tool."""
    async for item in client.events(SESSION, timeout=30):
        if item.message_id == sent.message_id and isinstance(item.event, StreamChunkEvent):
            if item.event.content.endswith(" working"):
                return
    raise AssertionError(f"task {sent.message_id} never started its tool")


async def answer(client: GatewayClient, sent: SendResponse) -> str:
    result = await final_result(client, sent.message_id, timeout=60)
    assert result.status is AgentState.COMPLETED, result
    text: str = result.content
    return text


@pytest.fixture
async def two(serve: Serve, session_url: str) -> None:
    await asyncio.gather(serve("StepsWorker", "steps-a"), serve("StepsWorker", "steps-b"))


async def test_concurrent_messages_into_one_session_take_turns_and_all_complete(
    client: GatewayClient, two: None
) -> None:
    sent = [await send(client, f"m{n} 0.2", f"steps-{'ab'[n % 2]}") for n in range(4)]
    answers = [await answer(client, one) for one in sent]
    # Each run saw the session as every earlier one left it: one after another, none lost.
    assert sorted(len(a.split(" / ")) for a in answers) == [1, 2, 3, 4]
    assert sorted(answers, key=len)[-1].count("m") == 4


async def test_reject_refuses_while_a_run_is_in_flight(client: GatewayClient, two: None) -> None:
    first = await send(client, "m1 30", "steps-a")
    await working(client, first)
    with pytest.raises(SessionBusyError) as refused:
        await send(client, "m2 0", "steps-b", multitask_strategy="reject")
    assert refused.value.busy_with == first.message_id
    await client.cancel_task(first.message_id, SESSION)
    assert (await final_result(client, first.message_id)).status is AgentState.CANCELLED


@pytest.mark.parametrize(
    ("strategy", "seen"), [("interrupt", "m0 0 / m1 30 / m2 0"), ("rollback", "m0 0 / m2 0")]
)
async def test_interrupt_keeps_and_rollback_rewinds_the_stopped_runs_events(
    client: GatewayClient, two: None, strategy: str, seen: str
) -> None:
    assert await answer(client, await send(client, "m0 0", "steps-a")) == "m0 0"
    first = await send(client, "m1 30", "steps-a")
    await working(client, first)
    second = await send(client, "m2 0", "steps-b", multitask_strategy=strategy)
    assert await answer(client, second) == seen
    stopped = await final_result(client, first.message_id)
    assert stopped.status is AgentState.CANCELLED
    assert f"by task {second.message_id}" in (stopped.error or "")
