"""Fault soak: random worker SIGKILLs, Redis restarts and CLIENT KILLs under a steady mixed load.

A redis-server of the soak's own on a free port of 127.0.0.1, with ``--appendonly yes
--appendfsync always`` (a restart loses nothing it acknowledged: the promise under test), and
WORKERS worker processes started through the CLI (``bench.agents.FaultSoakAgent``) with a short
lease, heartbeat and sweep. For ``--minutes`` (20) the soak keeps OUTSTANDING root tasks open over
SESSIONS sessions, a random mix of:

- plain: sleeps 0.05-3 s;
- call: 3 ``call_agent`` round trips to a child, one after another;
- group: one ``dispatch_group`` of 5 children, then ``collect_group_results``;
- ask: ``ask_user``; the soak answers with ``client.resume`` once the run has ended suspended;

and every FAULT_GAP_S seconds injects one fault at random: SIGKILL of a worker (replaced, under
the same worker id once its lock has expired, or under a new id), a Redis crash (SIGKILL) and
restart on the same port and data, or ``CLIENT KILL TYPE normal`` (every client's connections,
the soak's own included). Then the faults stop, every task sent must end, and a final batch of
each kind must complete on the surviving fleet.

Counted from the raw session streams (every entry, not deduplicated): runs (a ``running`` state
with sequence number 0 starts a run), results, the time each result was written (its entry id:
Redis's clock). A task is lost if it has no final result or its record has not ended at the end;
completed twice if it has more than one final result (or an ask more than one suspension);
re-run if it started more runs than it has (1, or 2 for an ask: the resume is a run).
Each parent's record must list exactly its children: a re-run parent replays its journaled
sub-calls and dispatches none twice. Recovery after a fault: the time from the fault to the next
result written (for a SIGKILL: of a task the killed worker held).

Prints markdown tables for docs/reliability.md. Exit status 1, with a loud message, the records
of the tasks concerned and the workers' warnings, on any lost (or unfinished) or twice-completed
task, any extra child, a final batch that did not all complete, or a worker that exited by itself.

Run from the project root:  .venv/bin/python bench/fault_soak.py [--minutes N]
"""

import argparse
import asyncio
import bisect
import contextvars
import itertools
import random
import re
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from redis.asyncio import Redis

if __package__ in (None, ""):  # run as a script: this checkout's bench and by_framework first
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.agents import FAULT_SOAK_AGENT_TYPE as AGENT
from bench.procs import Child, free_port, spawn, stop_children, stop_task, worker_command
from bench.session import BenchSession, bench_session
from bench.soak import held_by
from by_framework import (
    AgentState,
    GatewayClient,
    MessageHeader,
    NoOnlineWorkerError,
    SessionEvent,
    Settings,
    StateChangeEvent,
    TaskNotWaitingError,
    TaskResultEvent,
)
from by_framework.protocol import decode_event
from by_framework.protocol.records import TaskRecord
from by_framework.redis.engine import RedisEngine
from by_framework.redis.keys import KeySpace
from tests.support import DurableRedis

T = TypeVar("T")

WORKER_CLASS = "bench.agents.FaultSoakAgent"
WORKERS = 4
LEASE_S = 4.0
HEARTBEAT_S = 1.0
HEARTBEAT_TTL_S = 3.0
SWEEP_S = 1.0
MAX_CONCURRENCY = 20
SHUTDOWN_S = 5.0
FLAGS = [
    "--lease-seconds", str(LEASE_S),
    "--heartbeat-interval", str(HEARTBEAT_S),
    "--heartbeat-ttl", str(HEARTBEAT_TTL_S),
    "--sweep-interval", str(SWEEP_S),
    "--max-concurrency", str(MAX_CONCURRENCY),
    "--shutdown-timeout", str(SHUTDOWN_S),
]  # fmt: skip

DEFAULT_MINUTES = 20.0
SESSIONS = 20
OUTSTANDING = 24  # root tasks sent and not ended yet
KIND_WEIGHTS = {"plain": 0.45, "call": 0.2, "group": 0.15, "ask": 0.2}
PLAIN_S = (0.05, 3.0)
CHILD_S = (0.1, 0.5)
CALLS = 3
GROUP_SIZE = 5
CHILDREN = {"plain": 0, "call": CALLS, "group": GROUP_SIZE, "ask": 0}
RUNS = {"plain": 1, "call": 1, "group": 1, "ask": 2, "child": 1}  # an ask runs again on resume
ANSWER_S = (0.0, 1.0)  # the user takes this long to answer

