"""One run at a time per session and agent type (``AgentContext.session_turn``), across workers,
and what a message's ``multitask_strategy`` does while another run holds the turn: wait, be
refused, or stop that run and go next. Also a turn whose worker was killed mid-run, and
questions about a session's state (``client.query``), which a writing one waits for the turn."""

import asyncio
import itertools
from typing import Any

import pytest

from by_framework import (
    AgentState,
    GatewayClient,
    NoOnlineWorkerError,
    QueryError,
    SendResponse,
    SessionBusyError,
    Settings,
)
from tests.agents import EchoAgent, TurnAgent
from tests.support import eventually, final_result, running_worker, wait_online, worker_process

AGENT = "turns"


async def holds_turn(client: GatewayClient, session_id: str, message_id: str) -> None:
    async def held() -> bool:
        return await client.engine.turns.holder(session_id, AGENT) == message_id

    await eventually(held, what=f"task {message_id} holding the turn of {session_id}")


async def send(
    client: GatewayClient, session_id: str, sleep: float, worker: str, **options: Any
) -> SendResponse:
    return await client.send_message(
        AGENT, session_id, {"sleep": sleep}, target_worker_id=worker, **options
    )


async def ran(client: GatewayClient, sent: SendResponse) -> dict[str, Any]:
    result = await final_result(client, sent.message_id)
    assert result.status is AgentState.COMPLETED, result
    content: dict[str, Any] = result.content
    return content


async def test_a_sessions_messages_run_one_at_a_time_across_workers(
    client: GatewayClient, settings: Settings
) -> None:
    async with (
        running_worker(TurnAgent(), settings, worker_id="w1"),
        running_worker(TurnAgent(), settings, worker_id="w2"),
    ):
        sent = [await send(client, "s1", 0.3, worker) for worker in ("w1", "w2", "w1", "w2")]
        beside = await send(client, "s2", 0.3, "w2")  # another session: not kept apart
        runs = [await ran(client, one) for one in sent]
        other = await ran(client, beside)
    spans = sorted((run["began"], run["ended"]) for run in runs)
    for (_, ended), (began, _) in itertools.pairwise(spans):
        assert began >= ended  # never two at once
    assert other["began"] < spans[-1][0]
    assert all(run["superseded"] is None for run in runs)
    assert await client.engine.turns.holder("s1", AGENT) is None  # given up at the end


async def test_a_rejecting_message_is_refused_while_a_run_holds_the_turn(
    client: GatewayClient, settings: Settings
) -> None:
    async with running_worker(TurnAgent(), settings, worker_id="w1", max_concurrency=1):
        first = await send(client, "s1", 30, "w1")
        await holds_turn(client, "s1", first.message_id)
        # Seen at the send: refused there, nothing sent.
        with pytest.raises(SessionBusyError, match=f"task {first.message_id}") as refused:
            await send(client, "s1", 0, "w1", multitask_strategy="reject")
        assert refused.value.busy_with == first.message_id
        assert [r.message_id for r in await client.list_session_tasks("s1")] == [first.message_id]
        # Taken between the send and the run (another replica's run won the race): refused by
        # the worker, the task FAILED naming the run in flight.
        late = await send(client, "s2", 0, "w1", multitask_strategy="reject")  # behind `first`
        assert await client.engine.turns.take("s2", AGENT, "the-racing-run", 30) is None
        await client.cancel_task(first.message_id, "s1")
        result = await final_result(client, late.message_id)
        assert result.status is AgentState.FAILED
        assert "SessionBusyError" in (result.error or "")
        assert "task the-racing-run" in (result.error or "")
        assert await client.engine.turns.holder("s2", AGENT) == "the-racing-run"  # untouched


@pytest.mark.parametrize(
    ("strategy", "said"), [("interrupt", "interrupted by"), ("rollback", "rolled back by")]
)
async def test_an_interrupting_message_stops_the_run_in_flight_and_runs_next(
    client: GatewayClient, settings: Settings, strategy: str, said: str
) -> None:
    async with (
        running_worker(TurnAgent(), settings, worker_id="w1"),
        running_worker(TurnAgent(), settings, worker_id="w2"),
    ):
        first = await send(client, "s1", 30, "w1")
        await holds_turn(client, "s1", first.message_id)
        second = await send(client, "s1", 0, "w2", multitask_strategy=strategy)
        run = await ran(client, second)
        stopped = await final_result(client, first.message_id)
    assert run["superseded"] == first.message_id
    assert stopped.status is AgentState.CANCELLED
    assert f"{said} task {second.message_id}" in (stopped.error or "")


