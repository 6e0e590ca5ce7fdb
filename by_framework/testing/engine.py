"""The conformance suite of the ``Engine`` port: every engine runs these same tests.

They drive an engine only through its ports (``by_framework.ports``), as the worker and the
client do, and cover the task state machine: queued -> running -> completed / failed /
cancelled, hand-back, reclaim after a lapsed lease, waiting_user -> resume, cancel of queued,
running and waiting tasks, journal replay, groups, dead letters, retention, and scheduled runs
(each tick taken by one caller, taken over with its tick when a lease runs out).

A backend's test module subclasses ``EngineConformance`` and provides an ``engine_factory``
fixture: a callable that takes ``Settings`` fields as keywords (``key_prefix``, ``record_ttl``,
``max_deliveries``, ...) and returns an engine on them, not started. The suite gives every test
a key prefix of its own and may make several engines on one prefix (two processes); the fixture
removes what was written under the prefixes it saw::

    class TestMyEngine(EngineConformance):
        @pytest.fixture
        def engine_factory(self):
            prefixes = set()

            def make(**fields):
                prefixes.add(fields["key_prefix"])
                return MyEngine(Settings.resolve(my_store_url=URL, **fields))

            yield make
            delete_everything_under(prefixes)

Needs pytest and pytest-asyncio.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any, Protocol

import pytest

from by_framework.errors import (
    NoOnlineWorkerError,
    ReplayDivergedError,
    TaskCancelledError,
    TaskNotWaitingError,
)
from by_framework.ports import Delivery, Engine, FinalEvents, ReloadAck, SubCall, Verdict
from by_framework.protocol import (
    AgentState,
    AgentTaskResult,
    AskAgentCommand,
    MessageHeader,
    ResumeCommand,
    SessionEvent,
    StateChangeEvent,
    TaskEndEvent,
    TaskResultEvent,
    decode_command,
    encode_command,
    encode_event,
)
from by_framework.protocol.ids import sub_call_id
from by_framework.protocol.records import TaskRecord
from by_framework.protocol.schedules import Schedule, ScheduleState

AGENT = "conformance-agent"
CHILD_AGENT = "conformance-child"
LONG_TTL = 60.0  # a worker's lease that does not lapse within a test
SHORT_TTL = 1.0  # one that does, once its worker stops renewing it
WAIT = 5.0  # the longest a test waits for something to happen


class EngineFactory(Protocol):
    def __call__(self, **fields: Any) -> Engine: ...


class Bench:
    """One test's engines on one key prefix, and the steps a worker and a client take on them."""

    def __init__(self, make: Callable[..., Awaitable[Engine]], engine: Engine) -> None:
        self._make = make
        self.engine = engine
        self.tokens: dict[str, str] = {}

    async def another_engine(self, **fields: Any) -> Engine:
        """Another engine on the same data (another process), with these settings fields."""
        return await self._make(**fields)

    async def use(self, **fields: Any) -> None:
        """Act through an engine with these settings fields from now on (the test's first
        step: the data stays where it is)."""
        self.engine = await self._make(**fields)

    async def online(
        self, worker_id: str, agent_types: Sequence[str] = (AGENT,), ttl: float = LONG_TTL
    ) -> None:
        """Register a worker (its lease lasts ``ttl`` unless renewed) and prepare its streams."""
        registry = self.engine.registry
        token = await registry.acquire(worker_id, ttl)
        assert token is not None, f"the worker id {worker_id} is free"
        await registry.register(worker_id, agent_types, token, ttl)
        self.tokens[worker_id] = token
        control = self.engine.control
        streams = control.streams(agent_types, worker_id)
        await control.prepare([*streams, control.notice_stream(worker_id)])

    async def lapse(self, worker_id: str) -> None:
        """Wait until the worker's lease ran out (it stopped renewing it: it died)."""
        await until(lambda: _not(self.engine.registry.is_online(worker_id)), "the lease lapses")

    async def send(
        self, session_id: str, content: Any = "hello", agent_type: str = AGENT
    ) -> MessageHeader:
        header = MessageHeader(
            message_id=self.engine.tasks.new_message_id(session_id),
            session_id=session_id,
            target_agent_type=agent_type,
        )
        command = AskAgentCommand(content=content)
        await self.engine.control.send(header, encode_command(header, command), None)
        return header

    def streams(self, worker_id: str, agent_types: Sequence[str] = (AGENT,)) -> list[str]:
        return self.engine.control.streams(agent_types, worker_id)

    async def take(
        self, worker_id: str, agent_types: Sequence[str] = (AGENT,), count: int = 1
    ) -> list[tuple[Delivery, MessageHeader]]:
        """The next ``count`` new entries for the worker, with their headers."""
        fetcher = self.engine.control.fetcher(self.streams(worker_id, agent_types), worker_id)
        taken: list[tuple[Delivery, MessageHeader]] = []
        deadline = time.monotonic() + WAIT
        try:
            while len(taken) < count and time.monotonic() < deadline:
                for delivery in await fetcher.fetch(count - len(taken), 200, own_pending=False):
                    taken.append((delivery, decode_command(delivery.fields).header))
        finally:
            await fetcher.aclose()
        assert len(taken) == count, f"{worker_id} took {len(taken)} of {count} entries"
        return taken

    async def started(self, worker_id: str) -> tuple[MessageHeader, Delivery]:
        """A task sent to session "s1", taken and begun by the worker: running there."""
        header = await self.send("s1")
        delivery, _ = await self.take_one(worker_id)
        assert (await self.begin(delivery, header, worker_id)).action == "run"
        return header, delivery

    async def take_one(
        self, worker_id: str, agent_types: Sequence[str] = (AGENT,)
    ) -> tuple[Delivery, MessageHeader]:
        (taken,) = await self.take(worker_id, agent_types)
        return taken

    async def begin(self, delivery: Delivery, header: MessageHeader, worker_id: str) -> Verdict:
        """As a worker begins: with the send id the command carries."""
        running = encode_event(
            header.message_id, header.target_agent_type, 0, StateChangeEvent(state="running")
        )
        send_id = decode_command(delivery.fields).send_id or ""
        return await self.engine.control.begin(delivery, header, worker_id, running, 0, send_id)

    async def finish(
        self,
        delivery: Delivery,
        header: MessageHeader,
        worker_id: str,
        status: AgentState = AgentState.COMPLETED,
        content: Any = "done",
        error: str | None = None,
    ) -> bool:
        result = AgentTaskResult(status=status, content=content, error=error)
        return await self.engine.control.finish(
            delivery, header, worker_id, result, final_events(header, result)
        )

    async def record(self, message_id: str) -> TaskRecord:
        record = await self.engine.tasks.get(message_id)
        assert record is not None, f"task {message_id} has a record"
        return record

    async def events(self, session_id: str) -> list[SessionEvent]:
        """Every event of the session so far (up to its last id, read first)."""
        end = await self.engine.events.last_id(session_id)
        reader = self.engine.events.reader(session_id)
        found: list[SessionEvent] = []
        after = "0-0"
        try:
            while after != end:
                batch = await reader.read(after, 1000, 100)
                events = [event for event in batch if isinstance(event, SessionEvent)]
                if not events:
                    break  # nothing more: the stream expired meanwhile
                found.extend(events)
                after = events[-1].stream_id
        finally:
            await reader.aclose()
        return found

    async def notices(self, worker_id: str) -> list[str]:
        """The wake-ups on the worker's notice stream not read yet."""
        stream = self.engine.control.notice_stream(worker_id)
        fetcher = self.engine.control.fetcher([stream], worker_id)
        try:
            found = await fetcher.fetch(100, 200, own_pending=False)
        finally:
            await fetcher.aclose()
        return [delivery.notice for delivery in found if delivery.notice is not None]


