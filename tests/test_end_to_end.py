"""Send -> worker -> events read by a client, on the real Redis, with the worker in this loop."""

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from by_framework import (
    AgentContext,
    AgentState,
    ArtifactEvent,
    BaiYingMessage,
    ByaiGatewayClient,
    GatewayClient,
    GatewayWorker,
    InvalidContentError,
    InvalidMessageError,
    MessageHeader,
    NoOnlineWorkerError,
    Settings,
    StateChangeEvent,
    StreamChunkEvent,
    TaskEndEvent,
    TaskNotFoundError,
    TaskResultEvent,
    TaskTimeoutError,
)
from by_framework.protocol import AskAgentCommand, encode_command
from by_framework.redis import sightings
from by_framework.redis.keys import KeySpace
from tests.agents import EchoAgent, ShowcaseAgent, StreamerAgent
from tests.support import running_worker, wait_all


async def collect(client: GatewayClient, session_id: str, message_id: str) -> list[object]:
    return [
        item.event
        async for item in client.events(session_id, until_message_id=message_id, timeout=10)
    ]


async def test_events_reach_the_client_in_order(client: GatewayClient, settings: Settings) -> None:
    async with running_worker(ShowcaseAgent(), settings):
        sent = await client.send_message("showcase", "sess-1", "go", user_code="u1")
        events = await collect(client, "sess-1", sent.message_id)
    assert events[0] == StateChangeEvent(state="running")
    assert events[1] == StateChangeEvent(state="analyzing", detail="step 1")
    assert events[2] == StreamChunkEvent(content="thinking about it", kind="reasoning")
    assert [e.content for e in events[3:6]] == ["a", "b", "c"]  # type: ignore[attr-defined]
    assert events[6] == ArtifactEvent(url="https://example.com/out.json")
    result = events[7]
    assert isinstance(result, TaskResultEvent)
    assert result.result.status is AgentState.COMPLETED  # the agent said "COMPLETED"
    assert result.result.content["agent"] == "showcase"
    assert events[8] == TaskEndEvent(status="completed")
    assert len(events) == 9


async def test_a_task_streaming_faster_than_round_trips_loses_nothing_and_keeps_order(
    client: GatewayClient, settings: Settings
) -> None:
    """Events are written behind the task: all of them still precede its waiting state, its
    child's run and its end, in sequence order."""
    async with (
        running_worker(StreamerAgent(), settings, worker_id="streamer"),
        running_worker(EchoAgent(), settings, worker_id="echo"),
    ):
        sent = await client.send_message("streamer", "s-stream", {"chunks": 3000})
        items = [
            item
            async for item in client.events(
                "s-stream", until_message_id=sent.message_id, timeout=30
            )
        ]
    mine = [item for item in items if item.message_id == sent.message_id]
    assert [item.seq for item in mine] == list(range(len(mine)))
    kinds = [
        item.event.content
        if isinstance(item.event, StreamChunkEvent)
        else type(item.event).__name__
        for item in mine
    ]
    chunks = [str(i) for i in range(6000)]
    assert kinds[1:3001] == chunks[:3000]
    assert kinds[3001:3003] == ["StateChangeEvent", "StateChangeEvent"]  # waiting, running
    assert [item.event.state for item in mine[3001:3003]] == ["waiting_reply", "running"]
    assert kinds[3003:6003] == chunks[3000:]
    assert kinds[6003:] == ["TaskResultEvent", "TaskEndEvent"]
    child = [item for item in items if item.message_id != sent.message_id]
    first_child = items.index(child[0])
    assert items.index(mine[3000]) < first_child  # the chunks before the call precede the child


async def test_sequence_numbers_and_record_timeline(
    client: GatewayClient, settings: Settings
) -> None:
    async with running_worker(ShowcaseAgent(), settings):
        sent = await client.send_message("showcase-b", "sess-2", "go")
        result = await client.wait_for_result(sent.message_id, timeout=10)
        items = [i async for i in client.events("sess-2", until_message_id=sent.message_id)]
    assert [i.seq for i in items] == list(range(len(items)))
    assert {i.message_id for i in items} == {sent.message_id}
    assert result.content["agent"] == "showcase-b"
    record = await client.get_task(sent.message_id)
    assert record is not None
    assert record.status is AgentState.COMPLETED
    assert [state for state, _ in record.timeline] == ["queued", "running", "completed"]
    assert record.worker_id == settings.worker_id
    assert record.result == result
    assert record.created_at <= record.started_at <= record.finished_at  # type: ignore[operator]
    assert not Path(result.content["workspace"]).exists()  # workspace removed when done


