"""The small interfaces the worker and the client talk to; ``by_framework.redis`` implements them.

Only ``by_framework/redis/`` imports redis-py. Engine logic (worker, client, CLI, gateway,
dashboard) depends on these Protocols, so another engine, or an instrumented one in a test, can
stand in without touching it: ``by_framework.engine.connect_engine`` assembles one, and every
engine passes the conformance suite ``by_framework.testing.engine`` (docs/backends.md).
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from by_framework.protocol import AgentTaskResult, EventGap, MessageHeader, SessionEvent
from by_framework.protocol.dead_letter import DeadLetter
from by_framework.protocol.records import TaskRecord
from by_framework.protocol.schedules import Schedule, ScheduleState
from by_framework.settings import Settings

WorkerState = Literal["running", "draining", "evicted", "stopping"]
"""What a worker takes: ``running`` new work; ``draining`` (an operator's ``workers drain``) and
``evicted`` (``workers evict``: its queued work was handed back) only tasks sent to it alone;
``stopping`` (shutting down) nothing."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One entry read from a control stream by a consumer group."""

    stream: str
    entry_id: str
    fields: dict[bytes, bytes]
    notice: str | None = None
    """Set on a wake-up (already acknowledged): the child or group whose end it announces."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What ``begin`` decided for a delivery.

    ``run``: this worker now holds the task (``detail``: its run number, counting resumes).
    ``cancel``: it holds the task, which was cancelled while its worker was gone (``detail``: the
    reason): end it CANCELLED. ``skip``: finished, or a duplicate: acknowledge it.
    ``give_back``: reclaimed from a holder that is alive after all: return it to ``detail``.
    ``give_up``: out of deliveries (``detail`` says how many ran): dead-letter it.
    """

    action: Literal["run", "cancel", "skip", "give_back", "give_up"]
    detail: str = ""


@dataclass(frozen=True, slots=True)
class FinalEvents:
    """The encoded events a run ends with: its result and the end-of-task marker, after an
    optional state event (CANCELLED), after ``leading``: the task's own events not yet written
    (they travel with the outcome rather than in a write of their own)."""

    result: bytes
    end: bytes
    state: bytes | None = None
    leading: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class SubCall:
    """One child to dispatch: its header, its encoded command, whether its parent waits for it."""

    header: MessageHeader
    envelope: bytes
    wait_for_reply: bool


@dataclass(frozen=True, slots=True)
class CancelReport:
    """What a cancel did: tasks it ended itself, and running tasks whose workers must stop them
    (message id -> worker id)."""

    cancelled: int
    stopping: dict[str, str]


class TaskQueue(Protocol):
    """The control plane as a worker sees it."""

    def streams(self, agent_types: Sequence[str], worker_id: str) -> list[str]:
        """The control streams a worker consumes: one per agent type, plus its own."""

    def notice_stream(self, worker_id: str) -> str:
        """The worker's stream of wake-ups (a child ended) and cancel commands: read apart from
        the task streams, whatever the worker's load."""

    async def prepare(self, streams: Sequence[str]) -> None:
        """Create the consumer group on each stream, from its start: nothing sent early is lost."""

    def fetcher(self, streams: Sequence[str], consumer: str) -> "Fetcher":
        """What one loop fetches the streams' entries for the consumer with."""

    async def begin(
        self,
        delivery: Delivery,
        header: MessageHeader,
        worker_id: str,
        running_event: bytes,
        config_version: int = 0,
        send_id: str = "",
    ) -> Verdict:
        """Move the record to RUNNING for this worker, if it may run (compare-and-set).
        ``send_id``: the send that wrote the command (its envelope's), or "": a command is
        never run against a record another send wrote (its id was taken: skipped)."""

    async def finish(
        self,
        delivery: Delivery,
        header: MessageHeader,
        worker_id: str,
        result: AgentTaskResult,
        events: FinalEvents,
    ) -> bool:
        """Record the outcome, write the final events and ack, atomically; False if stale."""

    async def acknowledge(self, delivery: Delivery) -> None: ...

    async def give_back(self, delivery: Delivery, holder: str) -> None:
        """Return a reclaimed entry to the consumer that still runs it."""

    async def give_up(
        self, delivery: Delivery, header: MessageHeader, reason: str, events: FinalEvents
    ) -> None:
        """End the task FAILED, dead-letter the entry with the reason, and ack it."""

    async def renew(self, in_flight: dict[str, list[str]], consumer: str) -> None:
        """Reset the idle time of this consumer's in-flight entries: its lease on them."""

    async def reclaim(
        self, streams: Sequence[str], consumer: str, min_idle_ms: int, count: int
    ) -> list[Delivery]:
        """Take over entries idle longer than ``min_idle_ms`` (their worker died)."""

    async def trim(self, streams: Sequence[str]) -> int:
        """Drop entries every consumer group is done with; how many went."""

    async def reject(
        self, delivery: Delivery, reason: str, session_id: str | None, error_event: bytes | None
    ) -> None:
        """Move a bad entry to the dead-letter stream, tell its session if known, and ack it."""

    async def hand_back(
        self, delivery: Delivery, header: MessageHeader, worker_id: str, *, crashed: bool = False
    ) -> None:
        """Return an entry ``worker_id`` will not finish to its queue (graceful shutdown, an
        eviction). ``crashed``: the worker died running it, which counts as a delivery."""

    async def pending_of(self, streams: Sequence[str], consumer: str) -> list[Delivery]:
        """The entries of the streams pending for ``consumer`` (fetched, not yet finished)."""

    async def wake(self, stream: str) -> None:
        """Unblock a consumer waiting on ``stream``."""


class CommandBus(Protocol):
    """The control plane as a client sees it."""

    async def send(
        self,
        header: MessageHeader,
        envelope: bytes,
        target_worker_id: str | None,
        *,
        send_id: str | None = None,
    ) -> None:
        """Create the QUEUED record and add the entry, once, retrying through connection
        trouble; raise if no online worker would get it. Senders that may repeat a send made
        by another process (a scheduled tick taken over) give the same ``send_id`` for it: the
        repeat then delivers a send left undelivered, and does nothing to one delivered."""


@dataclass(frozen=True, slots=True)
class WorkerProfile:
    """What a worker process is, published when it registers."""

    instance: str
    """Names this process apart from earlier ones under the same worker id."""
    host: str
    pid: int
    started_at: float
    slots: int
    heartbeat_interval: float


@dataclass(frozen=True, slots=True)
class WorkerReport:
    """What a worker publishes with every heartbeat."""

    state: WorkerState
    in_flight: int
    """Tasks fetched and not ended, waiting parents left out (they hold no slot)."""
    config_version: int | None
    """The version of its plugin configs; None without plugins."""
    ended: Mapping[int, Mapping[str, int]]
    """Tasks ended here lately: minute (Unix time // 60) -> status -> how many."""
    run_time: Mapping[int, tuple[float, int]] = field(default_factory=dict)
    """The run time of the tasks that ran and ended here lately: minute -> (seconds summed,
    runs): their mean is the latency the dashboard draws."""


class WorkerDirectory(Protocol):
    """Membership, heartbeat lease and worker-id lock."""

    async def acquire(self, worker_id: str, ttl: float) -> str | None:
        """Take the worker-id lock; its token, or None if another live process holds it."""

    async def register(
        self,
        worker_id: str,
        agent_types: Sequence[str],
        token: str,
        ttl: float,
        profile: WorkerProfile | None = None,
        report: WorkerReport | None = None,
    ) -> None: ...

    async def heartbeat(
        self,
        worker_id: str,
        agent_types: Sequence[str],
        token: str,
        ttl: float,
        report: WorkerReport | None = None,
    ) -> bool:
        """Renew lock, online key and membership, and publish the report; False if the lock
        was lost."""

    async def prune(self, agent_types: Sequence[str]) -> int:
        """Drop members that are not online (crashed workers); how many went."""

    async def deregister(self, worker_id: str, agent_types: Sequence[str], token: str) -> None: ...

    async def is_online(self, worker_id: str) -> bool:
        """Whether the worker's heartbeat lease is current."""
        ...

    async def all_online(self) -> list[str]:
        """Every online worker, sorted."""
        ...

    async def online_workers(self, agent_type: str) -> list[str]:
        """The online workers of an agent type, sorted."""
        ...

    async def agent_types_of(self, worker_id: str) -> set[str]:
        """The agent types the worker registered for."""
        ...


class Fetcher(Protocol):
    """One loop's reads of a set of control streams for one consumer, until ``aclose``."""

    async def fetch(self, count: int, block_ms: int, *, own_pending: bool) -> list[Delivery]:
        """New entries for this consumer (blocking up to ``block_ms``), or its own pending ones."""

    async def aclose(self) -> None: ...


class EventReader(Protocol):
    """One follower of one session's events, from its first ``read`` to ``aclose``."""

    async def read(self, after: str, count: int, block_ms: int) -> list[SessionEvent | EventGap]:
        """Up to ``count`` events after the stream id ``after``, waiting up to ``block_ms`` for
        the first; an ``EventGap`` in place of entries trimmed before they were read."""

    async def aclose(self) -> None: ...


class EventLog(Protocol):
    """The data plane: per-session event streams."""

    async def append(self, session_id: str, *events: bytes) -> None: ...

    def reader(self, session_id: str) -> EventReader: ...

    async def last_id(self, session_id: str) -> str: ...


class TaskStore(Protocol):
    """Execution records, read side."""

    def new_message_id(self, session_id: str) -> str:
        """A new task's id (32 hex digits, 108 bits of them random), placed where its session's
        records are: on a Redis Cluster its task index falls in the session's slot."""
        ...

    async def session_of(self, message_id: str) -> str | None:
        """The session of the task, None if it was never sent or its record expired."""
        ...

    async def get(self, message_id: str) -> TaskRecord | None: ...

    async def wait_point(self, session_id: str, message_id: str) -> tuple[str, TaskRecord | None]:
        """Where to wait for the task's end from: the id of the session's newest event, then
        the task's record (its children not read), read in that order at once, so that a run
        not ended in the record ends in the events after that id."""
        ...

    async def list_session(self, session_id: str) -> list[TaskRecord]: ...


class Orchestration(Protocol):
    """Sub-calls and their journal, groups, resumes and cancellation."""

    async def dispatch(
        self, parent: MessageHeader, calls: Sequence[SubCall], group_id: str | None
    ) -> bool:
        """Send the sub-calls at once, unless they went out before (a re-run): True if sent."""

    async def results(
        self, session_id: str, message_ids: Sequence[str]
    ) -> dict[str, AgentTaskResult | None]:
        """Each child's final result, None while it has not ended."""

    async def group(self, session_id: str, group_id: str) -> tuple[list[str], int] | None:
        """A group's children in dispatch order and how many are still out."""

    async def set_waiting(
        self, header: MessageHeader, worker_id: str, waiting: bool, state_event: bytes
    ) -> bool: ...

    async def resume(self, header: MessageHeader, envelope: bytes) -> None: ...

    async def cancel_tree(
        self,
        session_id: str,
        message_ids: Sequence[str],
        reason: str,
        absent: Sequence[str] = (),
    ) -> CancelReport:
        """Cancel the tasks and their sub-calls. A task held by a worker that is offline, or
        named in ``absent`` (a worker that says it does not run it), ends CANCELLED at once;
        one held by a live worker is marked and reported in ``stopping``."""

    async def send_to_worker(self, worker_id: str, envelope: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class ReloadAck:
    """One worker's answer to a plugin reload."""

    reload_id: str
    worker_id: str
    status: Literal["ok", "failed"]
    version_before: int
    version_after: int
    error: str | None = None


class PluginStore(Protocol):
    """Config snapshots and the answers to reloads."""

    async def save_snapshot(self, key: str, snapshot: bytes) -> None: ...

    async def version_for(self, key: str, fingerprint: str) -> int:
        """The version number of the config set with this fingerprint: one number per content,
        shared by every worker of the kind."""

    async def load_snapshot(self, key: str) -> bytes | None: ...

    async def answer(self, ack: ReloadAck) -> None: ...

    async def last_answer_id(self) -> str: ...

    async def answers(
        self, reload_id: str, after: str, expected: set[str], timeout: float
    ) -> dict[str, ReloadAck]:
        """The answers to ``reload_id`` after stream id ``after``, until every expected worker
        answered or ``timeout`` seconds passed."""


@dataclass(frozen=True, slots=True)
class HistoryMessage:
    """One turn of a session's history, as a ``HistoryStore`` returns it."""

    session_id: str
    position: int
    """Its place in the session: increasing in append order (not necessarily dense)."""
    role: str
    content: Any
    """JSON content, decoded: structured content comes back as it went in."""
    metadata: dict[str, Any] = field(default_factory=dict)
    key: str | None = None
    """The idempotency key it was appended with, if any."""
    created_at: datetime | None = None

    @property
    def cursor(self) -> str:
        """Pass as ``after`` to list what follows this message."""
        return str(self.position)


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """One page of a session's history, oldest first."""

    messages: list[HistoryMessage]
    next_cursor: str | None
    """Pass as ``after`` for the next page; None when this page reached the end (so far)."""


class HistoryStore(Protocol):
    """The conversation history of sessions: an append-only, ordered log per session.

    Backends are chosen by URL (``Settings.history_url``); the in-memory one in
    ``by_framework.history`` is the reference, and every backend passes the conformance suite
    ``by_framework.testing.history``.
    """

    async def start(self) -> None:
        """Connect, and create or migrate what the backend keeps (its schema)."""

    async def aclose(self) -> None: ...

    async def append(
        self,
        session_id: str,
        role: str,
        content: Any,
        metadata: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
    ) -> HistoryMessage:
        """Add a message at the end of the session. With a ``key`` already used in the session
        nothing is added and the message first appended with it is returned (a re-run records
        the same turn once). ``ValueError`` / ``TypeError`` for content that is not storable
        JSON."""

    async def list(
        self, session_id: str, after: str | None = None, limit: int = 100
    ) -> HistoryPage:
        """Up to ``limit`` messages (1-1000) after the cursor ``after``, oldest first."""

    async def delete(self, session_id: str) -> int:
        """Remove the session's history; how many messages went."""


class ControlPlane(TaskQueue, CommandBus, Protocol):
    """Both sides of the control plane."""


class LeaseKeeper(Protocol):
    """Renews a worker's leases from outside its event loop while that loop is blocked; until
    ``serving``, the worker's id lock alone, whatever the loop does (the worker is starting)."""

    def start(self) -> None:
        """Start watching (called on the running loop, once the worker holds its id's lock)."""

    def serving(self) -> None:
        """The worker has registered: from now on, its leases while its loop is blocked."""

    def stop(self) -> None:
        """Stop watching; may block briefly, so call it off the loop."""


class SessionOwners(Protocol):
    """Who created each session: the HTTP gateway's access control."""

    async def claim(self, session_id: str, owner: str) -> str:
        """Record ``owner`` as the session's if it has none; the session's owner either way."""
        ...

    async def owner(self, session_id: str) -> str | None: ...


class SessionTurns(Protocol):
    """Whose turn it is in a session, per agent type: the run holding it goes on; another
    message's run waits, gives up or stops it (``AgentContext.session_turn``). A turn is held
    under a lease its run renews, so that a dead worker's turn lapses."""

    async def take(
        self, session_id: str, agent_type: str, message_id: str, lease: float
    ) -> str | None:
        """Take the turn for ``message_id`` if it is free, lapsed or already its own (renewed):
        None. Else the message id of its holder, and nothing changes."""
        ...

    async def keep(self, session_id: str, agent_type: str, message_id: str, lease: float) -> bool:
        """Renew the lease; False if the turn is not ``message_id``'s any more."""
        ...

    async def give_up(self, session_id: str, agent_type: str, message_id: str) -> None:
        """Free the turn if ``message_id`` holds it."""
        ...

    async def holder(self, session_id: str, agent_type: str) -> str | None: ...


class Answers(Protocol):
    """One-shot answers to one waiting caller (a worker's answer to a ``QueryCommand``)."""

    async def put(self, reply_to: str, answer: bytes, ttl: float) -> None:
        """Leave the answer for its caller; gone after ``ttl`` seconds if nobody takes it."""
        ...

    async def take(self, reply_to: str, timeout: float) -> bytes | None:
        """The answer, waiting up to ``timeout`` seconds for it; None if none came."""
        ...


class RateLimiter(Protocol):
    """A token bucket per caller, shared by every process on the engine."""

    async def take(self, caller: str, rate: float, burst: int) -> float:
        """0 if the caller may go on now, else the seconds until it may."""
        ...


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One worker as the fleet view reads it: its profile, last report and liveness."""

    worker_id: str
    online: bool
    agent_types: tuple[str, ...]
    profile: WorkerProfile | None
    """None for a worker that published none (an older version)."""
    report: WorkerReport | None
    last_heartbeat: float | None
    """Unix time, by Redis's clock."""
    read_at: float
    """When this was read (Unix time, by Redis's clock): ages are measured from it."""

    @property
    def heartbeat_age(self) -> float | None:
        if self.last_heartbeat is None:
            return None
        return max(0.0, self.read_at - self.last_heartbeat)


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """One agent type's control stream, as its consumer group sees it."""

    agent_type: str
    length: int
    """Entries in the stream: queued, pending, and finished ones not trimmed yet."""
    queued: int | None
    """Entries not yet delivered to any worker (the group's lag); None when Redis cannot tell
    (before Redis 7, or after entries were deleted from the middle of the stream)."""
    pending: int
    """Entries delivered and not yet finished."""
    oldest_pending_at: float | None
    """When the oldest pending entry was added to the stream (Unix time)."""


@dataclass(frozen=True, slots=True)
class FleetSnapshot:
    """Workers, queues and dead letters, read at one moment."""

    at: float
    """Unix time, by Redis's clock: ages are measured from it."""
    workers: tuple[WorkerInfo, ...]
    queues: tuple[QueueInfo, ...]
    dead_letters: int


class FleetView(Protocol):
    """The fleet as an operator sees it, read in a few round trips whatever its size."""

    async def snapshot(self) -> FleetSnapshot:
        """Every known worker, and the queue of every agent type served lately."""

    async def worker(self, worker_id: str) -> WorkerInfo | None:
        """One worker; None if it never registered, or left (shut down, or gone for
        ``record_ttl``)."""


class DeadLetterStore(Protocol):
    """The dead-letter stream, for operators: the ``dead-letter`` command and the dashboard."""

    async def get(self, dead_id: str) -> DeadLetter | None: ...

    async def replay(self, dead_id: str) -> str:
        """Put the entry back on its stream as a new entry (its id is returned) and remove the
        dead letter, at once; a task given up on is queued again with fresh deliveries.
        ``DeadLetterNotFoundError``, or ``DeadLetterReplayError`` saying why it cannot be."""

    async def purge(self, dead_id: str | None = None) -> int:
        """Delete one entry, or all of them (``None``); how many were deleted."""

    async def list(self, count: int = 50, after: str = "-") -> list[DeadLetter]:
        """Up to ``count`` entries, oldest first, after the entry id ``after`` ("-": the start)."""


@dataclass(frozen=True, slots=True)
class DueFiring:
    """A schedule's tick, taken to be fired by this worker until ``lease_end``."""

    schedule: Schedule
    """Its definition and state (``next_at`` and ``firing`` are not read here)."""
    tick: float
    """The tick being fired (Unix time): the same for whoever takes it over."""
    lease_end: int
    """When another worker may take it over (ms): the taker's proof in ``settle``."""


class ScheduleStore(Protocol):
    """Scheduled runs: stored once, fired by whichever worker takes each tick."""

    async def add(self, schedule: Schedule, first_at: float) -> bool:
        """Store it, to fire first at ``first_at`` (Unix time); False if its id is taken."""
        ...

    async def take_due(self, now: float, lease: float, limit: int) -> list[DueFiring]:
        """At most ``limit`` schedules due by ``now``, each held for ``lease`` seconds: no
        other caller gets it before it is settled or its lease runs out."""
        ...

    async def settle(
        self, firing: DueFiring, next_at: float | None, state: ScheduleState, fired: bool
    ) -> bool:
        """End a firing: due next at ``next_at`` (None: done, removed), with ``state``; with
        ``fired`` False the same tick is tried again then. False (and nothing changes) if it is
        not this taker's any more (removed, or taken over after its lease)."""
        ...

    async def remove(self, schedule_id: str) -> bool:
        """Remove it; False if there is none of that id."""
        ...

    async def all(self) -> list[Schedule]:
        """Every schedule, soonest first."""
        ...


class Engine(Protocol):
    """Everything the worker and the client need, on one connection."""

    # Read-only members (properties): an implementation may hold more specific types.

    @property
    def settings(self) -> Settings:
        """What it was made from."""
        ...

    @property
    def transient_errors(self) -> tuple[type[Exception], ...]:
        """Errors that mean "the store is unreachable right now": retry later, nothing is
        lost."""
        ...

    @property
    def credential_errors(self) -> tuple[type[Exception], ...]:
        """Errors that mean the store refused the credentials."""
        ...

    @property
    def refusals(self) -> tuple[type[Exception], ...]:
        """Errors the store answered a command with (an ACL that forbids it, a key of another
        type)."""
        ...

    @property
    def control(self) -> ControlPlane: ...

    @property
    def orchestration(self) -> Orchestration: ...

    @property
    def plugin_store(self) -> PluginStore: ...

    @property
    def events(self) -> EventLog: ...

    @property
    def tasks(self) -> TaskStore: ...

    @property
    def registry(self) -> WorkerDirectory: ...

    @property
    def owners(self) -> SessionOwners: ...

    @property
    def turns(self) -> SessionTurns: ...

    @property
    def answers(self) -> Answers: ...

    @property
    def rate_limiter(self) -> RateLimiter: ...

    @property
    def fleet(self) -> FleetView: ...

    @property
    def dead_letters(self) -> DeadLetterStore: ...

    @property
    def schedules(self) -> ScheduleStore: ...

    async def start(self) -> None: ...

    async def ping(self) -> None:
        """One round trip to the store, behind whatever this engine has queued; raises (one of
        ``transient_errors`` when it is unreachable) if it does not answer."""
        ...

    def lease_keeper(
        self,
        worker_id: str,
        agent_types: Sequence[str],
        in_flight: Callable[[], Mapping[str, Sequence[str]]],
        turns: Callable[[], Sequence[tuple[str, str, str]]],
        token: Callable[[], str | None],
    ) -> LeaseKeeper:
        """A keeper of the worker's leases (``in_flight``: its entries by stream, ``turns``: the
        session turns its runs hold as (session id, agent type, message id), ``token``: its
        worker-id lock) for while it starts and while its event loop is blocked."""
        ...

    async def aclose(self) -> None: ...