def final_events(header: MessageHeader, result: AgentTaskResult) -> FinalEvents:
    """What a worker ends a run with (the runner encodes the same events)."""
    agent = header.target_agent_type
    state = None
    if result.status is AgentState.CANCELLED:
        state = encode_event(
            header.message_id, agent, 1, StateChangeEvent(state="cancelled", detail=result.error)
        )
    return FinalEvents(
        result=encode_event(header.message_id, agent, 2, TaskResultEvent(result=result)),
        end=encode_event(header.message_id, agent, 3, TaskEndEvent(status=result.status)),
        state=state,
    )


def sub_call(parent: MessageHeader, number: int, group_id: str | None = None) -> SubCall:
    """The ``number``-th sub-call of the parent's first run, as the worker makes it."""
    header = MessageHeader(
        message_id=sub_call_id(parent.message_id, 0, number),
        session_id=parent.session_id,
        trace_id=parent.trace_id,
        source_agent_type=parent.target_agent_type,
        target_agent_type=CHILD_AGENT,
        parent_message_id=parent.message_id,
        task_group_id=group_id,
    )
    command = AskAgentCommand(content=f"part {number}", wait_for_reply=True)
    return SubCall(header, encode_command(header, command), wait_for_reply=True)


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not await check():
        assert time.monotonic() < deadline, f"waited {WAIT:g}s for {what}"
        await asyncio.sleep(0.05)


async def _not(value: Awaitable[bool]) -> bool:
    return not await value


def statuses(events: Sequence[SessionEvent]) -> list[str]:
    """The session's events as short labels: ``state:running``, ``result:completed``, ``end``."""
    labels = []
    for item in events:
        event = item.event
        if isinstance(event, StateChangeEvent):
            labels.append(f"state:{event.state}")
        elif isinstance(event, TaskResultEvent):
            labels.append(f"result:{event.result.status.value}")
        elif isinstance(event, TaskEndEvent):
            labels.append("end")
    return labels