async def test_a_failing_task_is_recorded_failed_and_the_worker_goes_on(
    client: GatewayClient, settings: Settings
) -> None:
    async with running_worker(ShowcaseAgent(), settings):
        failed = await client.send_message("showcase", "sess-3", "fail")
        bad_result = await client.send_message("showcase", "sess-3", "unserializable")
        fine = await client.send_message("showcase", "sess-3", "go")
        outcomes = [
            await client.wait_for_result(m.message_id, timeout=10)
            for m in (failed, bad_result, fine)
        ]
    assert outcomes[0].status is AgentState.FAILED
    assert outcomes[0].error == "RuntimeError: asked to fail"
    assert outcomes[1].status is AgentState.FAILED
    assert "not JSON-serializable" in (outcomes[1].error or "")
    assert outcomes[2].status is AgentState.COMPLETED
    tasks = await client.list_session_tasks("sess-3")
    assert [t.message_id for t in tasks] == [failed.message_id, bad_result.message_id,
                                            fine.message_id]  # fmt: skip
    assert tasks[0].error == "RuntimeError: asked to fail"


async def test_a_result_is_awaited_by_its_sender_and_by_any_other_client(
    client: GatewayClient, redis: Redis, settings: Settings
) -> None:
    """The sender knows its task's session, another client looks it up; a task whose record and
    index are gone (past its retention) is not found at once rather than waited for."""
    async with running_worker(EchoAgent(), settings):
        sent = await client.send_message("echo", "sess-w", {"sleep": 0.3})
        other = GatewayClient(redis, settings=settings)
        try:
            results = await asyncio.gather(
                client.wait_for_result(sent.message_id, timeout=10),
                other.wait_for_result(sent.message_id, timeout=10),
            )
        finally:
            await other.aclose()
        assert [result.content for result in results] == [{"sleep": 0.3}] * 2
        gone = await client.send_message("echo", "sess-w", "x")
        await client.wait_for_result(gone.message_id, timeout=10)
    keys = KeySpace(settings.key_prefix)
    await redis.hdel(keys.session_registry("sess-w"), gone.message_id, f"{gone.message_id}:r")
    await redis.delete(keys.task_index(gone.message_id))
    with pytest.raises(TaskNotFoundError, match="past its retention"):
        await client.wait_for_result(gone.message_id, timeout=5)


async def test_direct_routing_reaches_the_named_worker_only(
    client: GatewayClient, settings: Settings
) -> None:
    async with (
        running_worker(EchoAgent(), settings, worker_id="w-a"),
        running_worker(EchoAgent(), settings, worker_id="w-b"),
    ):
        sends = [
            await client.send_message("echo", "sess-4", i, target_worker_id="w-b")
            for i in range(10)
        ]
        for sent in sends:
            await client.wait_for_result(sent.message_id, timeout=10)
    records = [await client.get_task(s.message_id) for s in sends]
    assert {r.worker_id for r in records if r is not None} == {"w-b"}


async def test_sending_without_an_online_worker_is_refused(
    client: GatewayClient, settings: Settings
) -> None:
    with pytest.raises(NoOnlineWorkerError, match="no online worker serves agent type 'echo'"):
        await client.send_message("echo", "sess-5", "hi", wait_for_worker=0)
    async with running_worker(EchoAgent(), settings, worker_id="w-on"):
        with pytest.raises(NoOnlineWorkerError, match="worker 'w-off' is not online"):
            await client.send_message(
                "echo", "sess-5", "hi", target_worker_id="w-off", wait_for_worker=0
            )
        with pytest.raises(NoOnlineWorkerError, match="'echoo'"):
            await client.send_message("echoo", "sess-5", "hi", wait_for_worker=0)
    # Refused sends leave nothing behind.
    assert await client.list_session_tasks("sess-5") == []
    with pytest.raises(NoOnlineWorkerError):  # deregistered on shutdown
        await client.send_message("echo", "sess-5", "hi", wait_for_worker=0)


