"""Agents calling agents on the real Redis: call_agent, groups, ask_user/resume, cancel."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from by_framework import (
    AgentState,
    AskAgentCommand,
    AskUserEvent,
    GatewayClient,
    MessageHeader,
    ReplayDivergedError,
    SendResponse,
    SessionEvent,
    Settings,
    StateChangeEvent,
    TaskNotWaitingError,
    TaskRecord,
    TaskTimeoutError,
)
from by_framework.ports import SubCall
from by_framework.protocol import encode_command
from by_framework.protocol.ids import sub_call_id
from by_framework.redis import sightings
from by_framework.redis.batching import evalsha
from by_framework.redis.keys import KeySpace
from by_framework.redis.records import new_record
from by_framework.redis.scripts import DISPATCH
from tests.agents import EchoAgent, OrchestraAgent
from tests.support import final_result, running_worker, wait_online, worker_process


async def test_call_agent_returns_the_childs_reply_and_links_the_tree(
    client: GatewayClient, settings: Settings
) -> None:
    async with (
        running_worker(OrchestraAgent(), settings, worker_id="orchestra"),
        running_worker(EchoAgent(), settings, worker_id="echo"),
    ):
        sent = await client.send_message(
            "planner", "s-call", {"op": "call", "target": "echo", "content": "hi"}
        )
        result = await client.wait_for_result(sent.message_id, timeout=10)
    assert result.status is AgentState.COMPLETED
    assert result.content == {"reply": "hi", "status": "completed"}
    parent = await client.get_task(sent.message_id)
    assert parent is not None and len(parent.children) == 1
    child = await client.get_task(parent.children[0])
    assert child is not None
    assert child.parent_message_id == sent.message_id
    assert child.status is AgentState.COMPLETED
    states = [state for state, _ in parent.timeline]
    assert states == ["queued", "running", "waiting_reply", "running", "completed"]


async def test_a_chain_of_three_agents_and_back(client: GatewayClient, settings: Settings) -> None:
    async with running_worker(OrchestraAgent(), settings, worker_id="orchestra"):
        sent = await client.send_message(
            "planner", "s-chain", {"op": "chain", "via": ["helper", "asker"]}
        )
        result = await client.wait_for_result(sent.message_id, timeout=10)
    assert result.content == {
        "at": "planner",
        "inner": {"at": "helper", "inner": {"at": "asker"}},
    }
    records = await client.list_session_tasks("s-chain")
    assert [record.agent_type for record in records] == ["planner", "helper", "asker"]
    assert records[1].parent_message_id == records[0].message_id
    assert records[2].parent_message_id == records[1].message_id
    assert records[0].children == [records[1].message_id]


async def test_a_parent_calls_back_its_own_agent_type_with_one_slot(
    client: GatewayClient, settings: Settings
) -> None:
    """A -> B -> A on a worker with max_concurrency 1: waiting parents hold no slot."""
    async with running_worker(OrchestraAgent(), settings, max_concurrency=1):
        sent = await client.send_message(
            "planner", "s-aba", {"op": "chain", "via": ["helper", "planner"]}
        )
        result = await client.wait_for_result(sent.message_id, timeout=10)
    assert result.content == {
        "at": "planner",
        "inner": {"at": "helper", "inner": {"at": "planner"}},
    }


async def test_fan_out_to_twenty_children_on_two_agent_types(
    client: GatewayClient, settings: Settings
) -> None:
    async with (
        running_worker(OrchestraAgent(), settings, worker_id="orchestra"),
        running_worker(EchoAgent(), settings, worker_id="echo"),
    ):
        sent = await client.send_message(
            "planner", "s-fan", {"op": "fanout", "n": 20, "targets": ["echo", "helper"]}
        )
        result = await client.wait_for_result(sent.message_id, timeout=20)
    assert result.status is AgentState.COMPLETED
    ids, results = result.content["ids"], result.content["results"]
    assert list(results) == ids  # every child, in dispatch order
    for index, child in enumerate(ids):
        entry = results[child]
        assert entry["status"] == "completed"
        expected = {"sleep": 0, "i": index} if index % 2 == 0 else f"CHILD {index}"
        assert entry["content"] == expected
    print(f"fan-out: 20 dispatched, {len(results)} collected")


async def test_a_failed_child_is_reported_in_its_own_entry(
    client: GatewayClient, settings: Settings
) -> None:
    async with running_worker(OrchestraAgent(), settings):
        sent = await client.send_message(
            "planner", "s-fail", {"op": "call", "target": "helper", "content": {"op": "nope"}}
        )
        result = await client.wait_for_result(sent.message_id, timeout=10)
    assert result.status is AgentState.COMPLETED
    assert result.content["status"] == "failed"


async def test_ask_user_then_resume_on_another_worker_process(
    client: GatewayClient, settings: Settings
) -> None:
    first = worker_process(settings, "asker-1", "tests.agents.OrchestraAgent")
    second = None
    try:
        await wait_online(client, "asker-1")
        sent = await client.send_message("asker", "s-ask", {"op": "ask", "prompt": "Deploy?"})
        asked = await client.wait_for_result(sent.message_id, timeout=10)
        assert asked.status is AgentState.WAITING_USER
        questions = [
            item.event
            async for item in client.events("s-ask", until_message_id=sent.message_id, timeout=5)
            if isinstance(item.event, AskUserEvent)
        ]
        assert [question.prompt for question in questions] == ["Deploy?"]
        first.terminate()
        first.wait(10)
        second = worker_process(settings, "asker-2", "tests.agents.OrchestraAgent")
        await wait_online(client, "asker-2")
        await client.resume(sent.message_id, "s-ask", content="yes", reply_data={"by": "me"})
        with pytest.raises(TaskNotWaitingError, match=r"is (queued|running|completed)"):
            await client.resume(sent.message_id, "s-ask", content="again")
        result = await final_result(client, sent.message_id)
        assert result.status is AgentState.COMPLETED
        assert result.content == {"answer": "yes", "pid": second.pid, "trace": sent.trace_id}
        record = await client.get_task(sent.message_id)
        assert record is not None and record.run == 1
        assert record.worker_id == "asker-2"
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    with pytest.raises(TaskNotWaitingError, match="is completed, not waiting for the user"):
        await client.resume(sent.message_id, "s-ask", content="late")
    with pytest.raises(TaskNotWaitingError, match="no task"):
        await client.resume("no-such-task", "s-ask", content="?")


async def test_cancel_a_tree_of_depth_three(client: GatewayClient, settings: Settings) -> None:
    """Root (running) -> two children (one running, one queued behind a busy worker) -> a
    grandchild waiting for the user: all end CANCELLED, each with a CANCELLED state event."""
    grandchild = {"target": "asker", "content": {"op": "ask", "prompt": "hold on"}}
    running_child = {
        "target": "helper",
        "content": {"op": "sleep", "seconds": 30, "tree": [grandchild]},
    }
    queued_child = {"target": "echo", "content": {"sleep": 0}}
    async with (
        running_worker(OrchestraAgent(), settings, worker_id="orchestra", cancel_grace_seconds=0.5),
        running_worker(EchoAgent(), settings, worker_id="busy-echo", max_concurrency=1),
    ):
        blocker = await client.send_message("echo", "s-other", {"sleep": 30})
        root = await client.send_message(
            "planner",
            "s-cancel",
            {"op": "sleep", "seconds": 30, "tree": [running_child, queued_child]},
        )
        records = await _tasks_reaching(client, "s-cancel", 4)
        by_type = {record.agent_type: record for record in records}
        assert by_type["echo"].status is AgentState.QUEUED
        assert by_type["asker"].status is AgentState.WAITING_USER
        report = await client.cancel_task(root.message_id, "s-cancel", reason="user stop")
        assert report.cancelled == 2 and set(report.stopping.values()) == {"orchestra"}
        ended = await _tasks_ending(client, "s-cancel", 4)
        await client.cancel_task(blocker.message_id, "s-other", mode="force")
        cancelled_states = {
            item.message_id
            async for item in _session_events(client, "s-cancel")
            if isinstance(item.event, StateChangeEvent) and item.event.state == "cancelled"
        }
    assert {record.status for record in ended} == {AgentState.CANCELLED}
    assert all(record.error == "user stop" for record in ended)
    assert cancelled_states == {record.message_id for record in ended}
    echo = await client.get_task(by_type["echo"].message_id)
    assert echo is not None and echo.delivery_count == 0  # skipped, never run


async def _tasks_reaching(client: GatewayClient, session_id: str, count: int) -> list[TaskRecord]:
    """The session's records once it has ``count`` and none is still being picked up (running
    ones running, a question asked)."""
    async with asyncio.timeout(10):
        while True:
            records = await client.list_session_tasks(session_id)
            settled = {AgentState.RUNNING, AgentState.WAITING_USER, AgentState.QUEUED}
            if len(records) == count and all(r.status in settled for r in records):
                if any(r.status is AgentState.WAITING_USER for r in records):
                    return records
            await asyncio.sleep(0.05)


async def _tasks_ending(client: GatewayClient, session_id: str, count: int) -> list[TaskRecord]:
    async with asyncio.timeout(10):
        while True:
            records = await client.list_session_tasks(session_id)
            if len(records) == count and all(r.status.is_terminal for r in records):
                return records
            await asyncio.sleep(0.05)


async def _session_events(client: GatewayClient, session_id: str) -> AsyncIterator[SessionEvent]:
    """Every event the session has so far."""
    with contextlib.suppress(TaskTimeoutError):
        async for item in client.events(session_id, timeout=1):
            yield item


async def test_a_child_listed_in_its_parents_record_can_be_looked_up(
    client: GatewayClient, settings: Settings
) -> None:
    """A dispatch writes its children's task indexes in the batch before the journal that lists
    them (on one Redis, in that order): whoever sees a child in its parent's record finds it.
    They came with the children's commands, a round trip after the journal (caught 1 run in 3)."""
    async with running_worker(OrchestraAgent(), settings):
        fanout = {"op": "fanout", "n": 1000, "targets": ["helper"]}
        sent = await client.send_message("planner", "s-index", fanout)
        looked_up = 0
        async with asyncio.timeout(20):
            while True:
                parent = await client.get_task(sent.message_id)
                assert parent is not None
                if parent.status.is_terminal:
                    break
                for child in parent.children[:1] + parent.children[-1:]:
                    assert await client.get_task(child) is not None, f"{child} not found"
                    looked_up += 1
    assert looked_up > 0


