"""Operations split into single-slot steps (docs/execution.md, "Atomic steps and crashes"), cut
off after their first step, as a crash there leaves them: each is made good by the reclaim path,
or visible and ended by a cancel, never silently stuck.

A worker "ghost" registers, takes a command through the real engine and then stops (its online
key expires within ``heartbeat_ttl``): the steps it ran are the engine's own scripts, with the
arguments their callers pass."""

import asyncio
import time

import pytest
from redis.asyncio import Redis

from by_framework import AgentState, GatewayClient, Settings
from by_framework.common.aio import CANCEL_RETRY_S
from by_framework.ports import Delivery, FinalEvents
from by_framework.protocol import AgentTaskResult, MessageHeader
from by_framework.protocol.codec import decode_command, encode_command, encode_event
from by_framework.protocol.commands import AskAgentCommand
from by_framework.protocol.events import StateChangeEvent, TaskEndEvent, TaskResultEvent
from by_framework.redis.batching import evalsha
from by_framework.redis.engine import RedisEngine
from by_framework.redis.keys import KeySpace
from by_framework.redis.orchestration import command_entry
from by_framework.redis.records import new_record
from by_framework.redis.scripts import CLAIM, FINISH, RELEASE_RUN, RESUME
from tests.agents import EchoAgent, OrchestraAgent
from tests.support import eventually, final_result, running_worker


async def _ghost_takes(
    engine: RedisEngine, client: GatewayClient, settings: Settings, session_id: str
) -> tuple[Delivery, MessageHeader]:
    """A command of ``session_id`` that the worker "ghost" fetched and began; the ghost then
    stops heartbeating."""
    token = await engine.registry.acquire("ghost", settings.heartbeat_ttl)
    assert token is not None
    await engine.registry.register("ghost", ["echo"], token, settings.heartbeat_ttl)
    streams = engine.control.streams(["echo"], "ghost")
    await engine.control.prepare(streams)
    await client.send_message("echo", session_id, {"sleep": 0})
    fetcher = engine.control.fetcher(streams, "ghost")
    try:
        (delivery,) = await fetcher.fetch(10, 2000, own_pending=False)
    finally:
        await fetcher.aclose()
    header = decode_command(delivery.fields).header
    running = encode_event(header.message_id, "echo", 0, StateChangeEvent(state="running"))
    verdict = await engine.control.begin(delivery, header, "ghost", running)
    assert verdict.action == "run"
    return delivery, header


async def _pending(redis: Redis, settings: Settings) -> int:
    stream = KeySpace(settings.key_prefix).agent_type_stream("echo")
    return int((await redis.xpending(stream, settings.consumer_group))["pending"])


async def test_a_finish_whose_ack_was_lost_is_acked_on_redelivery_and_not_rerun(
    client: GatewayClient, settings: Settings, redis: Redis
) -> None:
    """Step 1 of finish (the record and final events) ran, step 2 (the XACK) never did: the entry
    is reclaimed by a live worker, whose ``begin`` finds the record ended and acknowledges it."""
    engine = client.engine
    keys = KeySpace(settings.key_prefix)
    delivery, header = await _ghost_takes(engine, client, settings, "s-lost-ack")
    result = AgentTaskResult(status=AgentState.COMPLETED, content="ghostly")
    result_event = encode_event(header.message_id, "echo", 1, TaskResultEvent(result=result))
    end_event = encode_event(header.message_id, "echo", 2, TaskEndEvent(status="completed"))
    first_step = evalsha(
        FINISH,
        [keys.session_registry("s-lost-ack"), keys.session_data_stream("s-lost-ack")],
        [header.message_id, "ghost", time.time(), "completed", "", result_event, end_event,
         settings.record_ttl, settings.data_stream_maxlen, settings.data_stream_ttl,
         delivery.entry_id, "", keys.task_group("s-lost-ack", "")],
    )  # fmt: skip
    assert await engine.batcher.execute(first_step) == [[b"ok", b"0"]]  # sent just now: no EXPIRE
    assert await _pending(redis, settings) == 1
    async with running_worker(EchoAgent(), settings, worker_id="live"):
        async with asyncio.timeout(15):
            while await _pending(redis, settings):
                await asyncio.sleep(0.1)
    record = await client.get_task(header.message_id)
    assert record is not None
    assert (record.status, record.worker_id, record.delivery_count) == (
        AgentState.COMPLETED, "ghost", 1
    )  # fmt: skip
    assert record.result is not None and record.result.content == "ghostly"