SIGKILL, RESTART, CLIENT_KILL = "worker SIGKILL", "Redis restart", "CLIENT KILL"
FAULT_GAP_S = (4.0, 10.0)
REDIS_DOWN_S = (0.2, 1.5)  # under HEARTBEAT_TTL_S: online keys outlive the outage
SAME_ID_SHARE = 0.5

FINAL_PER_KIND = 10
DRAIN_TIMEOUT_S = 180.0
SETTLE_S = 3.0  # after the last end: room for a second completion to show up
RETRY_S = 0.2
MEMORY_EVERY_S = 2.0
READ_BLOCK_MS = 1_000
LOG_LINES = 8  # per problem task and per log, from the workers' logs
ALERT = re.compile(r" (WARNING|ERROR|CRITICAL) |Traceback")

TRANSIENT = RedisEngine.transient_errors


async def _retrying(call: Callable[[], Awaitable[T]]) -> T:
    """``call()``, tried again through connection loss (a Redis restart, a CLIENT KILL)."""
    while True:
        try:
            return await call()
        except TRANSIENT:
            await asyncio.sleep(RETRY_S)


def _entry_ms(stream_id: str) -> int:
    """When Redis wrote the entry (its id's milliseconds: this machine's clock)."""
    return int(stream_id.split("-", 1)[0])


def _now_ms() -> int:
    return int(time.time() * 1000)


# What the session streams say


@dataclass(slots=True)
class Ledger:
    """Every event of the session streams, per message id, undeduplicated."""

    runs: Counter[str] = field(default_factory=Counter)
    finals: Counter[str] = field(default_factory=Counter)  # completed, failed or cancelled
    suspended: Counter[str] = field(default_factory=Counter)  # waiting for the user
    errors: dict[str, str] = field(default_factory=dict)  # not completed: status and error
    ended_ms: dict[str, int] = field(default_factory=dict)  # first final result's entry
    results_ms: list[int] = field(default_factory=list)  # every final result's entry

    def add(self, item: SessionEvent) -> bool:
        """Count one event; True if it ends a run that waits for the user."""
        event, message_id = item.event, item.message_id
        if isinstance(event, StateChangeEvent):
            self.runs[message_id] += event.state == AgentState.RUNNING and item.seq == 0
            return False
        if not isinstance(event, TaskResultEvent):
            return False
        status = event.result.status
        if status is AgentState.WAITING_USER:
            self.suspended[message_id] += 1
            return True
        self.finals[message_id] += 1
        self.ended_ms.setdefault(message_id, _entry_ms(item.stream_id))
        self.results_ms.append(_entry_ms(item.stream_id))
        if status is not AgentState.COMPLETED:
            self.errors[message_id] = f"{status.value}: {event.result.error}"
        return False

    def next_result_ms(self, after_ms: int) -> int | None:
        """The first final result written after ``after_ms``."""
        ordered = sorted(self.results_ms)
        index = bisect.bisect_right(ordered, after_ms)
        return ordered[index] if index < len(ordered) else None


@dataclass(frozen=True, slots=True)
class Root:
    kind: str
    session: str
    final: bool  # part of the final batch, sent after the faults


@dataclass(frozen=True, slots=True)
class Fault:
    kind: str
    at_ms: int
    held: frozenset[str] = frozenset()  # SIGKILL: the tasks the worker held


@dataclass(slots=True)
class Soak:
    """The soak's state: what it sent, what it read, what it did."""

    keys: KeySpace
    ledger: Ledger = field(default_factory=Ledger)
    roots: dict[str, Root] = field(default_factory=dict)
    open: set[str] = field(default_factory=set)  # roots without a final result yet
    faults: list[Fault] = field(default_factory=list)
    resumes: "asyncio.Queue[tuple[str, str]]" = field(default_factory=asyncio.Queue)
    memory: list[int] = field(default_factory=list)  # used_memory samples

    def read(self, item: SessionEvent, session: str) -> None:
        if self.ledger.add(item):
            self.resumes.put_nowait((item.message_id, session))
        if item.message_id in self.ledger.finals:
            self.open.discard(item.message_id)