async def test_a_message_cancelled_while_it_waits_for_the_turn_ends_cancelled(
    client: GatewayClient, settings: Settings
) -> None:
    async with (
        running_worker(TurnAgent(), settings, worker_id="w1"),
        running_worker(TurnAgent(), settings, worker_id="w2"),
    ):
        first = await send(client, "s1", 30, "w1")
        await holds_turn(client, "s1", first.message_id)
        waiting = await send(client, "s1", 0, "w2")

        async def running() -> bool:
            record = await client.get_task(waiting.message_id)
            return record is not None and record.status is AgentState.RUNNING

        await eventually(running, what="the second task running (waiting for the turn)")
        await client.cancel_task(waiting.message_id, "s1")
        result = await final_result(client, waiting.message_id)
        assert result.status is AgentState.CANCELLED
        assert await client.engine.turns.holder("s1", AGENT) == first.message_id
        await client.cancel_task(first.message_id, "s1")


@pytest.mark.parametrize("heartbeat_ttl", [1.0, 3.0])
async def test_the_turn_of_a_killed_worker_passes_to_its_tasks_rerun_then_to_the_next(
    client: GatewayClient, settings: Settings, heartbeat_ttl: float
) -> None:
    """Also with a heartbeat TTL twice the lease: the killed task is taken over only once its
    worker is offline, and the turn must still be that task's then."""
    settings = settings.model_copy(update={"heartbeat_ttl": heartbeat_ttl})
    process = worker_process(settings, "doomed", "tests.agents.TurnAgent")
    try:
        await wait_online(client, "doomed")
        # On the agent type's stream (not the worker's own), for a live worker to reclaim it.
        first = await client.send_message(AGENT, "s1", {"sleep": 2})
        await holds_turn(client, "s1", first.message_id)
        async with running_worker(TurnAgent(), settings, worker_id="w2"):
            second = await send(client, "s1", 0, "w2")
            process.kill()  # SIGKILL: the turn is neither given up nor renewed
            await asyncio.to_thread(process.wait, 10)
            # The killed task is reclaimed (here, by w2), and its re-run takes its own turn back
            # at once; the waiting message runs after that re-run, not beside it.
            rerun = await ran(client, first)
            after = await ran(client, second)
        assert after["began"] >= rerun["ended"]
        assert (await client.get_task(first.message_id)).delivery_count == 2  # type: ignore[union-attr]
    finally:
        if process.poll() is None:
            process.kill()
        await asyncio.to_thread(process.wait, 10)


async def test_a_question_about_the_session_is_answered_by_a_worker_of_its_agent_type(
    client: GatewayClient, settings: Settings
) -> None:
    async with running_worker(TurnAgent(), settings, worker_id="w1", max_concurrency=1):
        busy = await send(client, "s0", 30, "w1")  # every slot busy: questions still answered
        await holds_turn(client, "s0", busy.message_id)
        answer = await client.query(AGENT, "s1", "when", user_code="ada")
        assert answer["session"] == "s1" and answer["user"] == "ada"
        with pytest.raises(QueryError, match="ValueError: no such question: nope"):
            await client.query(AGENT, "s1", "nope")
        with pytest.raises(QueryError, match="the answer must be plain JSON"):
            await client.query(AGENT, "s1", "set")
        # The worker's own 0.3 s start when the question reaches it, after the caller's: which
        # of the two says it first is a race, and either way the caller is told.
        with pytest.raises(QueryError, match=r"no answer (to 'sleep' )?within (the )?0\.3s"):
            await client.query(AGENT, "s1", "sleep", {"seconds": 5}, timeout=0.3)
        with pytest.raises(NoOnlineWorkerError):
            await client.query("nobody", "s1", "when")
        with pytest.raises(QueryError, match="EchoAgent answers no 'get_state' questions"):
            async with running_worker(EchoAgent(), settings, worker_id="w2"):
                await client.get_state("s1", "echo")
        await client.cancel_task(busy.message_id, "s0")


async def test_a_question_that_writes_waits_for_the_run_in_flight(
    client: GatewayClient, settings: Settings
) -> None:
    async with running_worker(TurnAgent(), settings, worker_id="w1"):
        run = await send(client, "s1", 1.0, "w1")
        await holds_turn(client, "s1", run.message_id)
        reading = await client.query(AGENT, "s1", "when")
        writing = await client.query(AGENT, "s1", "when", writes=True)
        ran_until = (await ran(client, run))["ended"]
    assert reading["at"] < ran_until <= writing["at"]
