"""WorkerRunner: the consumption loop, the concurrency limit, heartbeats and graceful shutdown."""

import asyncio
import contextlib
import functools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from by_framework.cancellation import cancel_tasks
from by_framework.common.aio import Backoff, cancel_and_wait, run_to_end
from by_framework.errors import ConfigurationError, EventWriteError, WorkerIdInUseError
from by_framework.history import SessionHistory, TurnRecorder, open_history_store
from by_framework.history.backends import redact
from by_framework.metrics import NO_METRICS, WorkerLoad, WorkerMetrics, open_endpoint
from by_framework.plugins.base import Plugin
from by_framework.plugins.configs import ConfigSet
from by_framework.plugins.host import PluginHost
from by_framework.ports import (
    Delivery,
    Engine,
    Fetcher,
    FinalEvents,
    LeaseKeeper,
    Verdict,
    WorkerReport,
    WorkerState,
)
from by_framework.protocol import (
    AgentState,
    AgentTaskResult,
    CancelTaskCommand,
    CommandEnvelope,
    DrainWorkerCommand,
    ErrorEvent,
    MalformedEntry,
    MessageHeader,
    QueryCommand,
    ReloadPluginsCommand,
    ResumeWorkerCommand,
    StateChangeEvent,
    TaskCommand,
    TaskEndEvent,
    TaskResultEvent,
    WorkerCommand,
    decode_command,
    encode_event,
)
from by_framework.protocol.plain_json import json_problem
from by_framework.protocol.queries import QueryAnswer
from by_framework.scheduling.firer import ScheduleFirer
from by_framework.settings import Settings
from by_framework.tracing import discover_tracer
from by_framework.tracing.task import end_task_span, start_task_span
from by_framework.worker.activity import EndedTasks, worker_profile
from by_framework.worker.base import GatewayWorker
from by_framework.worker.context import AgentContext
from by_framework.worker.event_writer import TaskEvents
from by_framework.worker.subcalls import SubCalls, Waiters
from by_framework.worker.turns import SessionTurnTaker
from by_framework.worker.workspace import Workspace

log = logging.getLogger("by_framework.worker")
task_log = logging.getLogger("by_framework.worker.tasks")  # one INFO line per task end
T = TypeVar("T")

# How long a fetch blocks: a stop that no wake-up reaches is seen within this.
FETCH_BLOCK_MS = 2_000
OWN_PENDING_BATCH = 10_000
EARLY_CANCELS_KEPT = 1_000  # cancels that found no run here yet; the oldest go first
REPLY_TTL_S = 60.0  # an answer its caller gave up on is gone after this long
STOP_GRACE_FLOOR_S = 1.0  # a cancelled body gets at least this long to unwind, whatever the grace


class _Slot:
    """A delivery's share of the worker's capacity: counted from fetch to its end (the fetch
    loop pauses at ``max_concurrency``), holding a concurrency slot while it runs; a task
    waiting for sub-calls gives both up and takes them again to go on."""

    def __init__(self, runner: "WorkerRunner") -> None:
        self._runner = runner
        self._counted = True  # counted by _take
        self._holding = False

    async def acquire(self) -> None:
        if not self._counted:
            self._runner._count(+1)
            self._counted = True
        await self._runner._slots.acquire()
        self._holding = True

    def release(self) -> None:
        if self._holding:
            self._runner._slots.release()
            self._holding = False
        if self._counted:
            self._runner._count(-1)
            self._counted = False


@dataclass(slots=True)
class _Run:
    """A task running here: what a cancel needs to reach it."""

    handler: asyncio.Task[Any]
    subcalls: SubCalls
    context: AgentContext
    events: TaskEvents
    cut: bool = False
    """A cancel stopped its body (``handler.cancel()``): it ends CANCELLED."""
    deadline: asyncio.TimerHandle | None = field(default=None)
    stuck: bool = False
    """Its body ignored a cancel and was left running: its outcome will be ignored."""

    def stop(self) -> None:
        if not self.cut:
            self.cut = True
            self.handler.cancel()


