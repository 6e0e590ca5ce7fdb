"""Soak benchmark: Redis memory under load and after retention, and recovery after a SIGKILL.

One run on the real Redis (REDIS_URL, else 127.0.0.1:6379, else an embedded redis-server; only a
Redis on this machine is accepted), under a key prefix of its own whose keys are deleted at the
end. Workers are real processes started through the CLI; every one is stopped before the run ends.

1. Memory under load and after retention. 2 workers (``bench.agents.NoopAgent``) with short
   retention, ``BYAI_RECORD_TTL=20`` and ``BYAI_DATA_STREAM_TTL=20`` (the CLI has no flags for
   these; every setting resolves from its environment variable), and ``--sweep-interval 1``. The
   bench sends N no-op tasks (100,000; 10,000 with --quick) over 100 sessions, at most 500
   outstanding (sent, end not read yet), and follows the session streams for every task's end.
   Reported: tasks/s (first send -> last end read); Redis ``used_memory`` before, at its highest
   during the soak (sampled every 0.2 s), at the end, retention + 5 s after the end and once the
   workers have stopped; at each point the key count, the bytes (MEMORY USAGE) and the control
   stream's XLEN under the run's prefix, and the workers' RSS; the memory retained per task,
   (peak - before) / N. ``used_memory`` is the whole server's: other clients of a shared Redis move
   it too; the prefix columns are this run's alone.
2. Recovery after SIGKILL. 3 workers (``SleepyAgent`` below: sleeps ``content["sleep"]`` seconds)
   with ``--lease-seconds 5 --sweep-interval 1 --heartbeat-interval 1 --heartbeat-ttl 3`` (a lease
   must exceed two heartbeat intervals), retention left at its defaults. 300 tasks of 1 s over 30
   sessions; once all 3 workers hold tasks and half a task has passed, one is SIGKILLed.
   Reported, from the raw session streams: kill -> first completion of a task the killed worker
   held (its pending entries, read with XPENDING right after the kill); kill -> every task
   completed; lost (no result event), duplicated (more than one result event), failed, re-run,
   and entries still pending. A lost, duplicated or failed task, or an entry left pending: a loud
   message and exit status 1.

Run from the project root:  .venv/bin/python bench/soak.py [--tasks N] [--quick]
"""

import argparse
import asyncio
import contextlib
import functools
import json
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

if __package__ in (None, ""):  # run as a script: this checkout's bench and by_framework first
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.procs import (
    BenchError,
    Child,
    children,
    stop_children,
    stop_task,
    wait_ready,
    worker_command,
)
from bench.session import bench_session
from by_framework import (
    AgentContext,
    AgentState,
    GatewayClient,
    GatewayWorker,
    SessionEvent,
    Settings,
    StateChangeEvent,
    TaskEndEvent,
    TaskResultEvent,
)
from by_framework.protocol import decode_event
from by_framework.redis.keys import KeySpace

GROUP = str(Settings.model_fields["consumer_group"].default)

# Part 1: memory
NOOP_WORKER_CLASS = "bench.agents.NoopAgent"
NOOP_AGENT_TYPE = "bench-noop"
MEMORY_WORKERS = 2
DEFAULT_TASKS = 100_000
QUICK_TASKS = 10_000
SESSIONS = 100
OUTSTANDING = 500
SEND_CONCURRENCY = 200
RETENTION_S = 20
SWEEP_S = 1.0
RETENTION_MARGIN_S = 5.0
SAMPLE_EVERY_S = 0.2

# Part 2: recovery
SLEEPY_WORKER_CLASS = "bench.soak.SleepyAgent"
SLEEPY_AGENT_TYPE = "bench-sleepy"
KILL_WORKERS = 3
KILL_TASKS = 300
KILL_SESSIONS = 30
TASK_S = 1.0
LEASE_S = 5.0
HEARTBEAT_S = 1.0
HEARTBEAT_TTL_S = 3.0
MAX_CONCURRENCY = int(Settings.model_fields["max_concurrency"].default)
BUSY_TIMEOUT_S = 15.0
RECOVERY_TIMEOUT_S = 60.0
SETTLE_S = 3.0  # after the last end: room for a duplicate run to show up

WORKER_SHUTDOWN_S = 5.0
SCAN_BATCH = 1_000