async def test_a_hand_back_cut_after_its_record_step_runs_from_the_old_entry(
    client: GatewayClient, settings: Settings, redis: Redis
) -> None:
    """Step 1 of a hand-back (the record back to QUEUED) ran, step 2 (a fresh copy, the XACK of
    the old entry) never did: the old entry is reclaimed and the task runs from it, once."""
    engine = client.engine
    keys = KeySpace(settings.key_prefix)
    _, header = await _ghost_takes(engine, client, settings, "s-cut-back")
    registry = keys.session_registry("s-cut-back")
    first_step = evalsha(RELEASE_RUN, [registry], [header.message_id, "ghost", time.time(), ""])
    assert await engine.batcher.execute(first_step) == [1]
    async with running_worker(EchoAgent(), settings, worker_id="live"):
        result = await final_result(client, header.message_id)
        async with asyncio.timeout(10):
            while await _pending(redis, settings):
                await asyncio.sleep(0.1)
    assert result.status is AgentState.COMPLETED
    record = await client.get_task(header.message_id)
    assert record is not None and (record.worker_id, record.delivery_count) == ("live", 1)
    states = [state for state, _ in record.timeline]
    assert states == ["queued", "running", "queued", "running", "completed"]


async def test_a_hand_back_slower_than_the_stoppers_second_cancel_runs_both_its_steps(
    client: GatewayClient, settings: Settings, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shutdown cancels a run past its deadline, then cancels again every CANCEL_RETRY_S
    until the run has ended; a hand-back that takes longer (a slow Redis) is not cut by the
    second cancel: the entry is back in the stream at once, not pending until a reclaim."""
    leaving = running_worker(EchoAgent(), settings, worker_id="leaving", shutdown_timeout=0.1)
    async with leaving as runner:
        control = runner.engine.control
        hand_back = control.hand_back

        async def slow_hand_back(*args: object, **kwargs: object) -> None:
            await asyncio.sleep(5 * CANCEL_RETRY_S)
            await hand_back(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(control, "hand_back", slow_hand_back)
        sent = await client.send_message("echo", "s-slow-back", {"sleep": 30})

        async def running() -> bool:
            record = await client.get_task(sent.message_id)
            return record is not None and record.status is AgentState.RUNNING

        await eventually(running, what="the run to start")
    assert await _pending(redis, settings) == 0
    record = await client.get_task(sent.message_id)
    assert record is not None and record.status is AgentState.QUEUED


async def test_a_send_cut_after_its_record_is_listed_queued_and_a_cancel_ends_it(
    client: GatewayClient, settings: Settings
) -> None:
    """Step 1 of a send (the QUEUED record) ran, step 2 (the command) never did: the sender got
    no success; the session lists the task as queued, and cancelling it ends it."""
    keys = KeySpace(settings.key_prefix)
    header = MessageHeader(session_id="s-cut-send", target_agent_type="echo")
    registry = keys.session_registry("s-cut-send")
    record = new_record(header, send_id="lost")
    claim = evalsha(CLAIM, [registry], [header.message_id, record, settings.record_ttl, "lost"])
    assert await client.engine.batcher.execute(claim) == [b"new"]
    (listed,) = await client.list_session_tasks("s-cut-send")
    assert (listed.message_id, listed.status) == (header.message_id, AgentState.QUEUED)
    report = await client.cancel_task(header.message_id, "s-cut-send", reason="never sent")
    assert report.cancelled == 1
    (ended,) = await client.list_session_tasks("s-cut-send")
    assert (ended.status, ended.error) == (AgentState.CANCELLED, "never sent")


async def test_a_resume_cut_after_its_record_is_listed_queued_and_a_cancel_ends_it(
    client: GatewayClient, settings: Settings
) -> None:
    """Step 1 of a resume (the record back to QUEUED) ran, step 2 (the ResumeCommand) never did:
    the task is listed queued, a second resume says it is not waiting, and a cancel ends it."""
    keys = KeySpace(settings.key_prefix)
    async with running_worker(OrchestraAgent(), settings, worker_id="asker"):
        asked = await client.send_message("asker", "s-cut-resume", {"op": "ask"})
        waiting = await client.wait_for_result(asked.message_id, timeout=10)
        assert waiting.status is AgentState.WAITING_USER
        registry = keys.session_registry("s-cut-resume")
        first_step = evalsha(
            RESUME, [registry], [asked.message_id, time.time(), settings.record_ttl]
        )
        assert await client.engine.batcher.execute(first_step) == [b"ok"]
        await asyncio.sleep(0.5)  # nothing runs it: no command was added
        record = await client.get_task(asked.message_id)
        assert record is not None and (record.status, record.run) == (AgentState.QUEUED, 1)
        report = await client.cancel_task(asked.message_id, "s-cut-resume", reason="no answer")
    assert report.cancelled == 1
    ended = await client.get_task(asked.message_id)
    assert ended is not None and ended.status is AgentState.CANCELLED


def _final_events(header: MessageHeader, result: AgentTaskResult) -> FinalEvents:
    status = result.status.value
    return FinalEvents(
        result=encode_event(header.message_id, "echo", 1, TaskResultEvent(result=result)),
        end=encode_event(header.message_id, "echo", 2, TaskEndEvent(status=status)),
    )


async def test_a_finish_retried_after_a_lost_reply_writes_nothing_twice_and_acks(
    client: GatewayClient, settings: Settings, redis: Redis
) -> None:
    """The worker retries a finish whose reply it lost: the second call finds this run's outcome
    recorded, writes nothing and acknowledges."""
    engine = client.engine
    delivery, header = await _ghost_takes(engine, client, settings, "s-retry")
    result = AgentTaskResult(status=AgentState.COMPLETED, content="once")
    events = _final_events(header, result)
    assert await engine.control.finish(delivery, header, "ghost", result, events)
    assert await engine.control.finish(delivery, header, "ghost", result, events)
    assert await _pending(redis, settings) == 0
    stream = KeySpace(settings.key_prefix).session_data_stream("s-retry")
    written = [fields[b"e"] for _, fields in await redis.xrange(stream)]
    assert written.count(events.result) == 1 and written.count(events.end) == 1


async def test_a_finish_after_a_cancel_ended_the_task_is_refused_and_not_acked(
    client: GatewayClient, settings: Settings, redis: Redis
) -> None:
    """A cancel found the holder offline (its online key lapsed) and ended the task; the holder,
    alive after all, finishes: refused (``stale``), nothing written, the entry left for the
    reclaim path, which skips it."""
    engine = client.engine
    delivery, header = await _ghost_takes(engine, client, settings, "s-late")
    async with asyncio.timeout(10):
        while await engine.registry.is_online("ghost"):
            await asyncio.sleep(0.1)
    report = await client.cancel_task(header.message_id, "s-late", reason="gone")
    assert report.cancelled == 1 and report.stopping == {}
    result = AgentTaskResult(status=AgentState.COMPLETED, content="late")
    assert not await engine.control.finish(
        delivery, header, "ghost", result, _final_events(header, result)
    )
    record = await client.get_task(header.message_id)
    assert record is not None and (record.status, record.error) == (AgentState.CANCELLED, "gone")
    assert await _pending(redis, settings) == 1
    async with running_worker(EchoAgent(), settings, worker_id="live"):
        async with asyncio.timeout(15):
            while await _pending(redis, settings):
                await asyncio.sleep(0.1)
    record = await client.get_task(header.message_id)
    assert record is not None and record.status is AgentState.CANCELLED


async def test_a_send_retried_by_its_sender_is_known_and_another_sender_is_refused(
    client: GatewayClient, settings: Settings
) -> None:
    """The claim of a send that is retried (its reply lost) answers "again" (deliver it again:
    ``begin`` skips a duplicate) until the task ran, then "sent"; any other send of that message
    id is refused before anything is delivered."""
    keys = KeySpace(settings.key_prefix)
    header = MessageHeader(session_id="s-retried", target_agent_type="echo")
    registry = keys.session_registry("s-retried")

    async def claim(send_id: str) -> bytes:
        record = new_record(header, send_id=send_id)
        args = [header.message_id, record, settings.record_ttl, send_id]
        (reply,) = await client.engine.batcher.execute(evalsha(CLAIM, [registry], args))
        return reply

    assert await claim("first") == b"new"
    assert await claim("first") == b"again"
    assert await claim("other") == b"taken"
    command = encode_command(header, AskAgentCommand(content="hi"))
    async with running_worker(EchoAgent(), settings, worker_id="echo"):
        with pytest.raises(ValueError, match="already used"):
            await client.engine.control.send(header, command, None)
        # The first sender's second step, as its retry runs it:
        stream = keys.send_stream("echo", "s-retried")
        index = ("SET", keys.task_index(header.message_id), "s-retried")
        await client.engine.batcher.execute(index, command_entry(stream, command, ""))
        result = await final_result(client, header.message_id)
    assert result.status is AgentState.COMPLETED
    assert await claim("first") == b"sent"