async def _follow(probe: Redis, soak: Soak, sessions: Sequence[str]) -> None:
    """Read every session stream from its start, forever, through outages."""
    streams = {soak.keys.session_data_stream(session): session for session in sessions}
    positions: dict[str, bytes | str] = dict.fromkeys(streams, "0-0")
    while True:
        try:
            reply = await probe.xread(positions, block=READ_BLOCK_MS)
        except TRANSIENT:
            await asyncio.sleep(RETRY_S)
            continue
        for stream, entries in reply or []:
            name = stream.decode()
            positions[name] = entries[-1][0]
            for entry_id, fields in entries:
                soak.read(decode_event(entry_id.decode(), fields), streams[name])


# The user: sends tasks, answers questions

_SENDING: contextvars.ContextVar[list[str]] = contextvars.ContextVar("sending")


class _NoteIds:
    """Interceptor: notes the message id of each send, so that a send whose reply was lost can be
    looked up instead of sent again."""

    async def before_send(self, command: Any, header: MessageHeader) -> tuple[Any, MessageHeader]:
        noted = _SENDING.get(None)
        if noted is not None:
            noted.append(header.message_id)
        return command, header


async def _send(client: GatewayClient, session: str, content: dict[str, Any]) -> str:
    """Queue one task through outages; its message id. A send that failed after its id was
    taken is looked up: the enqueue script records and queues a task in one step."""
    noted: list[str] = []
    _SENDING.set(noted)
    while True:
        try:
            return (await client.send_message(AGENT, session, content)).message_id
        except NoOnlineWorkerError:
            pass  # every worker's heartbeat key lapsed: they re-register within a heartbeat
        except TRANSIENT:
            if noted and await _retrying(lambda: client.get_task(noted[-1])) is not None:
                return noted[-1]
        await asyncio.sleep(RETRY_S)


def _content(kind: str, rng: random.Random) -> dict[str, Any]:
    child_s = round(rng.uniform(*CHILD_S), 2)
    if kind == "plain":
        return {"op": "plain", "sleep": round(rng.uniform(*PLAIN_S), 2)}
    if kind == "call":
        return {"op": "call", "calls": CALLS, "sleep": child_s}
    if kind == "group":
        return {"op": "group", "n": GROUP_SIZE, "sleep": child_s}
    return {"op": "ask"}


async def _send_root(
    client: GatewayClient, soak: Soak, kind: str, session: str, rng: random.Random, final: bool
) -> None:
    message_id = await _send(client, session, _content(kind, rng))
    soak.roots[message_id] = Root(kind, session, final)
    if message_id not in soak.ledger.finals:
        soak.open.add(message_id)


async def _load(
    client: GatewayClient, soak: Soak, sessions: Sequence[str], rng: random.Random, until: float
) -> None:
    """Keep OUTSTANDING root tasks open until ``until`` (monotonic): no send is cut off."""
    kinds, weights = list(KIND_WEIGHTS), list(KIND_WEIGHTS.values())
    for index in itertools.count():
        while len(soak.open) >= OUTSTANDING and time.monotonic() < until:
            await asyncio.sleep(0.02)
        if time.monotonic() >= until:
            return
        kind = rng.choices(kinds, weights)[0]
        await _send_root(client, soak, kind, sessions[index % len(sessions)], rng, False)


async def _answer(client: GatewayClient, soak: Soak, rng: random.Random) -> None:
    """Resume every task that asked the user, once its run has ended suspended, each after a
    pause of its own (the user thinking)."""
    answering: set[asyncio.Task[None]] = set()
    try:
        while True:
            message_id, session = await soak.resumes.get()
            pause = rng.uniform(*ANSWER_S)
            task = asyncio.create_task(_resume(client, message_id, session, pause))
            answering.add(task)
            task.add_done_callback(answering.discard)
    finally:
        for task in list(answering):
            await stop_task(task)


async def _resume(client: GatewayClient, message_id: str, session: str, pause: float) -> None:
    """One resume through outages; a resume whose reply was lost finds the task resumed."""
    await asyncio.sleep(pause)
    while True:
        try:
            await client.resume(message_id, session, "yes")
            return
        except TaskNotWaitingError:
            return
        except TRANSIENT:
            await asyncio.sleep(RETRY_S)


# The workers