class SleepyAgent(GatewayWorker):
    """Sleeps ``content["sleep"]`` seconds (1 by default), streams its worker id and completes."""

    def get_agent_types(self) -> list[str]:
        return [SLEEPY_AGENT_TYPE]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        content = command.content
        seconds = content.get("sleep", TASK_S) if isinstance(content, dict) else TASK_S
        await asyncio.sleep(float(seconds))
        await context.emit_chunk(context.worker_id)
        return {"status": "completed", "content": {"worker": context.worker_id}}


# Worker processes


@contextlib.contextmanager
def _workers(
    url: str,
    prefix: str,
    worker_class: str,
    worker_ids: Sequence[str],
    logs: Path,
    *,
    env: dict[str, str],
    flags: Sequence[str],
) -> Iterator[list[Child]]:
    """One CLI worker process per id; whichever still run are stopped (SIGTERM) on exit."""
    options = ["--shutdown-timeout", str(WORKER_SHUTDOWN_S), *flags]
    commands = {
        worker_id: worker_command(url, prefix, worker_class, worker_id, options)
        for worker_id in worker_ids
    }
    with children(commands, logs, env) as started:
        yield started


async def _wait_online(client: GatewayClient, children: Sequence[Child]) -> None:
    for child in children:
        await wait_ready(functools.partial(client.registry.is_online, child.name), children)