class EngineConformance:
    """The tests every ``Engine`` passes; subclass it and provide ``engine_factory``."""

    @pytest.fixture
    def engine_factory(self) -> EngineFactory:
        raise NotImplementedError("a backend's test class provides the engine_factory fixture")

    @pytest.fixture
    async def bench(self, engine_factory: EngineFactory) -> AsyncIterator[Bench]:
        prefix = f"conformance-{uuid.uuid4().hex[:12]}"
        async with AsyncExitStack() as stack:

            async def make(**fields: Any) -> Engine:
                engine = engine_factory(key_prefix=prefix, **fields)
                stack.push_async_callback(engine.aclose)
                await engine.start()
                return engine

            yield Bench(make, await make())

    # Queued -> running -> each end

    async def test_a_sent_task_is_queued_and_found_by_its_session(self, bench: Bench) -> None:
        await bench.online("w1")
        header = await bench.send("s1")
        record = await bench.record(header.message_id)
        assert (record.status, record.session_id, record.agent_type) == (
            AgentState.QUEUED,
            "s1",
            AGENT,
        )
        assert await bench.engine.tasks.session_of(header.message_id) == "s1"
        listed = await bench.engine.tasks.list_session("s1")
        assert [r.message_id for r in listed] == [header.message_id]
        assert await bench.engine.tasks.get("no-such-task") is None
        assert await bench.engine.tasks.session_of("no-such-task") is None

    async def test_new_message_ids_are_hex_and_distinct(self, bench: Bench) -> None:
        ids = {bench.engine.tasks.new_message_id(f"s{n % 3}") for n in range(1000)}
        assert len(ids) == 1000
        assert all(len(i) == 32 and set(i) <= set("0123456789abcdef") for i in ids)

    async def test_a_send_with_no_online_worker_is_refused_and_writes_nothing(
        self, bench: Bench
    ) -> None:
        header = MessageHeader(session_id="s1", target_agent_type=AGENT)
        envelope = encode_command(header, AskAgentCommand(content="x"))
        with pytest.raises(NoOnlineWorkerError):
            await bench.engine.control.send(header, envelope, None)
        with pytest.raises(NoOnlineWorkerError):
            await bench.engine.control.send(header, envelope, "nobody")
        assert await bench.engine.tasks.get(header.message_id) is None

    async def test_a_message_id_is_sent_once(self, bench: Bench) -> None:
        """A second command under a taken id is refused, and never runs: a send made soon after
        a worker was seen online delivers the command with its record's claim, and a worker
        then skips it (another send's record). The record's own command still runs."""
        await bench.online("w1")
        header = await bench.send("s1")
        other = encode_command(header, AskAgentCommand(content="another"))
        for _ in range(2):  # each within a second of the first send's online check
            with pytest.raises(ValueError, match="already used"):
                await bench.engine.control.send(header, other, None)
        first, *others = await bench.take("w1", count=3)
        assert decode_command(first[0].fields).command == AskAgentCommand(content="hello")
        for delivery, _ in others:  # the two refused sends' commands
            assert await bench.begin(delivery, header, "w1") == Verdict(
                "skip", "another command has this message id"
            )
        assert await bench.begin(first[0], header, "w1") == Verdict("run", "0")
        assert (await bench.record(header.message_id)).status is AgentState.RUNNING

    async def test_a_task_sent_to_one_worker_reaches_that_worker(self, bench: Bench) -> None:
        await bench.online("w1")
        await bench.online("w2")
        header = MessageHeader(session_id="s1", target_agent_type=AGENT)
        envelope = encode_command(header, AskAgentCommand())
        await bench.engine.control.send(header, envelope, "w2")
        delivery, taken = await bench.take_one("w2")
        assert taken.message_id == header.message_id
        assert delivery.stream == bench.streams("w2")[-1]  # the worker's own stream

    @pytest.mark.parametrize(
        "status", [AgentState.COMPLETED, AgentState.FAILED, AgentState.CANCELLED]
    )
    async def test_a_run_ends(self, bench: Bench, status: AgentState) -> None:
        await bench.online("w1")
        header = await bench.send("s1")
        delivery, _ = await bench.take_one("w1")
        assert await bench.begin(delivery, header, "w1") == Verdict("run", "0")
        running = await bench.record(header.message_id)
        assert (running.status, running.worker_id, running.delivery_count) == (
            AgentState.RUNNING,
            "w1",
            1,
        )
        error = None if status is AgentState.COMPLETED else "it went wrong"
        assert await bench.finish(delivery, header, "w1", status, "the answer", error)
        record = await bench.record(header.message_id)
        assert record.status is status
        assert record.result is not None and record.result.content == "the answer"
        assert record.error == error
        assert [state for state, _ in record.timeline] == [AgentState.QUEUED, AgentState.RUNNING,
                                                           status]  # fmt: skip
        expected = ["state:running", f"result:{status.value}", "end"]
        if status is AgentState.CANCELLED:
            expected.insert(1, "state:cancelled")
        assert statuses(await bench.events("s1")) == expected
        assert await bench.engine.control.pending_of(bench.streams("w1"), "w1") == []

    async def test_the_wait_point_is_the_newest_event_then_the_record(self, bench: Bench) -> None:
        await bench.online("w1")
        header = await bench.send("s1")
        tasks = bench.engine.tasks
        after, queued = await tasks.wait_point("s1", header.message_id)
        assert (after, queued and queued.status) == ("0-0", AgentState.QUEUED)
        delivery, _ = await bench.take_one("w1")
        await bench.begin(delivery, header, "w1")
        after, running = await tasks.wait_point("s1", header.message_id)
        assert after == (await bench.events("s1"))[-1].stream_id
        assert running is not None and running.status is AgentState.RUNNING
        await bench.finish(delivery, header, "w1", content="the answer")
        after, ended = await tasks.wait_point("s1", header.message_id)
        assert after == (await bench.events("s1"))[-1].stream_id
        assert ended is not None and ended.result is not None
        assert (ended.status, ended.result.content) == (AgentState.COMPLETED, "the answer")
        assert await tasks.wait_point("s1", "no-such-task") == (after, None)
        assert await tasks.wait_point("s-none", header.message_id) == ("0-0", None)

    async def test_an_ended_task_is_not_run_again(self, bench: Bench) -> None:
        await bench.online("w1")
        header, delivery = await bench.started("w1")
        assert await bench.finish(delivery, header, "w1")
        verdict = await bench.begin(delivery, header, "w1")  # a duplicate delivery
        assert verdict.action == "skip"
        assert (await bench.record(header.message_id)).status is AgentState.COMPLETED

    async def test_a_finish_retried_after_a_lost_reply_is_acknowledged(self, bench: Bench) -> None:
        await bench.online("w1")
        for status, error in ((AgentState.COMPLETED, None), (AgentState.FAILED, "it broke")):
            header, delivery = await bench.started("w1")
            assert await bench.finish(delivery, header, "w1", status, error=error)
            assert await bench.finish(delivery, header, "w1", status, error=error)  # the retry
            record = await bench.record(header.message_id)
            assert (record.status, record.error) == (status, error)

    async def test_only_the_holder_finishes_a_task(self, bench: Bench) -> None:
        await bench.online("w1")
        await bench.online("w2")
        header, delivery = await bench.started("w1")
        assert not await bench.finish(delivery, header, "w2")
        assert (await bench.record(header.message_id)).status is AgentState.RUNNING
        assert await bench.finish(delivery, header, "w1")

    async def test_two_engines_share_the_tasks(self, bench: Bench) -> None:
        other = await bench.another_engine()
        await bench.online("w1")
        header, _ = await bench.started("w1")
        record = await other.tasks.get(header.message_id)
        assert record is not None and record.status is AgentState.RUNNING

    # Hand-back and reclaim

    async def test_a_handed_back_task_runs_on_another_worker(self, bench: Bench) -> None:
        await bench.online("w1")
        await bench.online("w2")
        header, delivery = await bench.started("w1")
        await bench.engine.control.hand_back(delivery, header, "w1")
        assert (await bench.record(header.message_id)).status is AgentState.QUEUED
        assert await bench.engine.control.pending_of(bench.streams("w1"), "w1") == []
        again, _ = await bench.take_one("w2")
        assert await bench.begin(again, header, "w2") == Verdict("run", "0")
        record = await bench.record(header.message_id)
        assert (record.worker_id, record.delivery_count) == ("w2", 1)  # a hand-back is free
        assert await bench.finish(again, header, "w2")

    async def test_a_crashed_run_handed_back_counts_as_a_delivery(self, bench: Bench) -> None:
        await bench.online("w1")
        header, delivery = await bench.started("w1")
        await bench.engine.control.hand_back(delivery, header, "w1", crashed=True)
        again, _ = await bench.take_one("w1")
        await bench.begin(again, header, "w1")
        assert (await bench.record(header.message_id)).delivery_count == 2

    async def test_a_dead_workers_task_is_reclaimed_and_run_again(self, bench: Bench) -> None:
        await bench.online("w1", ttl=SHORT_TTL)
        await bench.online("w2")
        header, delivery = await bench.started("w1")
        await bench.lapse("w1")  # w1 died: it renews neither its lease nor its entries
        control = bench.engine.control
        (reclaimed,) = await control.reclaim(bench.streams("w2"), "w2", 100, 10)
        assert reclaimed.entry_id == delivery.entry_id
        assert await bench.begin(reclaimed, header, "w2") == Verdict("run", "0")
        record = await bench.record(header.message_id)
        assert (record.worker_id, record.delivery_count) == ("w2", 2)
        assert not await bench.finish(delivery, header, "w1")  # the old holder comes back late
        assert await bench.finish(reclaimed, header, "w2")
        assert await control.pending_of(bench.streams("w1"), "w1") == []

    async def test_a_renewed_lease_is_not_reclaimed(self, bench: Bench) -> None:
        await bench.online("w1")
        await bench.online("w2")
        _, delivery = await bench.started("w1")
        control = bench.engine.control
        await asyncio.sleep(0.6)
        await control.renew({delivery.stream: [delivery.entry_id]}, "w1")
        assert await control.reclaim(bench.streams("w2"), "w2", 500, 10) == []
        pending = await control.pending_of(bench.streams("w1"), "w1")
        assert [d.entry_id for d in pending] == [delivery.entry_id]

    async def test_a_task_reclaimed_from_a_live_holder_goes_back_to_it(self, bench: Bench) -> None:
        await bench.online("w1")
        await bench.online("w2")
        header, delivery = await bench.started("w1")
        await asyncio.sleep(0.3)  # w1 blocked a while without renewing, but it lives
        control = bench.engine.control
        (reclaimed,) = await control.reclaim(bench.streams("w2"), "w2", 100, 10)
        assert await bench.begin(reclaimed, header, "w2") == Verdict("give_back", "w1")
        await control.give_back(reclaimed, "w1")
        pending = await control.pending_of(bench.streams("w1"), "w1")
        assert [d.entry_id for d in pending] == [delivery.entry_id]
        assert (await bench.record(header.message_id)).worker_id == "w1"
        assert await bench.finish(delivery, header, "w1")

    # Waiting for the user, and resume

    async def test_a_task_waiting_for_the_user_resumes_once(self, bench: Bench) -> None:
        await bench.online("w1")
        header, delivery = await bench.started("w1")
        assert await bench.finish(delivery, header, "w1", AgentState.WAITING_USER, "which one?")
        assert (await bench.record(header.message_id)).status is AgentState.WAITING_USER
        orchestration = bench.engine.orchestration
        resume = encode_command(header, ResumeCommand(content="the second"))
        await orchestration.resume(header, resume)
        record = await bench.record(header.message_id)
        assert (record.status, record.run) == (AgentState.QUEUED, 1)
        with pytest.raises(TaskNotWaitingError):
            await orchestration.resume(header, resume)  # answered already
        again, taken = await bench.take_one("w1")
        assert taken.message_id == header.message_id
        assert decode_command(again.fields).command == ResumeCommand(content="the second")
        assert await bench.begin(again, header, "w1") == Verdict("run", "1")
        assert await bench.finish(again, header, "w1")
        assert (await bench.record(header.message_id)).status is AgentState.COMPLETED

    async def test_only_a_waiting_task_resumes(self, bench: Bench) -> None:
        await bench.online("w1")
        header = await bench.send("s1")
        resume = encode_command(header, ResumeCommand(content="too early"))
        with pytest.raises(TaskNotWaitingError):
            await bench.engine.orchestration.resume(header, resume)
        unknown = MessageHeader(session_id="s1", target_agent_type=AGENT)
        with pytest.raises(TaskNotWaitingError):
            await bench.engine.orchestration.resume(unknown, resume)
        assert (await bench.record(header.message_id)).status is AgentState.QUEUED

    # Cancel

    async def test_a_cancelled_queued_task_is_skipped(self, bench: Bench) -> None:
        await bench.online("w1")
        header = await bench.send("s1")
        report = await bench.engine.orchestration.cancel_tree("s1", [header.message_id], "no")
        assert (report.cancelled, report.stopping) == (1, {})
        record = await bench.record(header.message_id)
        assert (record.status, record.error) == (AgentState.CANCELLED, "no")
        delivery, _ = await bench.take_one("w1")
        assert (await bench.begin(delivery, header, "w1")).action == "skip"
        assert statuses(await bench.events("s1")) == [
            "state:cancelled",
            "result:cancelled",
            "end",
        ]

    async def test_a_running_task_is_cancelled_by_its_worker(self, bench: Bench) -> None:
        await bench.online("w1")
        header, delivery = await bench.started("w1")
        report = await bench.engine.orchestration.cancel_tree("s1", [header.message_id], "stop")
        assert (report.cancelled, report.stopping) == (0, {header.message_id: "w1"})
        assert (await bench.record(header.message_id)).status is AgentState.RUNNING
        assert await bench.finish(delivery, header, "w1", AgentState.CANCELLED, None, "stop")
        assert (await bench.record(header.message_id)).status is AgentState.CANCELLED

    async def test_a_cancelled_task_may_not_dispatch_and_learns_the_cancels_reason(
        self, bench: Bench
    ) -> None:
        await bench.online("w1")
        await bench.online("w2", [CHILD_AGENT])
        header, delivery = await bench.started("w1")
        orchestration = bench.engine.orchestration
        await orchestration.cancel_tree("s1", [header.message_id], "enough")
        with pytest.raises(TaskCancelledError, match=r"cancelled \(enough\)") as refused:
            await orchestration.dispatch(header, [sub_call(header, 0)], None)
        assert refused.value.reason == "enough"
        assert (await bench.record(header.message_id)).children == []
        assert await bench.finish(delivery, header, "w1", AgentState.CANCELLED, None, "enough")
        ended, ended_delivery = await bench.started("w1")
        assert await bench.finish(ended_delivery, ended, "w1")
        with pytest.raises(TaskCancelledError, match="sub-calls: completed") as refused:
            await orchestration.dispatch(ended, [sub_call(ended, 0)], None)
        assert refused.value.reason is None

    async def test_a_running_task_of_a_dead_worker_is_cancelled_at_once(self, bench: Bench) -> None:
        await bench.online("w1", ttl=SHORT_TTL)
        await bench.online("w2")
        header, _ = await bench.started("w1")
        await bench.lapse("w1")
        report = await bench.engine.orchestration.cancel_tree("s1", [header.message_id], "stop")
        assert (report.cancelled, report.stopping) == (1, {})
        assert (await bench.record(header.message_id)).status is AgentState.CANCELLED

    async def test_a_running_task_its_worker_holds_no_run_of_is_cancelled_at_once(
        self, bench: Bench
    ) -> None:
        await bench.online("w1")
        header, delivery = await bench.started("w1")
        await bench.engine.control.acknowledge(delivery)  # its end lost, the ack kept
        orchestration = bench.engine.orchestration
        report = await orchestration.cancel_tree("s1", [header.message_id], "stuck", ["w1"])
        assert (report.cancelled, report.stopping) == (1, {})
        record = await bench.record(header.message_id)
        assert (record.status, record.error) == (AgentState.CANCELLED, "stuck")
        assert statuses(await bench.events("s1"))[-3:] == [
            "state:cancelled",
            "result:cancelled",
            "end",
        ]

    async def test_a_task_waiting_for_the_user_is_cancelled_at_once(self, bench: Bench) -> None:
        await bench.online("w1")
        header, delivery = await bench.started("w1")
        await bench.finish(delivery, header, "w1", AgentState.WAITING_USER, "which one?")
        report = await bench.engine.orchestration.cancel_tree("s1", [header.message_id], "gone")
        assert (report.cancelled, report.stopping) == (1, {})
        assert (await bench.record(header.message_id)).status is AgentState.CANCELLED
        resume = encode_command(header, ResumeCommand(content="too late"))
        with pytest.raises(TaskNotWaitingError):
            await bench.engine.orchestration.resume(header, resume)

    async def test_a_cancel_walks_the_task_tree(self, bench: Bench) -> None:
        await bench.online("w1", [AGENT, CHILD_AGENT])
        parent = await bench.send("s1")
        delivery, _ = await bench.take_one("w1")
        await bench.begin(delivery, parent, "w1")
        calls = [sub_call(parent, 0), sub_call(parent, 1)]
        for call in calls:  # call_agent sends one call at a time
            assert await bench.engine.orchestration.dispatch(parent, [call], None)
        report = await bench.engine.orchestration.cancel_tree("s1", [parent.message_id], "all")
        assert (report.cancelled, report.stopping) == (2, {parent.message_id: "w1"})
        for call in calls:
            child = await bench.record(call.header.message_id)
            assert child.status is AgentState.CANCELLED

    # Sub-calls: the journal, replay, groups

    async def test_a_sub_call_goes_out_once_and_its_result_wakes_the_parent(
        self, bench: Bench
    ) -> None:
        await bench.online("w1")
        await bench.online("w2", [CHILD_AGENT])
        parent = await bench.send("s1")
        delivery, _ = await bench.take_one("w1")
        await bench.begin(delivery, parent, "w1")
        orchestration = bench.engine.orchestration
        call = sub_call(parent, 0)
        child_id = call.header.message_id
        assert await orchestration.dispatch(parent, [call], None)
        assert await orchestration.set_waiting(parent, "w1", True, _state(parent, "waiting"))
        assert (await bench.record(parent.message_id)).status is AgentState.WAITING_REPLY
        assert (await bench.record(parent.message_id)).children == [child_id]
        child = await bench.record(child_id)
        assert (child.status, child.parent_message_id) == (AgentState.QUEUED, parent.message_id)
        assert await orchestration.results("s1", [child_id]) == {child_id: None}
        child_delivery, taken = await bench.take_one("w2", [CHILD_AGENT])
        assert taken.message_id == child_id
        await bench.begin(child_delivery, taken, "w2")
        assert await bench.finish(child_delivery, taken, "w2", content="part done")
        assert await bench.notices("w1") == [child_id]
        result = (await orchestration.results("s1", [child_id]))[child_id]
        assert result is not None and result.content == "part done"

    async def test_a_re_run_parent_sees_its_journal_and_runs_no_child_twice(
        self, bench: Bench
    ) -> None:
        await bench.online("w1", ttl=SHORT_TTL)
        await bench.online("w2", [AGENT, CHILD_AGENT])
        parent = await bench.send("s1")
        delivery, _ = await bench.take_one("w1")
        await bench.begin(delivery, parent, "w1")
        orchestration = bench.engine.orchestration
        calls = [sub_call(parent, 0), sub_call(parent, 1)]
        for call in calls:
            assert await orchestration.dispatch(parent, [call], None)
        first, taken = await bench.take_one("w2", [CHILD_AGENT])
        await bench.begin(first, taken, "w2")
        await bench.finish(first, taken, "w2", content="first part")
        await bench.lapse("w1")  # the parent's worker dies mid-run
        (reclaimed,) = await bench.engine.control.reclaim(bench.streams("w2"), "w2", 100, 10)
        assert await bench.begin(reclaimed, parent, "w2") == Verdict("run", "0")
        for call in calls:  # journaled: not sent again
            assert not await orchestration.dispatch(parent, [call], None)
        ids = [call.header.message_id for call in calls]
        results = await orchestration.results("s1", ids)
        done = results[taken.message_id]
        assert done is not None and done.content == "first part"
        assert [message_id for message_id, r in results.items() if r is None] == [
            i for i in ids if i != taken.message_id
        ]
        (second, other) = await bench.take_one("w2", [CHILD_AGENT])  # the other child
        assert other.message_id in ids and other.message_id != taken.message_id
        assert await bench.begin(second, other, "w2") == Verdict("run", "0")
        fetcher = bench.engine.control.fetcher(bench.streams("w2", [CHILD_AGENT]), "w2")
        try:
            again = await fetcher.fetch(10, 200, own_pending=False)
        finally:
            await fetcher.aclose()
        # A child still queued when its parent re-ran may be delivered once more (the re-run
        # cannot tell an entry not read yet from one never added): it still runs once.
        for extra in again:
            assert decode_command(extra.fields).header.message_id == other.message_id
            assert (await bench.begin(extra, other, "w2")).action == "skip"

    async def test_a_re_run_that_calls_differently_is_refused(self, bench: Bench) -> None:
        await bench.online("w1", [AGENT, CHILD_AGENT])
        parent = await bench.send("s1")
        delivery, _ = await bench.take_one("w1")
        await bench.begin(delivery, parent, "w1")
        orchestration = bench.engine.orchestration
        assert await orchestration.dispatch(parent, [sub_call(parent, 0)], None)
        other = sub_call(parent, 0)
        header = other.header.model_copy(update={"target_agent_type": AGENT})
        changed = SubCall(header, encode_command(header, AskAgentCommand()), True)
        with pytest.raises(ReplayDivergedError):
            await orchestration.dispatch(parent, [changed], None)

    async def test_a_group_counts_down_and_wakes_its_parent_once(self, bench: Bench) -> None:
        await bench.online("w1")
        await bench.online("w2", [CHILD_AGENT])
        parent = await bench.send("s1")
        delivery, _ = await bench.take_one("w1")
        await bench.begin(delivery, parent, "w1")
        orchestration = bench.engine.orchestration
        group_id = sub_call_id(parent.message_id, 0, 0, kind="group")
        calls = [sub_call(parent, n, group_id) for n in range(3)]
        ids = [call.header.message_id for call in calls]
        assert await orchestration.dispatch(parent, calls, group_id)
        assert not await orchestration.dispatch(parent, calls, group_id)
        assert await orchestration.group("s1", group_id) == (ids, 3)
        assert await orchestration.group("s1", "no-such-group") is None
        await orchestration.set_waiting(parent, "w1", True, _state(parent, "waiting"))
        taken = await bench.take("w2", [CHILD_AGENT], count=3)
        for left, (child_delivery, child) in zip((2, 1, 0), taken, strict=True):
            await bench.begin(child_delivery, child, "w2")
            assert await bench.finish(child_delivery, child, "w2", content=child.message_id)
            assert await orchestration.group("s1", group_id) == (ids, left)
            assert await bench.notices("w1") == ([group_id] if left == 0 else [])
        results = await orchestration.results("s1", ids)
        assert {i: r.content if r is not None else None for i, r in results.items()} == {
            i: i for i in ids
        }

    # Dead letters

    @staticmethod
    async def _given_up(bench: Bench, reason: str) -> tuple[MessageHeader, Delivery, Delivery]:
        """A task of one delivery whose worker died running it, given up on by the worker that
        reclaimed it: its header, its first delivery and the reclaimed one."""
        await bench.use(max_deliveries=1)
        await bench.online("w1", ttl=SHORT_TTL)
        await bench.online("w2")
        header, delivery = await bench.started("w1")
        await bench.lapse("w1")
        control = bench.engine.control
        (reclaimed,) = await control.reclaim(bench.streams("w2"), "w2", 100, 10)
        assert await bench.begin(reclaimed, header, "w2") == Verdict("give_up", "1")
        result = AgentTaskResult(status=AgentState.FAILED, error=reason)
        await control.give_up(reclaimed, header, reason, final_events(header, result))
        return header, delivery, reclaimed

    async def test_a_task_out_of_deliveries_is_dead_lettered(self, bench: Bench) -> None:
        reason = "gave up after 1 delivery"
        header, delivery, _ = await self._given_up(bench, reason)
        control = bench.engine.control
        record = await bench.record(header.message_id)
        assert (record.status, record.error) == (AgentState.FAILED, reason)
        assert await control.pending_of(bench.streams("w2"), "w2") == []
        dead_letters = (await bench.another_engine()).dead_letters  # an operator's
        (letter,) = await dead_letters.list()
        assert (letter.reason, letter.message_id, letter.stream) == (
            reason,
            header.message_id,
            delivery.stream,
        )
        assert await dead_letters.get(letter.id) == letter
        assert await dead_letters.get("0-1") is None

    async def test_a_dead_letter_replays_and_purges(self, bench: Bench) -> None:
        header, delivery, _ = await self._given_up(bench, "out")
        control = bench.engine.control
        dead_letters = bench.engine.dead_letters
        (letter,) = await dead_letters.list()
        entry_id = await dead_letters.replay(letter.id)
        assert await dead_letters.list() == []
        again, taken = await bench.take_one("w2")
        assert (again.entry_id, taken.message_id) == (entry_id, header.message_id)
        assert await bench.begin(again, header, "w2") == Verdict("run", "0")  # fresh deliveries
        assert await bench.finish(again, header, "w2")
        reason, session = "unreadable entry", "s1"
        await control.reject(Delivery(delivery.stream, "1-1", {b"x": b"y"}), reason, None, None)
        await control.reject(Delivery(delivery.stream, "1-2", {b"x": b"z"}), reason, session, None)
        first, _ = await dead_letters.list()
        assert await dead_letters.purge(first.id) == 1
        assert await dead_letters.purge(first.id) == 0
        assert await dead_letters.purge() == 1
        assert await dead_letters.list() == []

    # Retention

    async def test_records_and_session_streams_expire(self, bench: Bench) -> None:
        await bench.use(record_ttl=2, data_stream_ttl=2)
        await bench.online("w1")
        header, delivery = await bench.started("w1")
        await bench.finish(delivery, header, "w1")
        assert await bench.events("s1")
        await until(lambda: _none(bench.engine.tasks.get(header.message_id)), "the record expires")
        # The task index, set a round trip after the record, may outlive it by that much.
        tasks = bench.engine.tasks
        await until(lambda: _none(tasks.session_of(header.message_id)), "the task index expires")
        assert await bench.engine.tasks.list_session("s1") == []
        await until(lambda: _empty(bench.events("s1")), "the session's events expire")

    async def test_consumed_control_entries_are_trimmed(self, bench: Bench) -> None:
        await bench.online("w1")
        headers = [await bench.send("s1", n) for n in range(3)]
        taken = await bench.take("w1", count=3)
        assert [h.message_id for _, h in taken] == [h.message_id for h in headers]
        for delivery, header in taken[:2]:
            await bench.begin(delivery, header, "w1")
            await bench.finish(delivery, header, "w1")
        control = bench.engine.control
        assert await control.trim(bench.streams("w1")) == 2
        assert await control.trim(bench.streams("w1")) == 0
        (pending,) = await control.pending_of(bench.streams("w1"), "w1")
        assert pending.entry_id == taken[2][0].entry_id
        assert decode_command(pending.fields).header.message_id == headers[2].message_id

    # Events, session owners, rate limits, plugin reload answers

    async def test_events_are_read_in_order_from_any_position(self, bench: Bench) -> None:
        events = bench.engine.events
        assert await events.last_id("s1") == "0-0"
        sent = [_state(MessageHeader(session_id="s1", target_agent_type=AGENT), f"step {n}")
                for n in range(3)]  # fmt: skip
        await events.append("s1", *sent)
        every = await bench.events("s1")
        assert [e.event for e in every] == [StateChangeEvent(state=f"step {n}") for n in range(3)]
        assert await events.last_id("s1") == every[-1].stream_id
        reader = events.reader("s1")
        try:
            rest = await reader.read(every[0].stream_id, 10, 100)
            assert [e.stream_id for e in rest if isinstance(e, SessionEvent)] == [
                e.stream_id for e in every[1:]
            ]
        finally:
            await reader.aclose()

    async def test_a_session_keeps_its_first_owner(self, bench: Bench) -> None:
        owners = bench.engine.owners
        assert await owners.owner("s1") is None
        assert await owners.claim("s1", "alice") == "alice"
        assert await owners.claim("s1", "bob") == "alice"
        assert await (await bench.another_engine()).owners.owner("s1") == "alice"

    async def test_a_session_turn_is_held_by_one_run_until_given_up_or_lapsed(
        self, bench: Bench
    ) -> None:
        turns, other = bench.engine.turns, (await bench.another_engine()).turns
        assert await turns.holder("s1", AGENT) is None
        assert await turns.take("s1", AGENT, "m1", 30) is None
        assert await other.take("s1", AGENT, "m2", 30) == "m1"  # taken: nothing changes
        assert await other.take("s1", AGENT, "m1", 30) is None  # its own: taken again
        assert await turns.take("s1", "another agent", "m2", 30) is None  # per agent type
        assert await turns.take("s2", AGENT, "m2", 30) is None  # per session
        assert await other.keep("s1", AGENT, "m1", 30)
        assert not await other.keep("s1", AGENT, "m2", 30)
        await turns.give_up("s1", AGENT, "m2")  # not its holder: nothing changes
        assert await turns.holder("s1", AGENT) == "m1"
        await turns.give_up("s1", AGENT, "m1")
        assert await turns.holder("s1", AGENT) is None
        assert await turns.take("s1", AGENT, "m3", 0.2) is None
        await asyncio.sleep(0.3)  # its run died: the lease lapses
        assert not await turns.keep("s1", AGENT, "m3", 30)
        assert await turns.take("s1", AGENT, "m4", 30) is None
        assert await turns.holder("s1", AGENT) == "m4"

    async def test_an_answer_is_taken_once_by_its_caller(self, bench: Bench) -> None:
        answers, other = bench.engine.answers, (await bench.another_engine()).answers
        assert await answers.take("r1", 0.2) is None  # none yet: waits, then gives up
        waiting = asyncio.create_task(answers.take("r1", WAIT))
        await asyncio.sleep(0.1)
        await other.put("r1", b'{"value": 1}', 30)
        assert await waiting == b'{"value": 1}'
        assert await answers.take("r1", 0.1) is None  # taken once
        await other.put("r2", b"late", 0.2)
        await asyncio.sleep(0.4)  # nobody took it: gone
        assert await answers.take("r2", 0.1) is None

    async def test_a_caller_past_its_burst_waits(self, bench: Bench) -> None:
        limiter = bench.engine.rate_limiter
        assert [await limiter.take("caller", 1.0, 2) for _ in range(2)] == [0, 0]
        assert 0 < await limiter.take("caller", 1.0, 2) <= 1.0
        assert await limiter.take("another caller", 1.0, 2) == 0

    async def test_reload_answers_are_collected(self, bench: Bench) -> None:
        store = bench.engine.plugin_store
        after = await store.last_answer_id()
        answer = ReloadAck("reload-1", "w1", "ok", version_before=1, version_after=2)
        await store.answer(ReloadAck("reload-0", "w2", "ok", 0, 1))
        await store.answer(answer)
        assert await store.answers("reload-1", after, {"w1"}, timeout=WAIT) == {"w1": answer}
        assert await store.answers("reload-1", after, {"w1", "w3"}, timeout=0.3) == {"w1": answer}

    # Scheduled runs

    async def test_a_due_schedule_is_taken_by_one_caller_until_settled(self, bench: Bench) -> None:
        store, other = bench.engine.schedules, (await bench.another_engine()).schedules
        now = time.time()
        assert await store.add(_schedule("sc-1"), now - 1)
        assert not await store.add(_schedule("sc-1"), now + 9)  # its id is taken: unchanged
        assert await store.add(_schedule("sc-later"), now + 3600)
        (taken,) = await store.take_due(now, 30, 10)
        assert (taken.schedule.schedule_id, taken.tick) == ("sc-1", _ms(now - 1))
        assert await other.take_due(now, 30, 10) == []  # held by the first caller
        listed = {s.schedule_id: s for s in await other.all()}
        assert (listed["sc-1"].pending_tick, listed["sc-1"].next_at) == (
            _ms(now - 1),
            _ms(now + 30),
        )
        assert (listed["sc-later"].pending_tick, listed["sc-later"].next_at) == (
            None,
            _ms(now + 3600),
        )
        state = ScheduleState(fired=1, last_message_id="m-1", last_fired_at=now)
        assert await store.settle(taken, now + 60, state, fired=True)
        (first, _) = await other.all()
        assert (first.pending_tick, first.next_at, first.state) == (None, _ms(now + 60), state)
        assert not await store.settle(taken, now + 60, state, fired=True)  # settled already

    async def test_a_take_whose_lease_ran_out_is_taken_over_with_its_tick(
        self, bench: Bench
    ) -> None:
        store, other = bench.engine.schedules, (await bench.another_engine()).schedules
        now = time.time()
        await store.add(_schedule("sc-1"), now - 5)
        (dead,) = await store.take_due(now, 0.2, 10)
        await asyncio.sleep(0.3)
        (alive,) = await other.take_due(time.time(), 30, 10)
        assert alive.tick == dead.tick == _ms(now - 5)  # the same tick, not the lease's time
        assert not await store.settle(dead, now + 60, ScheduleState(fired=1), fired=True)
        assert await other.settle(alive, now + 60, ScheduleState(fired=1), fired=True)
        (after,) = await store.all()
        assert after.state.fired == 1 and after.next_at == _ms(now + 60)

    async def test_a_tick_not_fired_keeps_its_tick_for_the_next_try(self, bench: Bench) -> None:
        store = bench.engine.schedules
        now = time.time()
        await store.add(_schedule("sc-1"), now - 5)
        (first,) = await store.take_due(now, 30, 10)
        waiting = ScheduleState(last_error="no online worker")
        assert await store.settle(first, now - 1, waiting, fired=False)
        (second,) = await store.take_due(now, 30, 10)
        assert second.tick == first.tick and second.schedule.state == waiting
        assert await store.settle(second, now + 60, ScheduleState(fired=1), fired=True)
        (third,) = await store.take_due(now + 61, 30, 10)
        assert third.tick == _ms(now + 60)  # the next tick

    async def test_done_and_removed_schedules_are_gone(self, bench: Bench) -> None:
        store = bench.engine.schedules
        now = time.time()
        await store.add(_schedule("sc-once"), now - 1)
        await store.add(_schedule("sc-removed"), now - 1)
        assert await store.remove("sc-removed")
        assert not await store.remove("sc-removed")
        (taken,) = await store.take_due(now, 30, 10)
        assert taken.schedule.schedule_id == "sc-once"
        assert await store.settle(taken, None, ScheduleState(fired=1), fired=True)
        assert await store.all() == []
        assert await store.take_due(now + 3600, 30, 10) == []

    async def test_take_due_takes_at_most_its_limit(self, bench: Bench) -> None:
        store = bench.engine.schedules
        now = time.time()
        for n in range(5):
            await store.add(_schedule(f"sc-{n}"), now - 10 + n)
        first = await store.take_due(now, 30, 3)
        assert [f.schedule.schedule_id for f in first] == ["sc-0", "sc-1", "sc-2"]  # soonest
        assert [f.schedule.schedule_id for f in await store.take_due(now, 30, 3)] == [
            "sc-3", "sc-4"
        ]  # fmt: skip

    # The registry

    async def test_a_worker_registers_heartbeats_and_leaves(self, bench: Bench) -> None:
        registry = bench.engine.registry
        await bench.online("w1", [AGENT, CHILD_AGENT])
        assert await registry.acquire("w1", LONG_TTL) is None  # another live process holds it
        assert await registry.is_online("w1")
        assert await registry.all_online() == ["w1"]
        assert await registry.agent_types_of("w1") == {AGENT, CHILD_AGENT}
        token = bench.tokens["w1"]
        assert await registry.heartbeat("w1", [AGENT, CHILD_AGENT], token, LONG_TTL)
        assert not await registry.heartbeat("w1", [AGENT], "not-the-token", LONG_TTL)
        await registry.deregister("w1", [AGENT, CHILD_AGENT], token)
        assert not await registry.is_online("w1")
        assert await registry.all_online() == []
        assert await registry.acquire("w1", LONG_TTL) is not None

    async def test_a_dead_worker_is_pruned(self, bench: Bench) -> None:
        await bench.online("w1", ttl=SHORT_TTL)
        await bench.online("w2")
        await bench.lapse("w1")
        assert await bench.engine.registry.prune([AGENT]) == 1
        assert await bench.engine.registry.all_online() == ["w2"]
        snapshot = await bench.engine.fleet.snapshot()
        assert {w.worker_id for w in snapshot.workers} == {"w2"}


def _schedule(schedule_id: str) -> Schedule:
    return Schedule(
        schedule_id=schedule_id,
        target_agent_type=AGENT,
        session_id="s1",
        content={"n": 1},
        cron="* * * * *",
        created_at=time.time(),
    )


def _ms(at: float) -> float:
    """A time as the store keeps it: to the millisecond."""
    return round(at * 1000) / 1000


def _state(header: MessageHeader, state: str) -> bytes:
    return encode_event(
        header.message_id, header.target_agent_type, 1, StateChangeEvent(state=state)
    )


async def _none(value: Awaitable[object]) -> bool:
    return await value is None


async def _empty(value: Awaitable[Sequence[object]]) -> bool:
    return not await value
