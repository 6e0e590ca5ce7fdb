"""Double-texting on a LangGraph thread, with two worker processes sharing a PostgreSQL
checkpointer and the second message sent to the other worker than the run in flight: enqueue
(runs after it), reject (refused), interrupt (stops it, its writes kept), rollback (stops it,
its writes undone)."""

from typing import Any

import pytest

from by_framework import (
    AgentState,
    GatewayClient,
    SendResponse,
    SessionBusyError,
    StateChangeEvent,
)
from tests.support import final_result

AGENT = "lg-steps"
WORKER = "tests.adapters.langgraph.turn_graphs.StepsWorker"
SESSION = "s-double"


async def send(
    client: GatewayClient, tag: str, sleep: float, worker: str, **options: Any
) -> SendResponse:
    return await client.send_message(
        AGENT, SESSION, {"tag": tag, "sleep": sleep}, target_worker_id=worker, **options
    )


async def in_step_2(client: GatewayClient, sent: SendResponse) -> None:
    """Wait until the task's run has written step 1 and sleeps in step 2."""
    async for item in client.events(SESSION, timeout=30):
        if item.message_id == sent.message_id and item.event == StateChangeEvent(
            state="step 2", detail="langgraph node"
        ):
            return
    raise AssertionError(f"task {sent.message_id} never reached step 2")


async def log_of(client: GatewayClient, sent: SendResponse) -> list[str]:
    result = await final_result(client, sent.message_id, timeout=60)
    assert result.status is AgentState.COMPLETED, result
    log: list[str] = result.content["log"]
    return log


@pytest.fixture
async def two(workers: Any) -> None:
    await workers(**{"lg-a": WORKER, "lg-b": WORKER})


async def test_enqueue_runs_the_second_message_after_the_first(
    client: GatewayClient, two: None
) -> None:
    first = await send(client, "m1", 1.0, "lg-a")
    await in_step_2(client, first)
    second = await send(client, "m2", 0, "lg-b")  # enqueue: the default
    assert await log_of(client, second) == ["m1: step 1", "m1: step 2", "m2: step 1", "m2: step 2"]
    assert await log_of(client, first) == ["m1: step 1", "m1: step 2"]


async def test_reject_refuses_a_message_while_a_run_is_in_flight(
    client: GatewayClient, two: None
) -> None:
    first = await send(client, "m1", 30, "lg-a")
    await in_step_2(client, first)
    with pytest.raises(SessionBusyError) as refused:
        await send(client, "m2", 0, "lg-b", multitask_strategy="reject")
    assert refused.value.busy_with == first.message_id
    await client.cancel_task(first.message_id, SESSION)
    assert (await final_result(client, first.message_id)).status is AgentState.CANCELLED
    after = await send(client, "m3", 0, "lg-b", multitask_strategy="reject")  # idle: accepted
    # The cancelled run's half is rolled back, as after any run that did not end.
    assert await log_of(client, after) == ["m3: step 1", "m3: step 2"]


@pytest.mark.parametrize(
    ("strategy", "kept"),
    [("interrupt", ["m1: step 1"]), ("rollback", [])],
)
async def test_interrupt_keeps_and_rollback_undoes_the_stopped_runs_writes(
    client: GatewayClient, two: None, strategy: str, kept: list[str]
) -> None:
    done = await send(client, "m0", 0, "lg-a")
    assert await log_of(client, done) == ["m0: step 1", "m0: step 2"]
    first = await send(client, "m1", 30, "lg-a")
    await in_step_2(client, first)
    second = await send(client, "m2", 0, "lg-b", multitask_strategy=strategy)
    log = await log_of(client, second)
    assert log == ["m0: step 1", "m0: step 2", *kept, "m2: step 1", "m2: step 2"]
    stopped = await final_result(client, first.message_id)
    assert stopped.status is AgentState.CANCELLED
    assert f"by task {second.message_id} (multitask_strategy='{strategy}')" in (stopped.error or "")