def _rss(child: Child) -> int | None:
    """Resident set size of a running child, in bytes (Linux /proc), else None."""
    try:
        status = Path(f"/proc/{child.process.pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return None


# Part 1: memory under load and after retention


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Redis memory and what the run's prefix holds at one point."""

    used_memory: int
    keys: int
    key_bytes: int
    control_len: int
    kinds: Counter[str]
    rss: tuple[int | None, ...]


@dataclass(frozen=True, slots=True)
class MemoryReport:
    tasks: int
    elapsed: float
    statuses: Counter[str]
    before: Snapshot
    peak: int
    halfway_rss: tuple[int | None, ...]  # the workers' RSS once half the tasks had ended
    end: Snapshot
    retained: Snapshot
    stopped: Snapshot

    @property
    def per_task(self) -> float:
        return (self.peak - self.before.used_memory) / self.tasks

    @property
    def prefix_per_task(self) -> float:
        return (self.end.key_bytes - self.before.key_bytes) / self.tasks


@dataclass(slots=True)
class Peak:
    value: int


async def _used_memory(probe: Redis) -> int:
    return int((await probe.info("memory"))["used_memory"])


async def _sample_peak(probe: Redis, peak: Peak) -> None:
    while True:
        peak.value = max(peak.value, await _used_memory(probe))
        await asyncio.sleep(SAMPLE_EVERY_S)


async def _snapshot(probe: Redis, prefix: str, control: str, children: Sequence[Child]) -> Snapshot:
    used = await _used_memory(probe)  # first: the figure of this very moment
    keys = [key async for key in probe.scan_iter(match=f"{prefix}:*", count=SCAN_BATCH)]
    size = 0
    for first in range(0, len(keys), SCAN_BATCH):
        pipe = probe.pipeline(transaction=False)
        for key in keys[first : first + SCAN_BATCH]:
            pipe.memory_usage(key, samples=0)
        size += sum(usage or 0 for usage in await pipe.execute())  # None: expired meanwhile
    kinds = Counter(_kind(key.decode(), prefix) for key in keys)
    rss = tuple(_rss(child) for child in children)
    return Snapshot(used, len(keys), size, await probe.xlen(control), kinds, rss)


def _kind(key: str, prefix: str) -> str:
    """The key's pattern: ``session:*:registry``, ``task:*``, ``ctrl:agent_type:*``..."""
    parts = key.removeprefix(prefix + ":").split(":")
    if parts[0] == "session":
        return f"session:*:{parts[-1]}"
    return ":".join(parts[:-1]) + ":*" if len(parts) > 1 else parts[0]


async def _soak(
    client: GatewayClient, tasks: int, at_half: Callable[[], None]
) -> tuple[float, Counter[str]]:
    """Send ``tasks`` no-op tasks (at most OUTSTANDING without their end read); seconds from the
    first send to the last end read, and the tasks' end statuses. ``at_half`` is called once
    half of them have ended."""
    sessions = [f"soak-{index}" for index in range(SESSIONS)]
    slots = asyncio.Semaphore(OUTSTANDING)
    statuses: Counter[str] = Counter()
    indexes = iter(range(tasks))

    async def sender() -> None:
        for index in indexes:
            await slots.acquire()
            await client.send_message(NOOP_AGENT_TYPE, sessions[index % SESSIONS], "x")

    async def reader(session: str, expected: int) -> None:
        ends = 0
        if expected == 0:
            return
        async for item in client.events(session):
            if isinstance(item.event, TaskEndEvent):
                statuses[item.event.status] += 1
                if statuses.total() == tasks // 2:
                    at_half()
                slots.release()
                ends += 1
                if ends == expected:
                    return

    timeout = 60 + tasks / 500  # 500 tasks/s at the very least
    start = time.perf_counter()
    try:
        async with asyncio.timeout(timeout), asyncio.TaskGroup() as group:
            for offset, session in enumerate(sessions):
                group.create_task(reader(session, len(range(offset, tasks, SESSIONS))))
            for _ in range(SEND_CONCURRENCY):
                group.create_task(sender())
    except TimeoutError:
        done = sum(statuses.values())
        raise BenchError(f"soak: {done} of {tasks} tasks ended within {timeout:g} s") from None
    return time.perf_counter() - start, statuses


async def _memory_part(url: str, prefix: str, tasks: int, children: list[Child]) -> MemoryReport:
    settings = Settings.resolve(
        redis_url=url,
        key_prefix=prefix,
        record_ttl=RETENTION_S,  # the client's enqueue sets the first TTL of a task's keys
        data_stream_ttl=RETENTION_S,
        redis_max_connections=SESSIONS + 20,  # a blocked XREAD per session, plus the sends
    )
    client = GatewayClient.connect(settings)
    probe = Redis.from_url(url)
    control = KeySpace(prefix).agent_type_stream(NOOP_AGENT_TYPE)
    snapshot = functools.partial(_snapshot, probe, prefix, control, children)
    try:
        await _wait_online(client, children)
        before = await snapshot()
        peak = Peak(before.used_memory)
        halfway: list[tuple[int | None, ...]] = []
        sampler = asyncio.create_task(_sample_peak(probe, peak))

        def at_half() -> None:
            halfway.append(tuple(_rss(child) for child in children))

        try:
            elapsed, statuses = await _soak(client, tasks, at_half)
        finally:
            await stop_task(sampler)
        done = time.monotonic()
        end = await snapshot()
        peak.value = max(peak.value, end.used_memory)
        await asyncio.sleep(max(0.0, done + RETENTION_S + RETENTION_MARGIN_S - time.monotonic()))
        retained = await snapshot()
        await asyncio.to_thread(stop_children, children)
        stopped = await snapshot()
    finally:
        await client.aclose()
        await probe.aclose()
    halfway_rss = halfway[0] if halfway else ()
    return MemoryReport(
        tasks, elapsed, statuses, before, peak.value, halfway_rss, end, retained, stopped
    )


def _run_memory(url: str, prefix: str, tasks: int, logs: Path) -> MemoryReport:
    env = {"BYAI_RECORD_TTL": str(RETENTION_S), "BYAI_DATA_STREAM_TTL": str(RETENTION_S)}
    flags = ["--sweep-interval", str(SWEEP_S)]
    ids = [f"soak-mem-{index}" for index in range(MEMORY_WORKERS)]
    with _workers(url, prefix, NOOP_WORKER_CLASS, ids, logs, env=env, flags=flags) as children:
        return asyncio.run(_memory_part(url, prefix, tasks, children))


# Part 2: recovery after SIGKILL


@dataclass(slots=True)
class Tally:
    """What the session streams say, per message id."""

    runs: Counter[str] = field(default_factory=Counter)
    results: Counter[str] = field(default_factory=Counter)
    failed: set[str] = field(default_factory=set)
    ended_at: dict[str, float] = field(default_factory=dict)  # first end read (perf_counter)

    def add(self, item: SessionEvent, at: float) -> None:
        event, message_id = item.event, item.message_id
        if isinstance(event, StateChangeEvent) and event.state == AgentState.RUNNING:
            self.runs[message_id] += 1
        elif isinstance(event, TaskResultEvent):
            self.results[message_id] += 1
            if event.result.status is not AgentState.COMPLETED:
                self.failed.add(message_id)
        elif isinstance(event, TaskEndEvent):
            self.ended_at.setdefault(message_id, at)


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    victim: str
    held: int  # tasks the killed worker held (pending) when it died
    killed_after: float  # seconds from the first send to the kill
    first_reclaimed: float | None  # kill -> first end of a held task
    all_done: float | None  # kill -> last end, None if some task never ended
    sent: int
    completed: int
    lost: int
    duplicated: int
    failed: int
    rerun: int
    pending: int

    @property
    def ok(self) -> bool:
        return (self.lost, self.duplicated, self.failed, self.pending) == (0, 0, 0, 0)


async def _follow(probe: Redis, streams: Sequence[str], tally: Tally) -> None:
    """Every event of the streams, undeduplicated (a repeated result must show), into ``tally``."""
    positions: dict[str, bytes | str] = dict.fromkeys(streams, "0-0")
    while True:
        reply = await probe.xread(positions, block=500)
        at = time.perf_counter()
        for stream, entries in reply or []:
            positions[stream.decode()] = entries[-1][0]
            for entry_id, fields in entries:
                tally.add(decode_event(entry_id.decode(), fields), at)


async def _wait_busy(probe: Redis, control: str, names: set[str]) -> None:
    """Until every named consumer holds at least one entry of the control stream."""
    try:
        async with asyncio.timeout(BUSY_TIMEOUT_S):
            while True:
                summary = await probe.xpending(control, GROUP)
                busy = {row["name"].decode() for row in summary["consumers"] if row["pending"]}
                if names <= busy:
                    return
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise BenchError(f"not every worker held a task within {BUSY_TIMEOUT_S:g} s") from None


async def held_by(probe: Redis, control: str, consumer: str) -> set[str]:
    """Message ids of the control entries pending for ``consumer``."""
    rows = await probe.xpending_range(control, GROUP, "-", "+", 10_000, consumername=consumer)
    pipe = probe.pipeline(transaction=False)
    for row in rows:
        pipe.xrange(control, row["message_id"], row["message_id"], count=1)
    held = set()
    for entries in await pipe.execute():
        for _, fields in entries:
            held.add(json.loads(fields[b"e"])["header"]["message_id"])
    return held


async def _wait_ended(tally: Tally, wanted: set[str]) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(RECOVERY_TIMEOUT_S):
            while not wanted <= tally.ended_at.keys():
                await asyncio.sleep(0.02)


async def _recovery_part(url: str, prefix: str, children: list[Child]) -> RecoveryReport:
    client = GatewayClient.connect(Settings.resolve(redis_url=url, key_prefix=prefix))
    probe = Redis.from_url(url)
    keys = KeySpace(prefix)
    control = keys.agent_type_stream(SLEEPY_AGENT_TYPE)
    sessions = [f"kill-{index}" for index in range(KILL_SESSIONS)]
    tally = Tally()
    streams = [keys.session_data_stream(session) for session in sessions]
    follower: asyncio.Task[None] | None = None
    try:
        await _wait_online(client, children)
        follower = asyncio.create_task(_follow(probe, streams, tally))
        started = time.perf_counter()
        sends = await asyncio.gather(
            *(
                client.send_message(
                    SLEEPY_AGENT_TYPE, sessions[index % KILL_SESSIONS], {"sleep": TASK_S}
                )
                for index in range(KILL_TASKS)
            )
        )
        await _wait_busy(probe, control, {child.name for child in children})
        await asyncio.sleep(TASK_S / 2)  # the held tasks are running, not just read
        victim = children[0]
        victim.process.send_signal(signal.SIGKILL)
        killed_at = time.perf_counter()
        await asyncio.to_thread(victim.process.wait, 10)
        held = await held_by(probe, control, victim.name)
        if not held:
            raise BenchError(f"{victim.name} held no task when it was killed")
        wanted = {sent.message_id for sent in sends}
        await _wait_ended(tally, wanted)
        await asyncio.sleep(SETTLE_S)
        pending = int((await probe.xpending(control, GROUP))["pending"])
    finally:
        if follower is not None:
            await stop_task(follower)
        await client.aclose()
        await probe.aclose()
    ended = [tally.ended_at[message] for message in wanted if message in tally.ended_at]
    held_ends = [tally.ended_at[message] for message in held if message in tally.ended_at]
    lost = wanted - tally.results.keys()
    return RecoveryReport(
        victim=victim.name,
        held=len(held),
        killed_after=killed_at - started,
        first_reclaimed=min(held_ends) - killed_at if held_ends else None,
        all_done=max(ended) - killed_at if len(ended) == len(wanted) else None,
        sent=len(wanted),
        completed=len(wanted - lost - tally.failed),
        lost=len(lost),
        duplicated=sum(1 for message in wanted if tally.results[message] > 1),
        failed=len(wanted & tally.failed),
        rerun=sum(1 for message in wanted if tally.runs[message] > 1),
        pending=pending,
    )


def _run_recovery(url: str, prefix: str, logs: Path) -> RecoveryReport:
    flags = [
        "--lease-seconds", str(LEASE_S),
        "--sweep-interval", str(SWEEP_S),
        "--heartbeat-interval", str(HEARTBEAT_S),
        "--heartbeat-ttl", str(HEARTBEAT_TTL_S),
    ]  # fmt: skip
    ids = [f"soak-kill-{index}" for index in range(KILL_WORKERS)]
    with _workers(url, prefix, SLEEPY_WORKER_CLASS, ids, logs, env={}, flags=flags) as children:
        return asyncio.run(_recovery_part(url, prefix, children))


# Report


def _size(value: float, *, signed: bool = False) -> str:
    sign = "+" if signed and value >= 0 else ""
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if abs(value) >= scale:
            return f"{sign}{value / scale:,.1f} {unit}"
    return f"{sign}{value:,.0f} B"


def _rss_cell(rss: Sequence[int | None]) -> str:
    alive = [value for value in rss if value is not None]
    return " / ".join(f"{value / 2**20:.0f}" for value in alive) + " MiB" if alive else "-"


def _table(cells: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned first column, right-aligned others, a rule under the header."""
    widths = [max(len(row[column]) for row in cells) for column in range(len(cells[0]))]

    def render(row: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(width) if column == 0 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    rule = ["-" * width for width in widths]
    return [render(cells[0]), render(rule), *(render(row) for row in cells[1:])]


def _memory_lines(report: MemoryReport) -> list[str]:
    base = report.before.used_memory
    header = ("point", "used_memory", "vs before", "keys", "key bytes", "ctrl XLEN", "worker RSS")
    cells: list[Sequence[str]] = [header]
    wait = RETENTION_S + RETENTION_MARGIN_S
    points = (
        ("before the soak", report.before),
        ("end of the soak", report.end),
        (f"end + {wait:g} s (retention)", report.retained),
        ("workers stopped", report.stopped),
    )
    for name, snap in points:
        cells.append(
            (
                name,
                _size(snap.used_memory),
                _size(snap.used_memory - base, signed=True),
                f"{snap.keys:,}",
                _size(snap.key_bytes),
                f"{snap.control_len:,}",
                _rss_cell(snap.rss),
            )
        )
        if snap is report.before:
            peak = report.peak
            cells.append(
                ("highest during the soak", _size(peak), _size(peak - base, signed=True))
                + ("",) * 4
            )
    completed = report.statuses.get(AgentState.COMPLETED.value, 0)
    others = {status: n for status, n in report.statuses.items() if status != "completed"}
    lines = [
        "1. Memory under load and after retention",
        f"   settings: {MEMORY_WORKERS} workers ({NOOP_WORKER_CLASS}), record_ttl "
        f"{RETENTION_S} s and data_stream_ttl {RETENTION_S} s (env BYAI_RECORD_TTL, "
        f"BYAI_DATA_STREAM_TTL), sweep_interval {SWEEP_S:g} s, the rest default; "
        f"{SESSIONS} sessions, <= {OUTSTANDING} tasks outstanding",
        f"   soak: {report.tasks:,} tasks in {report.elapsed:.1f} s = "
        f"{report.tasks / report.elapsed:,.0f} tasks/s; completed {completed:,}"
        + (f"; NOT completed: {others}" if others else ""),
        "",
        *("   " + line for line in _table(cells)),
        "",
        f"   retained per task: {_size(report.per_task)} of used_memory ((peak - before) / N), "
        f"{_size(report.prefix_per_task)} of keys under the prefix (MEMORY USAGE)",
        f"   worker RSS, half the tasks ended -> the soak's end: {_rss_change(report)}",
        f"   keys at the end of the soak:  {_kinds(report.end.kinds)}",
        f"   keys after retention:         {_kinds(report.retained.kinds)}",
        f"   keys after workers stopped:   {_kinds(report.stopped.kinds)}",
    ]
    if report.elapsed > RETENTION_S:
        lines.append(
            f"   note: the soak outlasted record_ttl ({RETENTION_S} s): the task index keys of "
            "its first tasks expired before its end"
        )
    return lines


def rss_growth(report: MemoryReport) -> float | None:
    """How much the workers' RSS grew over the soak's second half, as a share (the largest of
    the workers'); None when a worker was not measured."""
    pairs = list(zip(report.halfway_rss, report.end.rss, strict=False))
    if not pairs or any(half is None or end is None for half, end in pairs):
        return None
    return max(end / half - 1 for half, end in pairs if half and end)


def _rss_change(report: MemoryReport) -> str:
    growth = rss_growth(report)
    if growth is None:
        return "not measured"
    return f"{_rss_cell(report.halfway_rss)} -> {_rss_cell(report.end.rss)} ({growth:+.1%})"


def _kinds(kinds: Counter[str]) -> str:
    return ", ".join(f"{kind} {count:,}" for kind, count in sorted(kinds.items())) or "none"


def _recovery_lines(report: RecoveryReport) -> list[str]:
    bound = LEASE_S + SWEEP_S + TASK_S

    def seconds(value: float | None) -> str:
        return "never (some task did not end)" if value is None else f"{value:.2f} s"

    verdict = "OK" if report.ok else "FAILED"
    return [
        "2. Recovery after SIGKILL",
        f"   settings: {KILL_WORKERS} workers ({SLEEPY_WORKER_CLASS}), lease_seconds "
        f"{LEASE_S:g}, sweep_interval {SWEEP_S:g}, heartbeat_interval {HEARTBEAT_S:g}, "
        f"heartbeat_ttl {HEARTBEAT_TTL_S:g} (a lease must exceed two heartbeats), "
        f"max_concurrency {MAX_CONCURRENCY}, retention default; "
        f"{KILL_TASKS} tasks of {TASK_S:g} s over {KILL_SESSIONS} sessions",
        f"   killed {report.victim} (SIGKILL) {report.killed_after:.2f} s after the first send, "
        f"holding {report.held} tasks",
        f"   kill -> first held task completed elsewhere  {seconds(report.first_reclaimed)}"
        f"  (expected <= lease + sweep + task = {bound:g} s)",
        f"   kill -> every task completed                 {seconds(report.all_done)}",
        f"   sent {report.sent}, completed {report.completed}, re-run {report.rerun}, "
        f"lost {report.lost}, duplicated {report.duplicated}, failed {report.failed}, "
        f"still pending {report.pending}: {verdict}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, help=f"tasks of the soak ({DEFAULT_TASKS:,})")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_TASKS:,} tasks")
    args = parser.parse_args()
    tasks = args.tasks or (QUICK_TASKS if args.quick else DEFAULT_TASKS)
    if tasks < 1:
        parser.error("--tasks must be at least 1")
    started = time.perf_counter()
    with bench_session("soak") as session:
        memory = _run_memory(session.url, f"{session.prefix}:mem", tasks, session.logs)
        recovery = _run_recovery(session.url, f"{session.prefix}:kill", session.logs)
    print(f"by-framework soak: {session.machine}, {time.perf_counter() - started:.0f} s")
    print()
    print("\n".join(_memory_lines(memory)))
    print()
    print("\n".join(_recovery_lines(recovery)))
    problems = []
    if set(memory.statuses) - {AgentState.COMPLETED.value}:
        problems.append(f"soak tasks not completed: {dict(memory.statuses)}")
    if not recovery.ok:
        problems.append(
            f"recovery: lost {recovery.lost}, duplicated {recovery.duplicated}, failed "
            f"{recovery.failed}, still pending {recovery.pending} (all must be 0)"
        )
    if problems:
        print("\n" + "!" * 72, file=sys.stderr)
        for problem in problems:
            print(f"!!! SOAK FAILED: {problem}", file=sys.stderr)
        print("!" * 72, file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