class Fleet:
    """WORKERS worker processes; one that dies is replaced, under the same worker id once its
    lock expired or under a new one."""

    def __init__(self, session: BenchSession, rng: random.Random) -> None:
        self.session = session
        self.rng = rng
        self.members: dict[str, Child] = {}
        self.started: list[Child] = []  # every process, for the logs and the final stop
        self.restarts: Counter[str] = Counter()  # "same id", "new id"
        self.unexpected: list[str] = []  # exits the soak did not cause: id, status, log tail
        self.replacing: set[asyncio.Task[None]] = set()
        self._ids = 0

    def start(self, worker_id: str | None = None) -> None:
        if worker_id is None:
            worker_id, self._ids = f"fs-w{self._ids}", self._ids + 1
        command = worker_command(
            self.session.url, self.session.prefix, WORKER_CLASS, worker_id, FLAGS
        )
        log = self.session.logs / f"{worker_id}.{len(self.started)}.log"
        child = spawn(worker_id, command, log)
        self.members[worker_id] = child
        self.started.append(child)

    @property
    def full(self) -> bool:
        return not self.replacing and len(self.members) == WORKERS

    async def kill(self, probe: Redis, keys: KeySpace) -> Child:
        """SIGKILL a random member and have it replaced in the background."""
        victim = self.members.pop(self.rng.choice(sorted(self.members)))
        victim.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(victim.process.wait, 10)
        task = asyncio.create_task(self._replace(victim.name, probe, keys))
        self.replacing.add(task)
        task.add_done_callback(self.replacing.discard)
        return victim

    async def _replace(self, worker_id: str, probe: Redis, keys: KeySpace) -> None:
        if self.rng.random() < SAME_ID_SHARE:
            while await _retrying(lambda: probe.exists(keys.worker_lock(worker_id))):
                await asyncio.sleep(RETRY_S)
            self.restarts["same id"] += 1
            self.start(worker_id)
        else:
            self.restarts["new id"] += 1
            self.start()

    def check(self) -> None:
        """Replace (new id) a member that exited by itself, and note it."""
        for worker_id, child in list(self.members.items()):
            if child.process.poll() is not None:
                del self.members[worker_id]
                self.unexpected.append(
                    f"{worker_id} exited with status {child.process.returncode}:\n"
                    f"{child.log_tail()}"
                )
                self.start()

    def stop(self) -> None:
        for task in self.replacing:
            task.cancel()
        stop_children(self.started)


async def _watch(fleet: Fleet) -> None:
    while True:
        fleet.check()
        await asyncio.sleep(0.5)


# Faults


async def _kill_worker(fleet: Fleet, probe: Redis, keys: KeySpace) -> Fault:
    victim = await fleet.kill(probe, keys)
    at_ms = _now_ms()
    control = keys.agent_type_stream(AGENT)
    held = await _retrying(lambda: held_by(probe, control, victim.name))
    return Fault(SIGKILL, at_ms, frozenset(held))


async def _restart_redis(server: DurableRedis, rng: random.Random) -> Fault:
    at_ms = _now_ms()
    await asyncio.to_thread(server.crash)
    await asyncio.sleep(rng.uniform(*REDIS_DOWN_S))
    await asyncio.to_thread(server.start)
    return Fault(RESTART, at_ms)


async def _kill_clients(probe: Redis) -> Fault:
    at_ms = _now_ms()
    await _retrying(lambda: probe.client_kill_filter(_type="normal", skipme=True))
    return Fault(CLIENT_KILL, at_ms)


async def _inject(
    soak: Soak, fleet: Fleet, server: DurableRedis, probe: Redis, rng: random.Random, until: float
) -> None:
    """One random fault every FAULT_GAP_S until ``until`` (monotonic), a SIGKILL only while the
    fleet is full; never cut off (a Redis restart always ends with Redis up)."""
    while True:
        await asyncio.sleep(rng.uniform(*FAULT_GAP_S))
        if time.monotonic() >= until:
            return
        kinds = [SIGKILL, RESTART, CLIENT_KILL] if fleet.full else [RESTART, CLIENT_KILL]
        kind = rng.choice(kinds)
        if kind == SIGKILL:
            fault = await _kill_worker(fleet, probe, soak.keys)
        elif kind == RESTART:
            fault = await _restart_redis(server, rng)
        else:
            fault = await _kill_clients(probe)
        soak.faults.append(fault)


async def _sample_memory(probe: Redis, soak: Soak) -> None:
    while True:
        try:
            soak.memory.append(int((await probe.info("memory"))["used_memory"]))
        except TRANSIENT:
            pass
        await asyncio.sleep(MEMORY_EVERY_S)