async def test_a_dispatch_online_check_stands_for_the_next_ones_for_a_while(
    client: GatewayClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As for a send: a sub-call soon after a dispatch that found its agent type online skips
    the check, so the last worker's graceful stop meanwhile queues it for the next worker;
    past that while, a sub-call to it is refused again."""
    monkeypatch.setattr(sightings, "ONLINE_SEEN_FOR", 60.0)  # the stop's time does not count
    tree = {"op": "sleep", "seconds": 0, "tree": [{"target": "echo", "content": "queued"}]}
    async with running_worker(OrchestraAgent(), settings, worker_id="w-planner"):
        async with running_worker(EchoAgent(), settings, worker_id="w-echo"):
            first = await client.send_message("planner", "s-seen", tree)
            assert (await client.wait_for_result(first.message_id, timeout=10)).content == "slept"
        second = await client.send_message("planner", "s-seen", tree)
        assert (await client.wait_for_result(second.message_id, timeout=10)).content == "slept"
        monkeypatch.setattr(sightings, "ONLINE_SEEN_FOR", 0.0)
        call = {"op": "call", "target": "echo", "content": "refused"}
        third = await client.send_message("planner", "s-seen", call)
        refused = (await client.wait_for_result(third.message_id, timeout=10)).content
        assert refused["error"] == "NoOnlineWorkerError"
        async with running_worker(EchoAgent(), settings, worker_id="w-echo-next"):
            (queued,) = (await client.get_task(second.message_id)).children  # type: ignore[union-attr]
            assert (await client.wait_for_result(queued, timeout=10)).content == "queued"
    refused_calls = (await client.get_task(third.message_id)).children  # type: ignore[union-attr]
    assert refused_calls == []  # nothing was dispatched


async def test_bad_sub_calls_raise_errors_that_say_what_to_do(
    client: GatewayClient, settings: Settings
) -> None:
    async with running_worker(OrchestraAgent(), settings):
        sent = await client.send_message("planner", "s-misuse", {"op": "misuse"})
        problems = (await client.wait_for_result(sent.message_id, timeout=10)).content
        nobody = await client.send_message(
            "planner", "s-misuse", {"op": "call", "target": "nobody", "content": "x"}
        )
        offline = (await client.wait_for_result(nobody.message_id, timeout=10)).content
        slow = await client.send_message(
            "planner",
            "s-misuse",
            {"op": "call", "target": "helper", "timeout": 0.3,
             "content": {"op": "sleep", "seconds": 2}},
        )  # fmt: skip
        timed_out = (await client.wait_for_result(slow.message_id, timeout=10)).content
    assert problems["content"].startswith("InvalidContentError: cannot send this message: content")
    assert problems["blank"].startswith("InvalidMessageError: cannot call this agent")
    assert "must be a dict with a 'target_agent_type'" in problems["group"]
    assert "non-empty list of calls" in problems["empty"]
    assert problems["unknown group"].startswith("TaskNotFoundError: no task group 'nope'")
    assert offline["error"] == "NoOnlineWorkerError"
    assert "no online worker serves agent type 'nobody'" in offline["message"]
    assert timed_out["error"] == "TaskTimeoutError"
    assert "the sub-call goes on" in timed_out["message"]


async def test_a_thousand_children_are_gathered(client: GatewayClient, settings: Settings) -> None:
    async with (
        running_worker(OrchestraAgent(), settings, worker_id="orchestra"),
        running_worker(EchoAgent(), settings, worker_id="echo"),
    ):
        sent = await client.send_message(
            "planner", "s-1000", {"op": "fanout", "n": 1000, "targets": ["echo"]}
        )
        result = await client.wait_for_result(sent.message_id, timeout=60)
    ids, results = result.content["ids"], result.content["results"]
    assert len(set(ids)) == 1000 and list(results) == ids
    assert [results[child]["content"]["i"] for child in ids] == list(range(1000))
    assert {entry["status"] for entry in results.values()} == {"completed"}


async def test_graceful_cancel_of_a_task_that_ignores_it_ends_after_the_grace_period(
    client: GatewayClient, settings: Settings
) -> None:
    async with running_worker(EchoAgent(), settings, cancel_grace_seconds=0.5):
        stubborn = await client.send_message("echo", "s-grace", {"sleep": 30})
        forced = await client.send_message("echo", "s-grace", {"sleep": 30})
        await _until_status(client, stubborn.message_id, AgentState.RUNNING)
        await _until_status(client, forced.message_id, AgentState.RUNNING)
        await client.cancel_task(stubborn.message_id, "s-grace", reason="grace over")
        await client.cancel_task(forced.message_id, "s-grace", reason="now", mode="force")
        ended = [
            await client.wait_for_result(sent.message_id, timeout=5) for sent in (stubborn, forced)
        ]
    assert [(r.status, r.error) for r in ended] == [
        (AgentState.CANCELLED, "grace over"),
        (AgentState.CANCELLED, "now"),
    ]


async def test_cancel_session_cancels_every_unfinished_task(
    client: GatewayClient, settings: Settings
) -> None:
    async with running_worker(EchoAgent(), settings, max_concurrency=1):
        running = await client.send_message("echo", "s-all", {"sleep": 30})
        queued = await client.send_message("echo", "s-all", {"sleep": 30})
        await _until_status(client, running.message_id, AgentState.RUNNING)
        report = await client.cancel_session("s-all", mode="force")
        assert report.cancelled == 1 and list(report.stopping) == [running.message_id]
        for sent in (running, queued):
            assert (await client.wait_for_result(sent.message_id, timeout=5)).status is (
                AgentState.CANCELLED
            )


async def _until_status(client: GatewayClient, message_id: str, status: AgentState) -> None:
    async with asyncio.timeout(10):
        while (record := await client.get_task(message_id)) is None or record.status != status:
            await asyncio.sleep(0.02)


async def test_a_rerun_that_makes_other_calls_is_stopped_with_the_rule(
    client: GatewayClient, settings: Settings
) -> None:
    """What a re-run of non-deterministic code meets: its call number was used for another
    call; dispatching it raises instead of returning the other call's result."""
    child = {"target": "helper", "content": {"op": "sleep", "seconds": 30}}
    async with running_worker(OrchestraAgent(), settings, cancel_grace_seconds=0) as runner:
        root = await client.send_message(
            "planner", "s-diverge", {"op": "sleep", "seconds": 30, "tree": [child]}
        )
        await _until_status(client, sub_call_id(root.message_id, 0, 0), AgentState.RUNNING)
        header = MessageHeader(
            message_id=sub_call_id(root.message_id, 0, 0),
            session_id="s-diverge",
            target_agent_type="asker",
            parent_message_id=root.message_id,
        )
        rerun = SubCall(header, encode_command(header, AskAgentCommand(content="x")), True)
        parent = MessageHeader(
            message_id=root.message_id, session_id="s-diverge", target_agent_type="planner"
        )
        orchestration = runner.engine.orchestration
        with pytest.raises(ReplayDivergedError, match="where its earlier run made a call to"):
            await orchestration.dispatch(parent, [rerun], None)
        same = SubCall(header.model_copy(update={"target_agent_type": "helper"}), b"{}", True)
        assert await orchestration.dispatch(parent, [same], None) is False  # sent before
        await client.cancel_session("s-diverge", mode="force")
    records = await client.list_session_tasks("s-diverge")
    assert len(records) == 2  # nothing was dispatched again


async def test_sub_calls_resumes_and_cancels_are_signed_when_signing_is_on(
    settings: Settings,
) -> None:
    signed = settings.model_copy(update={"signing_key": SecretStr("orchestra-key")})
    client = GatewayClient.connect(signed)
    try:
        async with running_worker(OrchestraAgent(), signed, cancel_grace_seconds=0):
            call = await client.send_message(
                "planner", "s-signed", {"op": "call", "target": "helper",
                                        "content": {"op": "upper", "text": "ok"}},
            )  # fmt: skip
            replied = await client.wait_for_result(call.message_id, timeout=10)
            asked = await client.send_message("asker", "s-signed", {"op": "ask"})
            await client.wait_for_result(asked.message_id, timeout=10)
            await client.resume(asked.message_id, "s-signed", content="fine")
            answered = await final_result(client, asked.message_id)
            slow = await client.send_message("helper", "s-signed", {"op": "sleep", "seconds": 30})
            await _until_status(client, slow.message_id, AgentState.RUNNING)
            await client.cancel_task(slow.message_id, "s-signed")
            stopped = await client.wait_for_result(slow.message_id, timeout=5)
            dead = await client._engine.redis.xlen(KeySpace(signed.key_prefix).dead_letter_stream())
    finally:
        await client.aclose()
    assert replied.content == {"reply": "OK", "status": "completed"}
    assert answered.content["answer"] == "fine"
    assert stopped.status is AgentState.CANCELLED
    assert dead == 0


async def test_cancel_reaches_a_parent_waiting_for_its_child(
    client: GatewayClient, settings: Settings
) -> None:
    """Root waiting for a running child (WAITING_REPLY) whose own child is queued: all three end
    CANCELLED and the root's wait ends at once."""
    queued = {"target": "echo", "content": {"sleep": 0}}
    running = {"op": "sleep", "seconds": 30, "tree": [queued]}
    async with (
        running_worker(OrchestraAgent(), settings, worker_id="orchestra", cancel_grace_seconds=5),
        running_worker(EchoAgent(), settings, worker_id="busy-echo", max_concurrency=1),
    ):
        blocker = await client.send_message("echo", "s-other", {"sleep": 30})
        root = await client.send_message(
            "planner", "s-wait", {"op": "call", "target": "helper", "content": running}
        )
        await _until_status(client, root.message_id, AgentState.WAITING_REPLY)
        records = await _tasks_reaching_count(client, "s-wait", 3)
        assert {r.status for r in records} == {
            AgentState.WAITING_REPLY,
            AgentState.RUNNING,
            AgentState.QUEUED,
        }
        report = await client.cancel_task(root.message_id, "s-wait", reason="stop waiting")
        assert report.cancelled == 1 and len(report.stopping) == 2
        ended = await _tasks_ending(client, "s-wait", 3)
        await client.cancel_task(blocker.message_id, "s-other", mode="force")
    assert {(r.status, r.error) for r in ended} == {(AgentState.CANCELLED, "stop waiting")}
    root_record = next(r for r in ended if r.message_id == root.message_id)
    assert root_record.finished_at is not None
    assert root_record.finished_at - root_record.timeline[-2][1] < 5  # before the grace ran out


async def _tasks_reaching_count(
    client: GatewayClient, session_id: str, count: int
) -> list[TaskRecord]:
    async with asyncio.timeout(10):
        while len(records := await client.list_session_tasks(session_id)) < count or any(
            r.status is AgentState.QUEUED for r in records if r.agent_type != "echo"
        ):
            await asyncio.sleep(0.05)
    return records


# Written by the test in one script (atomically, whatever the child's worker does meanwhile):
# the child's record no longer says its parent waits for it, so its end sends no wake-up.
_FORGET_REPLY = """
local rec = cjson.decode(redis.call('HGET', KEYS[1], ARGV[1]))
rec.reply = false
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(rec))
"""


async def _call_a_running_child(client: GatewayClient, session: str) -> tuple[SendResponse, str]:
    """A planner's call_agent to an echo that sleeps 1 s: the planner's send and the child's id,
    once the child runs."""
    call = {"op": "call", "target": "echo", "content": {"sleep": 1}}
    root = await client.send_message("planner", session, call)
    child_id = sub_call_id(root.message_id, 0, 0)
    await _until_status(client, child_id, AgentState.RUNNING)
    return root, child_id


async def test_a_parent_whose_wake_up_is_lost_finds_the_result_on_its_recheck(
    client: GatewayClient, settings: Settings, redis: Redis
) -> None:
    """The wake-up is a step of its own after the child's end (another slot): lost, the parent
    still gets the reply from its periodic re-check of the journal, within a sweep interval."""
    keys = KeySpace(settings.key_prefix)
    async with (
        running_worker(OrchestraAgent(), settings, worker_id="orchestra"),
        running_worker(EchoAgent(), settings, worker_id="echo"),
    ):
        root, child_id = await _call_a_running_child(client, "s-lost")
        await redis.eval(_FORGET_REPLY, 1, keys.session_registry("s-lost"), child_id)
        await _until_status(client, child_id, AgentState.COMPLETED)
        ended_at = asyncio.get_running_loop().time()
        result = await final_result(client, root.message_id)
        waited = asyncio.get_running_loop().time() - ended_at
        notices = await redis.xrange(keys.worker_notices("orchestra"))
    assert result.status is AgentState.COMPLETED
    assert result.content == {"reply": {"sleep": 1}, "status": "completed"}
    assert [fields for _, fields in notices if b"n" in fields] == []  # no wake-up was sent
    assert waited < settings.sweep_interval + 2


async def test_a_wake_up_before_the_reply_leaves_the_parent_waiting_for_it(
    client: GatewayClient, settings: Settings, redis: Redis
) -> None:
    """A woken parent is recorded running as it reads the reply; a wake-up with no reply to
    read yet (one sent twice, or early) puts it back to waiting, slot given up, until the
    real one."""
    keys = KeySpace(settings.key_prefix)
    async with (
        running_worker(OrchestraAgent(), settings, worker_id="orchestra"),
        running_worker(EchoAgent(), settings, worker_id="echo"),
    ):
        root, child_id = await _call_a_running_child(client, "s-early")
        await _until_status(client, root.message_id, AgentState.WAITING_REPLY)
        await redis.xadd(keys.worker_notices("orchestra"), {"n": child_id})
        await _until_status(client, child_id, AgentState.COMPLETED)
        result = await final_result(client, root.message_id)
    states = [
        item.event.state
        async for item in _session_events(client, "s-early")
        if item.message_id == root.message_id and isinstance(item.event, StateChangeEvent)
    ]
    assert result.content == {"reply": {"sleep": 1}, "status": "completed"}
    # woken early: running, nothing to read, waiting again; then the reply's wake-up
    assert states == ["running", "waiting_reply", "running", "waiting_reply", "running"]


async def test_a_dispatch_cut_off_between_its_steps_is_sent_by_the_rerun(
    client: GatewayClient, settings: Settings
) -> None:
    """A parent's worker that died after writing a child's record (the journal) and before
    adding its command: the re-run's dispatch finds the record, never delivered, and sends it."""
    keys = KeySpace(settings.key_prefix)
    async with running_worker(OrchestraAgent(), settings, cancel_grace_seconds=0) as runner:
        root = await client.send_message("planner", "s-cut", {"op": "sleep", "seconds": 30})
        await _until_status(client, root.message_id, AgentState.RUNNING)
        parent = MessageHeader(
            message_id=root.message_id, session_id="s-cut", target_agent_type="planner"
        )
        header = MessageHeader(
            message_id=sub_call_id(root.message_id, 0, 7),
            session_id="s-cut",
            target_agent_type="helper",
            parent_message_id=root.message_id,
        )
        command = AskAgentCommand(content={"op": "upper", "text": "late"})
        call = SubCall(header, encode_command(header, command), False)
        registry = keys.session_registry("s-cut")
        first_step = evalsha(
            DISPATCH,
            [registry, keys.task_children("s-cut", root.message_id), registry],
            [root.message_id, "", "", settings.record_ttl, 0,
             header.message_id, new_record(header)],
        )  # fmt: skip
        assert await runner.engine.batcher.execute(first_step) == [b"ok"]
        await asyncio.sleep(0.5)
        # Its record is in the session (the task index comes with the command, step 3).
        (cut_off,) = [r for r in await client.list_session_tasks("s-cut") if r.parent_message_id]
        assert (cut_off.message_id, cut_off.status) == (header.message_id, AgentState.QUEUED)
        assert await client.get_task(header.message_id) is None
        assert await runner.engine.orchestration.dispatch(parent, [call], None) is False
        result = await final_result(client, header.message_id)
        await client.cancel_session("s-cut", mode="force")
    assert result.status is AgentState.COMPLETED and result.content == "LATE"
    record = await client.get_task(root.message_id)
    assert record is not None and record.children == [header.message_id]