class WorkerRunner:
    """Runs one ``GatewayWorker`` on an engine until ``request_stop``.

    One XREADGROUP covers every agent-type stream of the worker and its own worker stream, so no
    stream waits on another's poll. Entries are fetched only while slots are free; a fetched entry
    that could not start before shutdown is handed back to its queue, and one still running when
    the shutdown deadline passes is cancelled and handed back too.
    """

    def __init__(
        self,
        worker: GatewayWorker,
        engine: Engine,
        settings: Settings,
        plugins: Sequence[Plugin] = (),
    ) -> None:
        self.worker = worker
        self.engine = engine
        self.settings = settings
        self.worker_id = settings.worker_id
        self.agent_types = list(worker.get_agent_types())
        if not self.agent_types or not all(isinstance(t, str) and t for t in self.agent_types):
            raise ConfigurationError(
                f"{type(worker).__name__}.get_agent_types() must return a non-empty list of "
                f"agent type names, got {self.agent_types!r}"
            )
        self.plugins = PluginHost(
            plugins,
            engine.plugin_store,
            worker_id=self.worker_id,
            agent_types=self.agent_types,
            hook_timeout=settings.plugin_hook_timeout_seconds,
        )
        self.history = open_history_store(settings.history_url)  # an unknown backend fails here
        self._turns = TurnRecorder(self.history)
        self._session_turns = SessionTurnTaker(
            engine.turns, engine.orchestration, settings.turn_lease, self._retrying
        )
        self.streams = engine.control.streams(self.agent_types, self.worker_id)
        self._own_stream = self.streams[-1]
        self._notices = engine.control.notice_stream(self.worker_id)
        self._slots = asyncio.Semaphore(settings.max_concurrency)
        self._in_hand = 0
        self._room = asyncio.Event()
        self._room.set()
        self._stopping = asyncio.Event()
        self._standing: WorkerState = "running"  # what operators set: drain, evict, resume
        self._profile = worker_profile(settings)
        self._ended = EndedTasks()
        self._awaiting_slot: set[asyncio.Task[Any]] = set()  # fetched from a shared queue
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiters = Waiters()
        self._runs: dict[str, _Run] = {}
        self._begun: Counter[str] = Counter()  # runs here from their begin to their finish
        self._early_cancels: dict[str, tuple[str, str]] = {}
        self._in_flight: dict[str, set[str]] = {stream: set() for stream in self.streams}
        self._token: str | None = None
        self._started = asyncio.Event()
        self._duties: list[asyncio.Task[None]] = []  # background loops, started last
        self._keeper: LeaseKeeper | None = None
        self.tracer = discover_tracer()  # None unless a tracing package is installed and set up
        self._endpoint = None if settings.metrics_port is None else open_endpoint(self, settings)
        self.metrics: WorkerMetrics = self._endpoint.metrics if self._endpoint else NO_METRICS

    # Lifecycle

    async def run(self) -> None:
        """Start, serve until ``request_stop``, then drain and deregister. A stop requested
        while starting (SIGTERM while ``on_startup`` waits on a database) ends the start."""
        try:
            starting = asyncio.create_task(self.start())
            stopping = asyncio.create_task(self._stopping.wait())
            try:
                await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                await cancel_and_wait(stopping)
                if not starting.done():
                    log.warning("worker %s stopped while starting", self.worker_id)
                    await cancel_and_wait(starting)
            if not starting.cancelled():
                starting.result()  # a start-up error
                await self.serve()
        finally:
            await self.shutdown()

    async def start(self) -> None:
        directory = self.engine.registry
        if self._endpoint is not None:  # first: probes answer while the rest starts
            await self._endpoint.start()
        try:
            await self.history.start()
        except Exception as exc:
            raise ConfigurationError(
                f"the history store {redact(self.settings.history_url)} did not start: "
                f"{type(exc).__name__}: {' '.join(str(exc).split())}; start its database or "
                "fix history_url (--history-url / BYF_HISTORY_URL)"
            ) from exc
        await self.engine.start()
        await self.plugins.start()  # configs first: a worker with none to serve never registers
        token = await directory.acquire(self.worker_id, self.settings.heartbeat_ttl)
        if token is None:
            raise WorkerIdInUseError(
                f"worker id {self.worker_id!r} is held by another live process; give this one "
                f"another --worker-id, or stop the other (its lock expires "
                f"{self.settings.heartbeat_ttl:g}s after it dies)"
            )
        self._token = token
        self._keeper = self.engine.lease_keeper(
            self.worker_id,
            self.agent_types,
            self._in_flight_now,
            self._session_turns.held_now,
            lambda: self._token,
        )
        self._keeper.start()  # keeps the lock through a start-up longer than its TTL
        await self.engine.control.prepare([*self.streams, self._notices])
        await self.worker.on_startup()
        await self.plugins.hooks.run("on_worker_startup")
        await self._register(token)  # online once it can take tasks, its own start-up done
        self._keeper.serving()
        self._duties = [
            asyncio.create_task(self._listen_forever(), name="notices"),
            asyncio.create_task(self._heartbeat_forever(), name="heartbeat"),
            asyncio.create_task(self._sweep_forever(), name="sweep"),
            asyncio.create_task(
                ScheduleFirer(self.engine, self.settings.schedule_interval).run_forever(),
                name="schedules",
            ),
        ]
        self._started.set()
        log.info("worker %s serving %s", self.worker_id, ", ".join(self.agent_types))

    def request_stop(self) -> None:
        """Stop fetching; ``run`` then drains in-flight tasks and returns."""
        if not self._stopping.is_set():
            log.info("worker %s stopping", self.worker_id)
            self._stopping.set()
            self._room.set()
            for run in self._runs.values():
                if run.subcalls.waiting:  # holds nothing: hand it back now, a re-run replays
                    run.handler.cancel()
            if self._started.is_set():
                self._spawn(self._wake_reader())

    async def wait_started(self) -> None:
        await self._started.wait()

    @property
    def state(self) -> WorkerState:
        return "stopping" if self._stopping.is_set() else self._standing

    @property
    def draining(self) -> bool:
        """Whether it takes no new work from its agent types (drained or evicted by an
        operator, or stopping): not ready for more."""
        return self.state != "running"

    @property
    def registered(self) -> bool:
        """Started and holding its worker id (until it stops)."""
        return self._started.is_set() and self._token is not None

    def load(self) -> WorkerLoad:
        """What the worker holds now, for its metrics."""
        stats = self.plugins.hooks.stats
        return WorkerLoad(
            in_flight=sum(len(entries) for entries in self._in_flight.values()),
            slots=self.settings.max_concurrency,
            slots_in_use=self._in_hand,
            event_backlog=sum(run.events.backlog for run in self._runs.values()),
            hook_failures=sum(n for (_, _, end), n in stats.items() if end == "failure"),
            hook_timeouts=sum(n for (_, _, end), n in stats.items() if end == "timeout"),
        )

    async def serve(self) -> None:
        """Serve until stopped; Redis going away at any point, the first fetches included, is
        waited out."""
        control = self.engine.control
        notices = control.fetcher([self._notices], self.worker_id)
        try:
            left = await self._retrying(
                lambda: notices.fetch(OWN_PENDING_BATCH, 0, own_pending=True)
            )
            for delivery in left:
                # Cancels for tasks that died with an earlier life of this worker id: their
                # records carry the cancel, so a re-run ends CANCELLED at once. Nothing is left
                # to stop.
                await self._retrying(functools.partial(control.acknowledge, delivery))
        finally:
            await notices.aclose()
        fetcher = control.fetcher(self.streams, self.worker_id)
        direct = control.fetcher([self._own_stream], self.worker_id)  # connects once drained
        try:
            left = await self._retrying(
                lambda: fetcher.fetch(OWN_PENDING_BATCH, 0, own_pending=True)
            )
            for delivery in left:
                self._take(delivery)  # left pending by an earlier life of this worker id
            await self._fetch_forever(fetcher, direct)
        finally:
            await fetcher.aclose()
            await direct.aclose()

    async def _fetch_forever(self, fetcher: Fetcher, direct: Fetcher) -> None:
        """Fetch from every stream, or from the worker's own stream alone while drained."""
        backoff = Backoff()
        while not self._stopping.is_set():
            await self._room.wait()
            if self._stopping.is_set():
                break
            count = min(self.settings.fetch_count, self.settings.max_concurrency - self._in_hand)
            source = direct if self.draining else fetcher
            for delivery in await self._fetched(source, count, backoff, "fetch"):
                self._take(delivery)

    async def _fetched(
        self, fetcher: Fetcher, count: int, backoff: Backoff, what: str
    ) -> list[Delivery]:
        """The next deliveries; none after a failed fetch, which is logged and paused after."""
        try:
            deliveries = await fetcher.fetch(count, FETCH_BLOCK_MS, own_pending=False)
        except self.engine.transient_errors as exc:
            log.warning("%s failed (%s); retrying", what, exc)
            await backoff.pause()
            return []
        backoff.reset()
        return deliveries

    async def shutdown(self) -> None:
        self._stopping.set()
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=self.settings.shutdown_timeout)
            if late:
                log.warning("handing back %d task(s) still running at the deadline", len(late))
                await asyncio.gather(*(cancel_and_wait(task) for task in late))
        if self._token is not None:
            for duty in reversed(self._duties):
                await cancel_and_wait(duty)
            if self._keeper is not None:
                await asyncio.to_thread(self._keeper.stop)
            try:
                await self.worker.on_shutdown()
                await self.plugins.hooks.run("on_worker_shutdown")
                if self.settings.plugin_log_hook_stats_on_shutdown:
                    for line in self.plugins.hooks.summary():
                        log.info(line)
            finally:
                await self.engine.registry.deregister(self.worker_id, self.agent_types, self._token)
                self._token = None
        if self._endpoint is not None:
            await self._endpoint.aclose()
        if self.tracer is not None:
            await asyncio.to_thread(self.tracer.shutdown)  # exports what is queued, bounded
        try:
            await self.history.aclose()
        finally:
            await self.engine.aclose()
        log.info("worker %s stopped", self.worker_id)

    # Consumption

    def _take(self, delivery: Delivery) -> None:
        in_flight = self._in_flight.setdefault(delivery.stream, set())
        if delivery.entry_id in in_flight:
            return  # swept while its lease renewal was late: it is running here already
        in_flight.add(delivery.entry_id)
        self._count(+1)
        self._spawn(self._handle(delivery))

    def _count(self, change: int) -> None:
        self._in_hand += change
        if self._in_hand >= self.settings.max_concurrency:
            self._room.clear()
        else:
            self._room.set()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, delivery: Delivery) -> None:
        slot = _Slot(self)
        try:
            envelope = self._decode(delivery)
            if envelope is None:
                return
            if isinstance(envelope.command, CancelTaskCommand):
                await self._cancel(delivery, envelope.header, envelope.command)
                return
            if isinstance(envelope.command, ReloadPluginsCommand):
                await self._reload(delivery, envelope.command)
                return
            command = envelope.command
            if not isinstance(command, TaskCommand):
                reason = f"{command.type} commands belong on a worker's notice stream"
                await self._reject(delivery, reason, envelope.header.session_id)
                return
            shared = delivery.stream != self._own_stream
            handler = asyncio.current_task()
            assert handler is not None  # this coroutine always runs as the delivery's task
            if shared:
                self._awaiting_slot.add(handler)  # an eviction hands it back
            try:
                await slot.acquire()
            except asyncio.CancelledError:  # shutdown deadline or eviction, waiting for a slot
                await self._hand_back(delivery, envelope.header)
                raise
            finally:
                self._awaiting_slot.discard(handler)
            if self._stopping.is_set() or (shared and self.draining):
                await self._hand_back(delivery, envelope.header)
                return
            message_id = envelope.header.message_id
            self._begun[message_id] += 1
            try:
                await self._execute(
                    delivery, envelope.header, command, slot, envelope.send_id or ""
                )
            finally:
                self._begun[message_id] -= 1
                if not self._begun[message_id]:
                    del self._begun[message_id]
        except self.engine.transient_errors as exc:
            # The entry stays pending for this worker id and is retried on its next start.
            log.error("lost Redis while settling %s: %s", delivery.entry_id, exc)
        finally:
            slot.release()
            self._in_flight[delivery.stream].discard(delivery.entry_id)

    def _decode(self, delivery: Delivery) -> CommandEnvelope | None:
        """The delivery's command, or None once its rejection is under way. Whatever fails while
        reading an entry dead-letters it: left pending, it would come back on every sweep, never
        reach ``max_deliveries``, and hold back the trimming of its stream for good."""
        try:
            envelope = decode_command(
                delivery.fields,
                self.settings.max_entry_bytes,
                self.settings.signing_key_bytes,
                stream=delivery.stream,
                entry_id=delivery.entry_id,
                max_age=self.settings.command_max_age,
            )
        except MalformedEntry as exc:
            self._spawn(self._reject(delivery, exc.reason, exc.session_id))
            return None
        except Exception as exc:
            log.exception("could not read %s from %s", delivery.entry_id, delivery.stream)
            reason = f"unreadable entry: {type(exc).__name__}: {exc}"
            self._spawn(self._reject(delivery, reason, None))
            return None
        return envelope

    async def _hand_back(
        self, delivery: Delivery, header: MessageHeader, events: TaskEvents | None = None
    ) -> None:
        """Hand the entry back (a run's event writer stopped first: what it had queued is
        dropped, its re-run streams again), to its end even if the stopper cancels again: cut
        between its steps, the entry would wait for a reclaim."""

        async def steps() -> None:
            if events is not None:
                await events.aclose()
            await self.engine.control.hand_back(delivery, header, self.worker_id)

        await run_to_end(steps())

    async def _reject(self, delivery: Delivery, reason: str, session_id: str | None) -> None:
        log.warning("dead-lettering %s from %s: %s", delivery.entry_id, delivery.stream, reason)
        error = ErrorEvent(error=f"command {delivery.entry_id} rejected: {reason}")
        event = encode_event("", None, 0, error) if session_id else None
        await self._retrying(
            lambda: self.engine.control.reject(delivery, reason, session_id, event)
        )
        self.metrics.dead_lettered()

    async def _execute(
        self,
        delivery: Delivery,
        header: MessageHeader,
        command: TaskCommand,
        slot: _Slot,
        send_id: str,
    ) -> None:
        control = self.engine.control
        running = encode_event(
            header.message_id, header.target_agent_type, 0, StateChangeEvent(state="running")
        )
        configs = self.plugins.current  # the task keeps these, whatever a reload does meanwhile
        verdict = await self._retrying(
            lambda: control.begin(
                delivery, header, self.worker_id, running, configs.version, send_id
            )
        )
        started = time.monotonic()
        run_number = int(verdict.detail) if verdict.action == "run" else 0
        workspace = Workspace(self.settings.workspace_dir, header.session_id, header.message_id)
        events = TaskEvents(self.engine.events, header)
        context, subcalls = self._context(header, events, workspace, run_number, slot, configs)
        if self.tracer is not None and verdict.action in ("run", "cancel"):
            subcalls.span = start_task_span(
                self.tracer, header, command.type, run_number, self.worker_id
            )
        hooks = self.plugins.hooks
        if verdict.action == "cancel":
            result = AgentTaskResult(status=AgentState.CANCELLED, error=verdict.detail)
        elif verdict.action != "run":
            await self._settle_unrun(delivery, header, events, verdict)
            return
        else:
            self.metrics.task_started(header.target_agent_type, delivery.entry_id)
            await self._turns.incoming(header, command, run_number)
            await hooks.run("on_task_start", context)
            handler = asyncio.current_task()
            assert handler is not None  # this coroutine always runs as the delivery's task
            run = _Run(handler, subcalls, context, events)
            result = await self._run_here(delivery, header, command, context, run, workspace)
        if context.cancel_reason is not None:  # a cancelled task ends CANCELLED, whatever it says
            result.status = AgentState.CANCELLED
            result.error = result.error or context.cancel_reason
        final = self._final_events(events, result, await self._unwritten_events(events))
        if verdict.action == "run":  # recorded before anyone can see the outcome and answer it
            await self._turns.outcome(header, result, run_number)
        finished = await self._retrying(
            lambda: control.finish(delivery, header, self.worker_id, result, final)
        )
        if subcalls.span is not None:
            end_task_span(subcalls.span, result, finished)
        if not finished:
            log.warning(
                "task %s was taken over by another worker; result dropped", header.message_id
            )
            return
        self._report_end(header, result.status, time.monotonic() - started)
        if result.status is AgentState.CANCELLED:
            await hooks.run("on_task_cancel", context, result.error or "")
        elif result.status is AgentState.FAILED:
            error = context.error or RuntimeError(result.error)
            await hooks.run("on_task_error", context, error)
        else:
            await hooks.run("on_task_complete", context, result)

    def _report_end(self, header: MessageHeader, status: AgentState, seconds: float) -> None:
        """A run's outcome is recorded: count it, and log one line."""
        agent_type = header.target_agent_type
        self.metrics.task_ended(agent_type, status, seconds)
        self._ended.add(status.value, seconds)
        if task_log.isEnabledFor(logging.INFO):
            fields = {
                "message_id": header.message_id,
                "agent_type": agent_type,
                "status": status.value,
                "duration_s": round(seconds, 6),
            }
            task_log.info(
                "task %s (%s) %s in %.3fs",
                header.message_id,
                agent_type,
                status.value,
                seconds,
                extra=fields,
            )

    def _context(
        self,
        header: MessageHeader,
        events: TaskEvents,
        workspace: Workspace,
        run_number: int,
        slot: _Slot,
        configs: ConfigSet,
    ) -> tuple[AgentContext, SubCalls]:
        """The task's context, and its sub-calls (where a cancel reaches it)."""
        orchestration = self.engine.orchestration

        async def set_waiting(waiting: bool, detail: str) -> None:
            state = "waiting_reply" if waiting else "running"
            await self._flush_events(events)  # numbered after them: must not overtake them
            event = events.encode(StateChangeEvent(state=state, detail=detail))
            await self._retrying(
                lambda: orchestration.set_waiting(header, self.worker_id, waiting, event)
            )

        subcalls = SubCalls(
            header,
            run_number,
            orchestration,
            self._waiters,
            slot,
            set_waiting,
            # a lost wake-up costs at most this long; the re-read at most once a heartbeat
            recheck=max(self.settings.sweep_interval, self.settings.heartbeat_interval),
            retrying=self._retrying,
            metrics=self.metrics,
        )
        context = AgentContext(
            header,
            events,
            self.worker_id,
            workspace,
            subcalls=subcalls,
            configs=configs,
            hooks=self.plugins.hooks,
            history=SessionHistory(self.history, header.session_id),
            turns=self._session_turns,
        )
        return context, subcalls

    async def _run_here(
        self,
        delivery: Delivery,
        header: MessageHeader,
        command: TaskCommand,
        context: AgentContext,
        run: _Run,
        workspace: Workspace,
    ) -> AgentTaskResult:
        """Run the task's body. A cancel of this task stops it: one by ``_stop_run`` alone (the
        run is ``cut``) ends it CANCELLED; any other (shutdown) hands the entry back."""
        self._runs[header.message_id] = run
        early = self._early_cancels.pop(header.message_id, None)
        if early is not None:  # the cancel overtook the start of the run
            self._stop_run(header.message_id, *early)
        try:
            try:
                result = await self._run_with_retries(command, context, run)
            except asyncio.CancelledError:
                if not (run.cut and run.handler.cancelling() == 1):
                    await self._hand_back(delivery, header, run.events)
                    raise
                error = self._stuck_note(context.cancel_reason or "cancelled", run)
                result = AgentTaskResult(status=AgentState.CANCELLED, error=error)
            if run.cut:
                run.handler.uncancel()  # the cancel was ours, and is spent
            return result
        finally:
            if run.deadline is not None:
                run.deadline.cancel()
            self._runs.pop(header.message_id, None)
            workspace.cleanup()

    async def _cancel(
        self, delivery: Delivery, header: MessageHeader, command: CancelTaskCommand
    ) -> None:
        """Stop the named tasks running here; with ``cascade``, first walk their trees."""
        await self._retrying(lambda: self.engine.control.acknowledge(delivery))
        reason = command.reason or "cancelled"
        if command.cascade:
            report = await self._retrying(
                lambda: cancel_tasks(
                    self.engine.orchestration,
                    header.session_id,
                    command.message_ids,
                    reason,
                    command.mode,
                    skip_worker=self.worker_id,
                )
            )
            local = [mid for mid, worker in report.stopping.items() if worker == self.worker_id]
        else:
            local = command.message_ids
        elsewhere = [mid for mid in local if mid not in self._runs and mid not in self._begun]
        for message_id in local:
            if message_id not in elsewhere:
                self._stop_run(message_id, reason, command.mode)
        if elsewhere:
            await self._end_runs_not_here(header.session_id, elsewhere, reason, command.mode)

    async def _end_runs_not_here(
        self,
        session_id: str,
        message_ids: list[str],
        reason: str,
        mode: Literal["graceful", "force"],
    ) -> None:
        """Tasks this worker was told to stop and holds no run of: a record naming it as their
        holder is stale (an earlier life of this worker id, or a run whose end a failover lost),
        and ends CANCELLED as an offline holder's would; a record naming another live worker
        has the cancel passed on to that worker."""
        log.info("cancelling %s: no run of theirs here", ", ".join(message_ids))
        await self._retrying(
            lambda: cancel_tasks(
                self.engine.orchestration,
                session_id,
                message_ids,
                reason,
                mode,
                absent=[self.worker_id],
            )
        )

    def _stop_run(self, message_id: str, reason: str, mode: str) -> None:
        run = self._runs.get(message_id)
        if run is None:
            # Begun here, its run about to start (kept for that start), or ended meanwhile.
            self._early_cancels[message_id] = (reason, mode)
            while len(self._early_cancels) > EARLY_CANCELS_KEPT:
                del self._early_cancels[next(iter(self._early_cancels))]
            return
        log.info("cancelling %s (%s): %s", message_id, mode, reason)
        run.subcalls.cancel(reason)
        if mode == "force" or self.settings.cancel_grace_seconds == 0:
            run.stop()
        elif run.deadline is None:
            loop = asyncio.get_running_loop()
            run.deadline = loop.call_later(self.settings.cancel_grace_seconds, run.stop)

    async def _run_with_retries(
        self, command: TaskCommand, context: AgentContext, run: _Run
    ) -> AgentTaskResult:
        """Run the task (under ``task_timeout``), again after an exception if its agent type's
        retry policy allows; the outcome, never an exception."""
        policy = self.worker.get_retry_policy(context.current_agent_id)
        attempts = policy.max_attempts if policy else 1
        for attempt in range(1, attempts + 1):
            try:
                return await self._attempt(command, context, run)
            except TimeoutError as exc:
                error = f"the task ran longer than task_timeout ({self.settings.task_timeout:g}s)"
                error = self._stuck_note(error, run)
                context.error = exc
            except Exception as exc:
                log.exception(
                    "task %s failed (run %d of %d)", context.message_id, attempt, attempts
                )
                error = f"{type(exc).__name__}: {exc}"
                context.error = exc
            if policy is None or attempt == attempts or context.cancelled or run.stuck:
                break
            delay = policy.delay_before(attempt + 1)
            detail = f"run {attempt} of {attempts} failed ({error}); next run in {delay:g}s"
            await context.emit_state("retrying", detail=detail)
            await asyncio.sleep(delay)
        return AgentTaskResult(status=AgentState.FAILED, error=error)

    async def _attempt(
        self, command: TaskCommand, context: AgentContext, run: _Run
    ) -> AgentTaskResult:
        """One run of the body, in a task of its own so that a body that ignores its cancel
        (a cancel, ``task_timeout``, the shutdown deadline) can be left behind rather than hold
        its delivery, its slot and the shutdown forever. Raises TimeoutError past task_timeout."""
        body = asyncio.create_task(self.worker.process_command(command, context))
        try:
            await asyncio.wait({body}, timeout=self.settings.task_timeout)
        except asyncio.CancelledError:
            await self._stop_body(body, context, run)
            raise
        if not body.done():
            await self._stop_body(body, context, run)
            raise TimeoutError
        return AgentTaskResult.coerce(body.result())

    async def _stop_body(self, body: "asyncio.Task[Any]", context: AgentContext, run: _Run) -> None:
        """Cancel the body and wait the grace for it to end; one still running then is left
        behind (``run.stuck``), and whatever it ends with is ignored."""
        body.cancel()
        await asyncio.wait({body}, timeout=self._stop_grace())
        if body.done():
            if not body.cancelled():
                body.exception()  # its outcome after the cancel: not worth a warning
            return
        run.stuck = True
        log.error(
            "task %s did not stop within %gs of its cancel (it catches CancelledError?): left "
            "running, its outcome ignored",
            context.message_id,
            self._stop_grace(),
        )
        body.add_done_callback(_ignore_outcome)

    def _stop_grace(self) -> float:
        return max(self.settings.cancel_grace_seconds, STOP_GRACE_FLOOR_S)

    def _stuck_note(self, error: str, run: _Run) -> str:
        """``error``, saying that the body did not stop, if it did not."""
        if not run.stuck:
            return error
        return (
            f"{error}; the task did not stop within {self._stop_grace():g}s of its cancel and "
            "was left running, its outcome ignored"
        )

    async def _settle_unrun(
        self, delivery: Delivery, header: MessageHeader, events: TaskEvents, verdict: Verdict
    ) -> None:
        control = self.engine.control
        if verdict.action == "skip":
            log.debug("skipping %s: %s", header.message_id, verdict.detail)
            await self._retrying(lambda: control.acknowledge(delivery))
        elif verdict.action == "give_back":
            log.info("%s still runs on %s; leaving it there", header.message_id, verdict.detail)
            await self._retrying(lambda: control.give_back(delivery, verdict.detail))
        else:
            reason = (
                f"gave up after {verdict.detail} deliveries (max_deliveries="
                f"{self.settings.max_deliveries}): its worker died each time it ran"
            )
            log.error("dead-lettering %s: %s", header.message_id, reason)
            result = AgentTaskResult(status=AgentState.FAILED, error=reason)
            final = self._final_events(events, result)
            await self._retrying(lambda: control.give_up(delivery, header, reason, final))
            self.metrics.dead_lettered()
            self._ended.add(AgentState.FAILED.value)

    async def _retrying(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run one settling step, waiting out a Redis outage: a finished task's outcome exists
        only in this process until it is recorded. Gives up only once the worker is stopping;
        the entry then stays pending and is reclaimed."""
        backoff = Backoff()
        while True:
            try:
                return await operation()
            except self.engine.transient_errors as exc:
                if self._stopping.is_set():
                    raise
                log.warning("Redis unavailable (%s); retrying", exc)
                await backoff.pause()

    @staticmethod
    async def _flush_events(events: TaskEvents) -> None:
        """Wait until the task's own events are written (an outage is waited out there)."""
        try:
            await events.flush()
        except EventWriteError as exc:  # Redis refused them: nothing to retry, the task goes on
            log.error("task %s: %s", events.message_id, exc)

    @staticmethod
    async def _unwritten_events(events: TaskEvents) -> tuple[bytes, ...]:
        """The task's own events not written yet: they go with its outcome, in one step."""
        try:
            return tuple(await events.take())
        except EventWriteError as exc:  # Redis refused them: nothing to retry, the task goes on
            log.error("task %s: %s", events.message_id, exc)
            return ()

    @staticmethod
    def _final_events(
        events: TaskEvents, result: AgentTaskResult, leading: tuple[bytes, ...] = ()
    ) -> FinalEvents:
        state = None  # written first, so numbered first
        if result.status is AgentState.CANCELLED:
            state = events.encode(StateChangeEvent(state="cancelled", detail=result.error))
        try:
            encoded_result = events.encode(TaskResultEvent(result=result))
        except (TypeError, ValueError) as exc:
            result.status, result.content = AgentState.FAILED, None
            result.error = f"the task's result is not JSON-serializable: {exc}"
            encoded_result = events.encode(TaskResultEvent(result=result))
        return FinalEvents(
            result=encoded_result,
            end=events.encode(TaskEndEvent(status=result.status)),
            state=state,
            leading=leading,
        )

    # Background duties

    async def _heartbeat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval)
            started = time.monotonic()
            try:
                assert self._token is not None
                alive = await self.engine.registry.heartbeat(
                    self.worker_id,
                    self.agent_types,
                    self._token,
                    self.settings.heartbeat_ttl,
                    self._report(),
                )
                if not alive:
                    await self._reclaim_identity()
                await self.engine.control.renew(self._in_flight_now(), self.worker_id)
            except self.engine.transient_errors as exc:
                log.warning("heartbeat failed: %s", exc)
            except Exception:  # never let a surprise end the heartbeat silently
                log.exception("heartbeat failed")
            elapsed = time.monotonic() - started
            if elapsed > self.settings.heartbeat_interval:
                log.warning("heartbeat took %.1fs", elapsed)

    async def _register(self, token: str) -> None:
        await self.engine.registry.register(
            self.worker_id,
            self.agent_types,
            token,
            self.settings.heartbeat_ttl,
            self._profile,
            self._report(),
        )

    def _report(self) -> WorkerReport:
        """What the heartbeat publishes: state, load, config version, recent outcomes."""
        return WorkerReport(
            state=self.state,
            in_flight=self._in_hand,
            config_version=self.plugins.current.version if self.plugins.plugins else None,
            ended=self._ended.by_minute(),
            run_time=self._ended.run_time_by_minute(),
        )

    def _in_flight_now(self) -> dict[str, list[str]]:
        """The entries in flight here, by stream. The lease thread calls it too, while the loop
        is blocked: each copy (``list(dict.items())``, ``sorted(set)``) is one call under the
        GIL, so a loop that goes on meanwhile cannot change them mid-copy."""
        return {stream: sorted(ids) for stream, ids in list(self._in_flight.items())}

    async def _listen_forever(self) -> None:
        """Read the notice stream whatever the load: wake-ups for waiting parents, and cancel
        commands (anything else there is rejected)."""
        backoff = Backoff()
        fetcher = self.engine.control.fetcher([self._notices], self.worker_id)
        try:
            while True:
                for delivery in await self._fetched(fetcher, 100, backoff, "reading notices"):
                    if delivery.notice is not None:
                        self._waiters.wake(delivery.notice)
                    else:
                        self._spawn(self._handle_notice(delivery))
        finally:
            await fetcher.aclose()

    async def _handle_notice(self, delivery: Delivery) -> None:
        envelope = self._decode(delivery)
        if envelope is None:
            return
        command = envelope.command
        try:
            if isinstance(command, CancelTaskCommand):
                await self._cancel(delivery, envelope.header, command)
            elif isinstance(command, ReloadPluginsCommand):
                await self._reload(delivery, command)
            elif isinstance(command, WorkerCommand):
                await self._obey(delivery, command)
            elif isinstance(command, QueryCommand):
                await self._answer(delivery, envelope.header, command)
            else:
                reason = f"{command.type} commands do not belong on a notice stream"
                await self._reject(delivery, reason, envelope.header.session_id)
        except self.engine.transient_errors as exc:
            log.error("lost Redis while handling %s: %s", command.type, exc)

    async def _answer(
        self, delivery: Delivery, header: MessageHeader, command: QueryCommand
    ) -> None:
        """Answer a client's question about a session's state on its reply list, within the
        time the client waits; one that writes waits for the session's turn first."""
        await self._retrying(lambda: self.engine.control.acknowledge(delivery))
        try:
            async with asyncio.timeout(command.timeout), contextlib.AsyncExitStack() as stack:
                if command.writes:
                    turn = self._session_turns.hold(header, "enqueue", lambda: False)
                    await stack.enter_async_context(turn)
                value = await self.worker.answer_query(command.name, command.args, header)
            problem = json_problem(value, "the answer")
            error = None if problem is None else f"{problem}: the answer must be plain JSON"
        except TimeoutError:
            error = f"no answer within the {command.timeout:g}s the caller waits"
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        if error is not None:
            log.info("%s query of session %s: %s", command.name, header.session_id, error)
        answer = QueryAnswer(value=None if error else value, error=error)
        payload = answer.model_dump_json().encode()
        await self._retrying(
            lambda: self.engine.answers.put(command.reply_to, payload, REPLY_TTL_S)
        )

    async def _reload(self, delivery: Delivery, command: ReloadPluginsCommand) -> None:
        """Reload the plugins and answer on the reload answer stream."""
        await self._retrying(lambda: self.engine.control.acknowledge(delivery))
        answer = await self.plugins.reload(command.reload_id, command.reason)
        await self._retrying(lambda: self.engine.plugin_store.answer(answer))

    async def _obey(self, delivery: Delivery, command: WorkerCommand) -> None:
        """An operator's drain, resume or evict; the new state is published at once."""
        await self._retrying(lambda: self.engine.control.acknowledge(delivery))
        if (command.worker_id, command.instance) != (self.worker_id, self._profile.instance):
            log.info("ignoring a %s meant for an earlier process of this worker id", command.type)
            return
        if isinstance(command, ResumeWorkerCommand):
            self._standing = "running"
        elif isinstance(command, DrainWorkerCommand):
            self._standing = "draining"
        else:
            self._standing = "evicted"
            for task in list(self._awaiting_slot):  # fetched, not started: back to the queues
                task.cancel()
            for run in self._runs.values():
                if run.subcalls.waiting:  # holds nothing: hand it back now, a re-run replays
                    run.handler.cancel()
        log.warning("worker %s is %s, by an operator's command", self.worker_id, self._standing)
        await self._wake_reader()  # a fetch waiting on the task streams returns now
        token = self._token
        if token is not None:
            await self._retrying(
                lambda: self.engine.registry.heartbeat(
                    self.worker_id,
                    self.agent_types,
                    token,
                    self.settings.heartbeat_ttl,
                    self._report(),
                )
            )

    async def _sweep_forever(self) -> None:
        """Take over commands whose worker died (pending, not renewed for a whole lease), and
        trim what every consumer is done with from the control streams."""
        lease_ms = int(self.settings.lease_seconds * 1000)
        shared = self.streams[:-1]  # a worker's own stream waits for that worker
        while True:
            await asyncio.sleep(self.settings.sweep_interval)
            free = self.settings.max_concurrency - self._in_hand
            if self._stopping.is_set():
                continue
            try:
                await self.engine.control.trim([*self.streams, self._notices])
                await self.engine.registry.prune(self.agent_types)
                if free <= 0 or self.draining:
                    continue
                deliveries = await self.engine.control.reclaim(
                    shared, self.worker_id, lease_ms, min(free, self.settings.fetch_count)
                )
            except self.engine.transient_errors as exc:
                log.warning("sweep failed: %s", exc)
                continue
            for delivery in deliveries:
                log.info("reclaimed %s from %s", delivery.entry_id, delivery.stream)
                self.metrics.reclaimed(1)
                self._take(delivery)

    async def _reclaim_identity(self) -> None:
        """The lock vanished (Redis restarted or flushed): take it again, or stop if taken."""
        directory = self.engine.registry
        token = await directory.acquire(self.worker_id, self.settings.heartbeat_ttl)
        if token is None:
            log.critical("worker id %s was taken by another process; stopping", self.worker_id)
            self.request_stop()
            return
        self._token = token
        await self.engine.control.prepare([*self.streams, self._notices])
        await self._register(token)
        log.warning("worker %s re-registered after losing its lock", self.worker_id)

    async def _wake_reader(self) -> None:
        with contextlib.suppress(*self.engine.transient_errors):
            await self.engine.control.wake(self._own_stream)


def _ignore_outcome(body: "asyncio.Task[Any]") -> None:
    """Done callback of a body left behind: its late outcome is never recorded."""
    if not body.cancelled():
        body.exception()  # retrieved, so that asyncio does not warn about it
    log.info("a task body left running after its cancel has ended; its outcome is ignored")