async def test_an_online_check_stands_for_the_next_sends_for_a_while(
    client: GatewayClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A send soon after one that found a worker online skips the check: the last worker's
    graceful stop meanwhile does not refuse it, it is queued for the next worker. Past that
    while, a send is refused again."""
    monkeypatch.setattr(sightings, "ONLINE_SEEN_FOR", 60.0)  # the stop's time does not count
    async with running_worker(EchoAgent(), settings, worker_id="w-seen"):
        first = await client.send_message("echo", "sess-seen", "one", wait_for_worker=0)
        await client.wait_for_result(first.message_id, timeout=10)
    queued = await client.send_message("echo", "sess-seen", "two", wait_for_worker=0)
    monkeypatch.setattr(sightings, "ONLINE_SEEN_FOR", 0.0)
    with pytest.raises(NoOnlineWorkerError):
        await client.send_message("echo", "sess-seen", "three", wait_for_worker=0)
    async with running_worker(EchoAgent(), settings, worker_id="w-next"):
        result = await client.wait_for_result(queued.message_id, timeout=10)
    assert result.content == "two"
    listed = await client.list_session_tasks("sess-seen")  # the refused send left nothing
    assert [r.message_id for r in listed] == [first.message_id, queued.message_id]


async def test_a_send_waits_for_a_worker_started_after_it_within_its_bound(
    client: GatewayClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recipe's client started with its worker: the send waits for the worker to come online,
    then queues the task once; with no worker within the bound, nothing is queued."""
    monkeypatch.setattr(sightings, "ONLINE_SEEN_FOR", 0.0)  # every send checks (test above)
    sending = asyncio.create_task(client.send_message("echo", "sess-w", "hi", wait_for_worker=10))
    await asyncio.sleep(0.5)
    assert not sending.done()
    async with running_worker(EchoAgent(), settings, worker_id="w-late"):
        sent = await sending
        result = await client.wait_for_result(sent.message_id, timeout=10)
    assert result.content == "hi"
    assert [r.message_id for r in await client.list_session_tasks("sess-w")] == [sent.message_id]

    started = asyncio.get_running_loop().time()
    with pytest.raises(NoOnlineWorkerError, match=r"'echo'.*waited 0\.5s for one"):
        await client.send_message("echo", "sess-w2", "hi", wait_for_worker=0.5)
    assert 0.5 <= asyncio.get_running_loop().time() - started < 3
    assert await client.list_session_tasks("sess-w2") == []


async def test_bad_calls_raise_errors_that_say_what_to_do(
    client: GatewayClient, settings: Settings
) -> None:
    async with running_worker(EchoAgent(), settings):
        with pytest.raises(InvalidMessageError, match="session_id"):
            await client.send_message("echo", "", "hi")
        with pytest.raises(InvalidMessageError, match="session_id"):
            await client.send_message("echo", "   ", "hi")
        for session in ("has space", "a/b", "tag{x}", "naïve"):
            with pytest.raises(InvalidMessageError, match=f"session_id '{session}' must be made"):
                await client.send_message("echo", session, "hi")
        with pytest.raises(InvalidContentError, match=r"content\['when'\] is of type object"):
            await client.send_message("echo", "sess-6", {"when": object()})
        # Not turned into text the agent would read as something else: refused, where it is.
        at = datetime(2026, 11, 30, tzinfo=UTC)
        refused = {
            r"metadata\['at'\] is of type datetime": {"metadata": {"at": at}},
            r"content\[1\] is of type UUID": {"content": ["x", uuid.uuid4()]},
            r"content\['b'\] is of type bytes": {"content": {"b": b"raw"}},
            r"content\['n'\] is nan": {"content": {"n": float("nan")}},
            "content has a key 1 that is not a string": {"content": {1: "x"}},
            r"extra_payload\['s'\] is of type set": {"extra_payload": {"s": {1}}},
            r"configurable\['at'\] is of type datetime": {"configurable": {"at": at}},
        }
        for problem, call in refused.items():
            fields = {"content": "hi", **call}
            with pytest.raises(InvalidContentError, match=problem):
                await client.send_message("echo", "sess-6", **fields)
        with pytest.raises(InvalidMessageError, match=r"stream_mode.0: Input should be"):
            await client.send_message("echo", "sess-6", "hi", stream_mode=["tokens"])  # type: ignore[list-item]
        with pytest.raises(InvalidMessageError, match="multitask_strategy: Input should be"):
            await client.send_message("echo", "sess-6", "hi", multitask_strategy="queue")  # type: ignore[arg-type]
        with pytest.raises(InvalidContentError, match=r"reply_data\['at'\] is of type datetime"):
            await client.resume("any-task", "sess-6", "yes", reply_data={"at": at})
        assert await client.list_session_tasks("sess-6") == []  # nothing was sent
        for session in ("user@example.com:chat-1", "a_b.c+d=e~f", "S-9"):
            ok = await client.send_message("echo", session, {"at": at.isoformat()})
            assert (await client.wait_for_result(ok.message_id, timeout=10)).content == {
                "at": "2026-11-30T00:00:00+00:00"
            }
        with pytest.raises(TaskNotFoundError, match="never sent"):
            await client.wait_for_result("no-such-task", timeout=1)
        slow = await client.send_message("echo", "sess-6", {"sleep": 1.0})
        with pytest.raises(TaskTimeoutError, match="the task goes on"):
            await client.wait_for_result(slow.message_id, timeout=0.2)
        assert (await client.wait_for_result(slow.message_id, timeout=10)).content == {"sleep": 1.0}


class OptionsAgent(GatewayWorker):
    """Answers with the run options its command carries."""

    def get_agent_types(self) -> list[str]:
        return ["options"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        fields = ("configurable", "stream_mode", "multitask_strategy")
        return {"status": "completed", "content": {f: getattr(command, f) for f in fields}}


async def test_run_options_travel_in_the_command_to_the_worker(
    client: GatewayClient, settings: Settings
) -> None:
    async with running_worker(OptionsAgent(), settings):
        plain = await client.send_message("options", "sess-o", "hi")
        chosen = await client.send_message(
            "options",
            "sess-o",
            "hi",
            configurable={"model": "small", "tenant": {"id": 7}},
            stream_mode=["updates", "custom"],
            multitask_strategy="reject",
        )
        assert (await client.wait_for_result(plain.message_id, timeout=10)).content == {
            "configurable": {},
            "stream_mode": None,
            "multitask_strategy": "enqueue",
        }
        assert (await client.wait_for_result(chosen.message_id, timeout=10)).content == {
            "configurable": {"model": "small", "tenant": {"id": 7}},
            "stream_mode": ["updates", "custom"],
            "multitask_strategy": "reject",
        }


async def test_interceptors_see_and_change_every_command(
    client: GatewayClient, settings: Settings
) -> None:
    seen: list[str] = []

    class AuthInterceptor:
        async def before_send(self, command, header: MessageHeader):  # type: ignore[no-untyped-def]
            seen.append(header.message_id)
            header.metadata["auth_token"] = "t0k"
            command.content = f"{command.content}!"
            return command, header

    client.add_interceptor(AuthInterceptor())
    async with running_worker(EchoAgent(), settings):
        sent = await client.send_message("echo", "sess-7", "hi")
        result = await client.wait_for_result(sent.message_id, timeout=10)
    assert seen == [sent.message_id]
    assert result.content == "hi!"


async def test_byai_client_sends_typed_messages(redis: Redis, settings: Settings) -> None:
    byai = ByaiGatewayClient(redis_client=redis, settings=settings)
    try:
        async with running_worker(EchoAgent(), settings):
            sent = await byai.send_message(
                "echo", "sess-8", BaiYingMessage(role="user", content="Hello")
            )
            result = await byai.wait_for_result(sent.message_id, timeout=10)
    finally:
        await byai.aclose()
    message = BaiYingMessage.decode(result.content)
    assert message == BaiYingMessage(role="user", content="Hello")


async def test_commands_sent_before_any_consumer_group_are_not_lost(
    client: GatewayClient, settings: Settings, redis: Redis
) -> None:
    # A worker that registered, then died before creating its groups: the stream exists
    # without a group; the next worker must still see the command.
    registry = client.registry
    token = await registry.acquire("ghost", 5)
    assert token is not None
    await registry.register("ghost", ["echo"], token, 5)
    sent = await client.send_message("echo", "sess-9", "early")
    await registry.deregister("ghost", ["echo"], token)
    async with running_worker(EchoAgent(), settings):
        result = await client.wait_for_result(sent.message_id, timeout=10)
    assert result.content == "early"


async def test_many_concurrent_tasks_respect_max_concurrency(
    client: GatewayClient, settings: Settings
) -> None:
    async with running_worker(EchoAgent(), settings, max_concurrency=4, fetch_count=3):
        sends = await asyncio.gather(
            *(client.send_message("echo", f"sess-c{i % 5}", {"sleep": 0.05}) for i in range(40))
        )
        results = await wait_all(client, sends)
    records = [await client.get_task(s.message_id) for s in sends]
    assert all(r.status is AgentState.COMPLETED for r in results)
    intervals = sorted((r.started_at, r.finished_at) for r in records if r is not None)
    most = max(
        sum(1 for s, f in intervals if s <= start < f)  # type: ignore[operator]
        for start, _ in intervals
    )
    assert most <= 4


async def test_a_command_added_without_a_record_still_runs_once(
    client: GatewayClient, settings: Settings, redis: Redis
) -> None:
    header = MessageHeader(session_id="sess-raw", target_agent_type="echo")
    entry = encode_command(header, AskAgentCommand(content="bare"))
    stream = KeySpace(settings.key_prefix).agent_type_stream("echo")
    async with running_worker(EchoAgent(), settings):
        await redis.xadd(stream, {b"e": entry})
        await redis.xadd(stream, {b"e": entry})  # a duplicate delivery of the same message
        async for _ in client.events("sess-raw", until_message_id=header.message_id, timeout=10):
            pass
        await asyncio.sleep(0.3)  # the duplicate is settled too
    (record,) = await client.list_session_tasks("sess-raw")
    assert record.message_id == header.message_id
    assert record.status is AgentState.COMPLETED and record.delivery_count == 1
    assert record.result is not None and record.result.content == "bare"
    pending = await redis.xpending(stream, settings.consumer_group)
    assert pending["pending"] == 0


async def test_a_sharded_agent_type_spreads_its_commands_and_runs_them_all(
    redis: Redis, settings: Settings
) -> None:
    """``agent_type_shards``: a session's commands go to one of the agent type's streams (one hash
    slot each), and its workers read every shard; the fleet view counts them all as one queue."""
    sharded = settings.model_copy(update={"agent_type_shards": {"echo": 3}})
    keys = KeySpace(sharded.key_prefix, sharded.agent_type_shards)
    client = GatewayClient(redis, settings=sharded)
    try:
        async with (
            running_worker(EchoAgent(), sharded, worker_id="echo-a", max_concurrency=4),
            running_worker(EchoAgent(), sharded, worker_id="echo-b", max_concurrency=4),
        ):
            sends = [
                await client.send_message("echo", f"s-shard-{i}", {"sleep": 0.05, "i": i})
                for i in range(30)
            ]
            results = await wait_all(client, sends)
            snapshot = await client.engine.fleet.snapshot()
        records = [await client.get_task(sent.message_id) for sent in sends]
    finally:
        await client.aclose()
    assert [result.status for result in results] == [AgentState.COMPLETED] * 30
    assert {record.worker_id for record in records if record is not None} == {"echo-a", "echo-b"}
    streams = keys.agent_type_streams("echo")
    assert len(set(streams)) == 3
    for stream in streams:  # each shard delivered some (trimmed since, once consumed)
        (group,) = await redis.xinfo_groups(stream)
        assert group["last-delivered-id"] != b"0-0", stream
    (queue,) = [queue for queue in snapshot.queues if queue.agent_type == "echo"]
    assert queue.pending == 0
    major = int((await redis.info("server"))["redis_version"].split(".")[0])
    assert queue.queued == (0 if major >= 7 else None)  # Redis 6.2 has no group lag