# The run


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the soak found once every task had its chance to end."""

    soak: Soak
    records: dict[str, TaskRecord | None]  # every root and child, read at the end
    children: dict[str, list[str]]  # root -> its children's ids (its record's list)
    fleet: Fleet
    keys: int
    minutes: float
    drained: bool  # every task sent under faults ended within DRAIN_TIMEOUT_S
    final_done: bool  # the final batch ended within DRAIN_TIMEOUT_S


async def _until(condition: Callable[[], bool], timeout: float) -> bool:
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.1)
    except TimeoutError:
        return False
    return True


async def _read_records(client: GatewayClient, ids: Iterable[str]) -> dict[str, TaskRecord | None]:
    wanted = list(ids)
    records: dict[str, TaskRecord | None] = {}
    for first in range(0, len(wanted), 100):
        batch = wanted[first : first + 100]
        found = await asyncio.gather(*(_retrying(lambda m=m: client.get_task(m)) for m in batch))
        records.update(zip(batch, found, strict=True))
    return records


async def _final_batch(client: GatewayClient, soak: Soak, sessions: Sequence[str]) -> bool:
    rng = random.Random(1)
    for index in range(FINAL_PER_KIND * len(KIND_WEIGHTS)):
        kind = list(KIND_WEIGHTS)[index % len(KIND_WEIGHTS)]
        await _send_root(client, soak, kind, sessions[index % len(sessions)], rng, True)
    return await _until(lambda: not soak.open, DRAIN_TIMEOUT_S)


async def _run(session: BenchSession, server: DurableRedis, minutes: float) -> Outcome:
    rng = random.Random()
    soak = Soak(KeySpace(session.prefix))
    sessions = [f"fs-{index}" for index in range(SESSIONS)]
    client = GatewayClient.connect(
        Settings.resolve(redis_url=session.url, key_prefix=session.prefix)
    )
    client.add_interceptor(_NoteIds())
    probe = Redis.from_url(session.url)
    fleet = Fleet(session, rng)
    duties: list[asyncio.Task[None]] = []
    try:
        for _ in range(WORKERS):
            fleet.start()
        duties += [
            asyncio.create_task(_follow(probe, soak, sessions)),
            asyncio.create_task(_answer(client, soak, rng)),
            asyncio.create_task(_watch(fleet)),
            asyncio.create_task(_sample_memory(probe, soak)),
        ]
        until = time.monotonic() + minutes * 60
        await asyncio.gather(
            _load(client, soak, sessions, rng, until),
            _inject(soak, fleet, server, probe, rng, until),
        )
        await _until(lambda: fleet.full, DRAIN_TIMEOUT_S)
        drained = await _until(lambda: not soak.open, DRAIN_TIMEOUT_S)
        final_done = await _final_batch(client, soak, sessions)
        await asyncio.sleep(SETTLE_S)
        roots = await _read_records(client, soak.roots)
        children = {m: list(r.children) if r else [] for m, r in roots.items()}
        kids = await _read_records(client, (c for ids in children.values() for c in ids))
        keys = int(await _retrying(probe.dbsize))
    finally:
        for duty in duties:
            await stop_task(duty)
        await asyncio.to_thread(fleet.stop)
        await client.aclose()
        await probe.aclose()
    records = {**roots, **kids}
    return Outcome(soak, records, children, fleet, keys, minutes, drained, final_done)


# The report


@dataclass(slots=True)
class Row:
    sent: int = 0
    completed: int = 0
    failed: int = 0
    lost: int = 0
    twice: int = 0
    rerun: int = 0
    extra_children: int = 0

    def cells(self) -> list[str]:
        return [f"{getattr(self, name):,}" for name in Row.__slots__]


def _count(row: Row, outcome: Outcome, message_id: str, kind: str) -> None:
    ledger = outcome.soak.ledger
    record = outcome.records.get(message_id)
    row.sent += 1
    if ledger.finals[message_id] == 0 or record is None or not record.status.is_terminal:
        row.lost += 1
    elif message_id in ledger.errors:
        row.failed += 1
    else:
        row.completed += 1
    row.twice += ledger.finals[message_id] > 1 or ledger.suspended[message_id] > 1
    row.rerun += ledger.runs[message_id] > RUNS[kind]
    if kind in CHILDREN:
        row.extra_children += max(0, len(outcome.children[message_id]) - CHILDREN[kind])


def _rows(outcome: Outcome) -> dict[str, Row]:
    rows = {kind: Row() for kind in [*KIND_WEIGHTS, "child", "final batch"]}
    for message_id, root in outcome.soak.roots.items():
        _count(rows["final batch" if root.final else root.kind], outcome, message_id, root.kind)
        for child in outcome.children[message_id]:
            _count(rows["child"], outcome, child, "child")
    return rows


def _recoveries(outcome: Outcome, kind: str) -> list[float]:
    ledger = outcome.soak.ledger
    seconds = []
    for fault in outcome.soak.faults:
        if fault.kind != kind:
            continue
        if kind == SIGKILL:
            ends = [ledger.ended_ms[m] for m in fault.held if m in ledger.ended_ms]
            after = [end for end in ends if end > fault.at_ms]
            first = min(after) if after else None
        else:
            first = ledger.next_result_ms(fault.at_ms)
        if first is not None:
            seconds.append((first - fault.at_ms) / 1000)
    return seconds


def _md(cells: Sequence[Sequence[str]]) -> list[str]:
    rule = ["---" for _ in cells[0]]
    return ["| " + " | ".join(row) + " |" for row in [cells[0], rule, *cells[1:]]]


def _fault_lines(outcome: Outcome) -> list[str]:
    restarts = outcome.fleet.restarts
    labels = {
        SIGKILL: f"worker SIGKILL (replaced: {restarts['same id']} under the same id once its "
        f"lock expired, {restarts['new id']} under a new id)",
        RESTART: f"Redis SIGKILL + restart, down {REDIS_DOWN_S[0]:g}-{REDIS_DOWN_S[1]:g} s",
        CLIENT_KILL: "`CLIENT KILL TYPE normal` (workers' and client's connections)",
    }
    kinds = Counter(fault.kind for fault in outcome.soak.faults)
    cells = [["fault", "injected", "recovery median", "recovery max"]]
    for kind, label in labels.items():
        times = _recoveries(outcome, kind)
        median = f"{statistics.median(times):.2f} s" if times else "-"
        worst = f"{max(times):.2f} s" if times else "-"
        cells.append([label, str(kinds[kind]), median, worst])
    return _md(cells)


def _task_lines(rows: dict[str, Row]) -> list[str]:
    labels = {
        "plain": f"plain ({PLAIN_S[0]:g}-{PLAIN_S[1]:g} s)",
        "call": f"call ({CALLS} `call_agent` round trips)",
        "group": f"group (`dispatch_group` of {GROUP_SIZE}, `collect_group_results`)",
        "ask": "ask (`ask_user`, then `client.resume`)",
        "child": f"children of call and group ({CHILD_S[0]:g}-{CHILD_S[1]:g} s)",
        "final batch": f"final batch after the faults ({FINAL_PER_KIND} of each kind)",
    }
    header = ["tasks", "sent", "completed", "failed", "lost", "completed twice", "rerun"]
    header.append("extra children")
    total = Row()
    for row in rows.values():
        for name in Row.__slots__:
            setattr(total, name, getattr(total, name) + getattr(row, name))
    cells = [header, *([labels[kind], *row.cells()] for kind, row in rows.items())]
    return _md([*cells, ["total", *total.cells()]])


def _size(value: int) -> str:
    return f"{value / 2**20:.1f} MiB"


def _report(outcome: Outcome, session: BenchSession) -> list[str]:
    memory = outcome.soak.memory or [0]
    return [
        f"### Fault soak: {outcome.minutes:g} min, {session.machine}",
        "",
        f"`make fault-soak` (`bench/fault_soak.py`). Redis of its own with `appendonly yes`, "
        "`appendfsync always`: a restart loses nothing it acknowledged. "
        f"{WORKERS} workers (lease {LEASE_S:g} s, heartbeat {HEARTBEAT_S:g} s / TTL "
        f"{HEARTBEAT_TTL_S:g} s, sweep {SWEEP_S:g} s, max_concurrency {MAX_CONCURRENCY}), "
        f"{OUTSTANDING} root tasks open at once over {SESSIONS} sessions, one fault every "
        f"{FAULT_GAP_S[0]:g}-{FAULT_GAP_S[1]:g} s. Recovery: fault -> next result written "
        "(SIGKILL: of a task the killed worker held).",
        "",
        *_fault_lines(outcome),
        "",
        *_task_lines(_rows(outcome)),
        "",
        f"Redis `used_memory`: first {_size(memory[0])}, highest {_size(max(memory))}, last "
        f"{_size(memory[-1])} ({outcome.keys:,} keys at the end). Worker restarts: "
        f"{sum(outcome.fleet.restarts.values())}; workers that exited by themselves: "
        f"{len(outcome.fleet.unexpected)}.",
        *_failure_lines(outcome),
    ]


def _failure_lines(outcome: Outcome) -> list[str]:
    """Why tasks failed, most frequent first."""
    reasons = Counter(outcome.soak.ledger.errors.values())
    return [f"Failed: {count} x {reason}" for reason, count in reasons.most_common(5)]


def _problems(outcome: Outcome) -> tuple[list[str], set[str]]:
    """What breaks the promises, and the tasks concerned."""
    rows = _rows(outcome)
    ledger = outcome.soak.ledger
    problems, concerned = [], set()
    for kind, row in rows.items():
        if row.lost or row.twice or row.extra_children:
            problems.append(
                f"{kind}: {row.lost} lost (not ended), {row.twice} completed twice, "
                f"{row.extra_children} extra children"
            )
    for message_id, record in outcome.records.items():
        once = ledger.finals[message_id] == 1 and ledger.suspended[message_id] <= 1
        if record is None or not record.status.is_terminal or not once:
            concerned.add(message_id)
    if not outcome.drained:
        problems.append(f"the tasks sent under faults did not all end within {DRAIN_TIMEOUT_S:g} s")
    if not outcome.final_done:
        problems.append("the final batch did not complete on the surviving fleet")
    final = rows["final batch"]
    if final.completed != final.sent:
        problems.append(f"final batch: {final.completed} of {final.sent} completed")
    problems += [f"a worker exited by itself: {text}" for text in outcome.fleet.unexpected]
    return problems, concerned


def _diagnose(outcome: Outcome, concerned: set[str], logs: Path) -> list[str]:
    """For each task concerned: its kind, record and the workers' log lines naming it; then each
    worker log's warnings and errors."""
    lines = []
    texts = {path.name: path.read_text(errors="replace") for path in sorted(logs.glob("*.log"))}
    for message_id in sorted(concerned)[:20]:
        root = outcome.soak.roots.get(message_id)
        record = outcome.records.get(message_id)
        finals = outcome.soak.ledger.finals[message_id]
        lines.append(
            f"{message_id} ({root.kind if root else 'child'}): {_state(record)}; "
            f"{finals} final results"
        )
        for name, text in texts.items():
            hits = [line for line in text.splitlines() if message_id in line][:LOG_LINES]
            lines += [f"    {name}: {line}" for line in hits]
    for name, text in texts.items():
        alerts = [line for line in text.splitlines() if ALERT.search(line)][-LOG_LINES:]
        lines += [f"{name} (last warnings):", *(f"    {line}" for line in alerts)] if alerts else []
    return lines


def _state(record: TaskRecord | None) -> str:
    if record is None:
        return "no record"
    timeline = ", ".join(state.value for state, _ in record.timeline)
    return (
        f"{record.status.value} on {record.worker_id}, {record.delivery_count} deliveries, "
        f"timeline {timeline}, error {record.error}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    help_text = f"minutes of faults ({DEFAULT_MINUTES:g})"
    parser.add_argument("--minutes", type=float, default=DEFAULT_MINUTES, help=help_text)
    minutes = parser.parse_args().minutes
    if minutes <= 0:
        parser.error("--minutes must be above 0")
    with tempfile.TemporaryDirectory(prefix="by-framework-fault-soak-") as data:
        server = DurableRedis(Path(data), free_port())

        def own_redis() -> tuple[str, Callable[[], None]]:
            server.start()
            return server.url, server.crash

        with bench_session("fault-soak", own_redis) as session:
            outcome = asyncio.run(_run(session, server, minutes))
            print("\n".join(_report(outcome, session)))
            problems, concerned = _problems(outcome)
            if problems:
                print("\n".join(_diagnose(outcome, concerned, session.logs)), file=sys.stderr)
    if problems:
        print("\n" + "!" * 72, file=sys.stderr)
        for problem in problems:
            print(f"!!! FAULT SOAK FAILED: {problem}", file=sys.stderr)
        print("!" * 72, file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
