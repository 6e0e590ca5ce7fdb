"""Benchmark: by-framework against a raw redis-py loop, on the same Redis, in one run.

Measured, with 1 and with 2 worker processes:

- Throughput. The bench process sends N no-op tasks (5000; 1000 with --quick) spread over 50
  sessions, then follows every session until it has read each task's end; tasks/s = N / (first
  send -> last end read).
  by-framework: ``bench.agents.NoopAgent`` (one chunk, then "completed") in real worker processes
  started through the CLI; up to 200 ``send_message`` calls in flight; ends are the
  ``TaskEndEvent`` read through ``client.events``.
  raw redis-py, two ways (``bench/raw_consumer.py`` processes; ends are their replies, read by
  XREAD on the 50 reply streams):
  - per task: each task handled on its own, as a task queue does: one XADD per send (200 in
    flight); the consumer reads 100 at a time and runs each entry as its own coroutine (up to
    50), its reply XADD and XACK in one pipeline. DESIGN.md's "pipelined raw loop".
  - batched: the most redis-py can do: XADDs pipelined 100 at a time; the consumer's replies and
    one XACK for the batch in one pipeline per XREADGROUP of 100.
- Latency at low load (1 worker): 300 tasks one at a time (100 with --quick); p50 / p99 of
  send -> first chunk read by a reader already blocked on the session's stream.
- Redis commands per by-framework task: the INFO commandstats delta over the 1-worker throughput
  run (every client of the server, commands run inside Lua scripts included) divided by N.

Each system first gets 200 untimed warm-up tasks in every worker configuration. The run uses its own
key prefix and deletes its keys at the end. Redis: REDIS_URL, else 127.0.0.1:6379, else an embedded
redis-server; only a Redis on this machine is accepted.

Run from the project root:  .venv/bin/python bench/run.py [--quick]
"""

import argparse
import asyncio
import contextlib
import functools
import itertools
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ResponseError

from by_framework import GatewayClient, StreamChunkEvent, TaskEndEvent, init_redis
from by_framework.redis.embedded import resolve_redis_url

ROOT = Path(__file__).resolve().parent.parent
WORKER_CLASS = "bench.agents.NoopAgent"
AGENT_TYPE = "bench-noop"  # the agent type NoopAgent serves
RAW_GROUP = "raw"
FRAMEWORK = "by-framework"
RAW_TASK = "raw, per task"
RAW_BATCH = "raw, batched"
RAW_MODES = {RAW_TASK: "task", RAW_BATCH: "batch"}

SESSIONS = 50
SEND_CONCURRENCY = 200
RAW_SEND_BATCH = 100
RAW_CONNECTIONS = 50  # the raw per-task producer's pool: 200 sends in flight share them
WARMUP_TASKS = 200
READ_BLOCK_MS = 1_000

START_TIMEOUT_S = 30.0
RUN_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0
WORKER_SHUTDOWN_TIMEOUT_S = 5.0

THROUGHPUT_TARGET = 0.40
P50_TARGET_MS = 1.5
COMMAND_BUDGET = 12

T = TypeVar("T")
Mark = tuple[str, str, float]  # (task key, "chunk" or "end", perf_counter when read)


class BenchError(RuntimeError):
    """The benchmark could not measure what it set out to; the message says why."""


@dataclass(frozen=True, slots=True)
class Plan:
    url: str
    prefix: str
    tasks: int
    samples: int
    logs: Path


@dataclass(frozen=True, slots=True)
class Row:
    system: str
    run: str  # "throughput" or "latency"
    workers: int
    tasks_per_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Child:
    """A process the bench started; ``name`` is its worker id or consumer name."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


# Processes


@contextlib.contextmanager
def _children(commands: dict[str, list[str]], logs: Path) -> Iterator[list[Child]]:
    """One process per command, run from the project root; all stopped (SIGTERM) on exit."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children: list[Child] = []
    try:
        for name, command in commands.items():
            log = logs / f"{name}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    command,
                    cwd=ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            children.append(Child(name, process, log))
        yield children
    finally:
        for child in children:
            child.process.terminate()
        for child in children:
            _reap(child)


def _reap(child: Child) -> None:
    try:
        code = child.process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        child.process.kill()
        code = child.process.wait()
    if code not in (0, -signal.SIGTERM):
        print(
            f"warning: {child.name} exited with status {code}:\n{child.log_tail()}", file=sys.stderr
        )


async def _wait_ready(ready: Callable[[], Awaitable[bool]], children: Sequence[Child]) -> None:
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            while not await ready():
                for child in children:
                    if child.process.poll() is not None:
                        raise BenchError(
                            f"{child.name} exited with status {child.process.returncode} before "
                            f"it was ready:\n{child.log_tail()}"
                        )
                await asyncio.sleep(0.05)
    except TimeoutError:
        names = ", ".join(child.name for child in children)
        raise BenchError(f"{names} not ready after {START_TIMEOUT_S:g} s") from None


# Measurements shared by both systems


async def _deadline(what: str, work: Awaitable[T]) -> T:
    """``work``'s result, or a BenchError after RUN_TIMEOUT_S: a lost task must not hang."""
    try:
        async with asyncio.timeout(RUN_TIMEOUT_S):
            return await work
    except TimeoutError:
        raise BenchError(f"{what} did not finish within {RUN_TIMEOUT_S:g} s") from None


async def _latencies(
    send: Callable[[], Awaitable[str]],
    follow: Callable[[asyncio.Queue[Mark]], Awaitable[None]],
    samples: int,
) -> list[float]:
    """Send -> first chunk (ms) of ``samples`` tasks sent one at a time, each after the last ended.

    ``send`` queues one task and returns its key; ``follow`` reads the session's stream (blocked
    between tasks) and puts a mark for every chunk and end it reads.
    """
    marks: asyncio.Queue[Mark] = asyncio.Queue()
    reader = asyncio.create_task(follow(marks))
    latencies = []
    try:
        for _ in range(samples):
            start = time.perf_counter()
            key = await send()
            first_chunk = None
            while True:
                got, kind, at = await marks.get()
                if got != key:
                    continue
                if kind == "chunk" and first_chunk is None:
                    first_chunk = at
                if kind == "end":
                    break
            if first_chunk is None:
                raise BenchError(f"task {key} ended without a chunk")
            latencies.append((first_chunk - start) * 1000)
    finally:
        await _stop(reader)
    return latencies


async def _stop(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait for it; raise what it failed with, if anything.

    The cancel is repeated: on Python 3.11 a cancellation landing while redis-py writes a command
    (its ``asyncio.wait_for`` around the socket write) can be lost, and the task goes on reading.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.1)
    if not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]


def _latency_row(system: str, latencies: Sequence[float]) -> Row:
    p50, p99 = _percentile(latencies, 0.50), _percentile(latencies, 0.99)
    return Row(system, "latency", workers=1, p50_ms=p50, p99_ms=p99)


def _percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _sessions(tag: str) -> list[str]:
    return [f"{tag}-{index}" for index in range(SESSIONS)]


# Raw redis-py loop


def _measure_raw(plan: Plan, system: str, consumers: int, *, with_latency: bool) -> list[Row]:
    mode = RAW_MODES[system]
    queue = f"{plan.prefix}:raw:{mode}:queue:{consumers}"
    data_prefix = f"{plan.prefix}:raw:{mode}:data:"
    names = [f"raw-{mode}-{consumers}-{index}" for index in range(consumers)]
    consumer = [sys.executable, "-m", "bench.raw_consumer", plan.url, queue, RAW_GROUP]
    commands = {name: [*consumer, name, data_prefix, mode] for name in names}
    with _children(commands, plan.logs) as children:
        phase = _raw_phase(plan, system, queue, data_prefix, children, with_latency=with_latency)
        return asyncio.run(phase)


async def _raw_phase(
    plan: Plan,
    system: str,
    queue: str,
    data_prefix: str,
    children: list[Child],
    *,
    with_latency: bool,
) -> list[Row]:
    consumers = len(children)
    pool = BlockingConnectionPool.from_url(plan.url, max_connections=RAW_CONNECTIONS, timeout=None)
    redis = Redis(connection_pool=pool)
    try:
        names = {child.name for child in children}
        await _wait_ready(functools.partial(_raw_consumers_ready, redis, queue, names), children)
        send = functools.partial(_raw_throughput, redis, system, queue, data_prefix)
        await _deadline("raw warm-up", send(f"r{consumers}-warm", WARMUP_TASKS))
        elapsed = await _deadline(
            f"{system} throughput ({consumers} consumers)",
            send(f"r{consumers}-run", plan.tasks),
        )
        rows = [Row(system, "throughput", consumers, plan.tasks / elapsed)]
        if with_latency:
            session = f"r{consumers}-latency"
            keys = (str(index) for index in itertools.count())

            async def send_one() -> str:
                key = next(keys)
                await redis.xadd(queue, {"s": session, "t": key})
                return key

            follow = functools.partial(_follow_raw, redis, data_prefix + session)
            latencies = await _deadline("raw latency", _latencies(send_one, follow, plan.samples))
            rows.append(_latency_row(system, latencies))
        return rows
    finally:
        await redis.aclose()


async def _raw_consumers_ready(redis: Redis, queue: str, names: set[str]) -> bool:
    try:
        consumers = await redis.xinfo_consumers(queue, RAW_GROUP)
    except ResponseError:  # no stream or group yet
        return False
    return names <= {consumer["name"].decode() for consumer in consumers}


async def _raw_throughput(
    redis: Redis, system: str, queue: str, data_prefix: str, tag: str, tasks: int
) -> float:
    """Batched: XADDs pipelined 100 at a time. Per task: one XADD per task, 200 in flight."""
    sessions = _sessions(tag)
    start = time.perf_counter()
    if system == RAW_BATCH:
        for first in range(0, tasks, RAW_SEND_BATCH):
            pipe = redis.pipeline(transaction=False)
            for index in range(first, min(first + RAW_SEND_BATCH, tasks)):
                pipe.xadd(queue, {"s": sessions[index % SESSIONS], "t": str(index)})
            await pipe.execute()
    else:
        indexes = iter(range(tasks))

        async def sender() -> None:
            for index in indexes:
                await redis.xadd(queue, {"s": sessions[index % SESSIONS], "t": str(index)})

        await asyncio.gather(*(sender() for _ in range(SEND_CONCURRENCY)))
    positions = {data_prefix + session: "0-0" for session in sessions}
    replies = 0
    while replies < tasks:
        for stream, entries in await redis.xread(positions, block=READ_BLOCK_MS) or []:
            positions[stream.decode()] = entries[-1][0]
            replies += len(entries)
    return time.perf_counter() - start


async def _follow_raw(redis: Redis, stream: str, marks: asyncio.Queue[Mark]) -> None:
    position: bytes | str = "0-0"
    while True:
        reply = await redis.xread({stream: position}, block=READ_BLOCK_MS)
        at = time.perf_counter()
        for _, entries in reply or []:
            for entry_id, fields in entries:
                position = entry_id
                key = fields[b"t"].decode()
                marks.put_nowait((key, "chunk", at))  # the reply is the task's chunk and end
                marks.put_nowait((key, "end", at))


# by-framework


def _measure_framework(
    plan: Plan, workers: int, *, with_latency: bool
) -> tuple[list[Row], Counter[str]]:
    worker_ids = [f"bench-{workers}-{index}" for index in range(workers)]
    commands = {worker_id: _worker_command(plan, worker_id) for worker_id in worker_ids}
    with _children(commands, plan.logs) as children:
        return asyncio.run(_framework_phase(plan, children, with_latency=with_latency))


def _worker_command(plan: Plan, worker_id: str) -> list[str]:
    """A NoopAgent worker process, started through the CLI."""
    return [
        sys.executable, "-m", "by_framework",
        "--worker-class", WORKER_CLASS,
        "--worker-id", worker_id,
        "--redis-url", plan.url,
        "--key-prefix", plan.prefix,
        "--shutdown-timeout", str(WORKER_SHUTDOWN_TIMEOUT_S),
    ]  # fmt: skip


async def _framework_phase(
    plan: Plan, children: list[Child], *, with_latency: bool
) -> tuple[list[Row], Counter[str]]:
    """The phase's rows, and the Redis command calls made during its timed throughput run."""
    workers = len(children)
    redis = init_redis(url=plan.url, max_connections=SESSIONS + SEND_CONCURRENCY)
    client = GatewayClient(redis, key_prefix=plan.prefix)
    try:
        for child in children:
            await _wait_ready(functools.partial(client.registry.is_online, child.name), children)
        await _deadline(
            "by-framework warm-up", _framework_throughput(client, f"f{workers}-warm", WARMUP_TASKS)
        )
        before = await _command_calls(redis)
        elapsed = await _deadline(
            f"by-framework throughput ({workers} workers)",
            _framework_throughput(client, f"f{workers}-run", plan.tasks),
        )
        calls = await _command_calls(redis) - before
        rows = [Row(FRAMEWORK, "throughput", workers, plan.tasks / elapsed)]
        if with_latency:
            session = f"f{workers}-latency"

            async def send() -> str:
                return (await client.send_message(AGENT_TYPE, session, "x")).message_id

            after = await client.last_event_id(session)
            follow = functools.partial(_follow_framework, client, session, after)
            latencies = await _deadline(
                "by-framework latency", _latencies(send, follow, plan.samples)
            )
            rows.append(_latency_row(FRAMEWORK, latencies))
        return rows, calls
    finally:
        await client.aclose()
        await redis.aclose()


async def _framework_throughput(client: GatewayClient, tag: str, tasks: int) -> float:
    sessions = _sessions(tag)
    indices = iter(range(tasks))

    async def sender() -> None:
        for index in indices:
            await client.send_message(AGENT_TYPE, sessions[index % SESSIONS], "x")

    start = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(SEND_CONCURRENCY)))
    await asyncio.gather(
        *(
            _read_ends(client, session, len(range(offset, tasks, SESSIONS)))
            for offset, session in enumerate(sessions)
        )
    )
    return time.perf_counter() - start


async def _read_ends(client: GatewayClient, session: str, expected: int) -> None:
    ends = 0
    async for event in client.events(session, "0-0"):
        if isinstance(event.event, TaskEndEvent):
            ends += 1
            if ends == expected:
                return


async def _follow_framework(
    client: GatewayClient, session: str, after: str, marks: asyncio.Queue[Mark]
) -> None:
    async for event in client.events(session, after):
        at = time.perf_counter()
        if isinstance(event.event, StreamChunkEvent):
            marks.put_nowait((event.message_id, "chunk", at))
        elif isinstance(event.event, TaskEndEvent):
            marks.put_nowait((event.message_id, "end", at))


async def _command_calls(redis: Redis) -> Counter[str]:
    """Calls per command since the server started (INFO commandstats)."""
    stats = await redis.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): row["calls"] for name, row in stats.items()})


# Redis, keys, report


def _local_redis_url() -> tuple[str, Callable[[], None]]:
    """The Redis URL and how to stop the embedded server started for it (a no-op if none)."""
    url, server = resolve_redis_url()
    stop = server.stop if server is not None else lambda: None
    host = urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost"):
        stop()
        raise BenchError(f"the bench only talks to a Redis on 127.0.0.1, not {host!r} ({url})")
    return url, stop


async def _redis_version(url: str) -> str:
    redis = Redis.from_url(url)
    try:
        return str((await redis.info("server"))["redis_version"])
    finally:
        await redis.aclose()


async def _delete_keys(url: str, prefix: str) -> None:
    redis = Redis.from_url(url)
    try:
        batch = []
        async for key in redis.scan_iter(match=f"{prefix}:*", count=1_000):
            batch.append(key)
            if len(batch) == 500:
                await redis.delete(*batch)
                batch = []
        if batch:
            await redis.delete(*batch)
    finally:
        await redis.aclose()


def _run(plan: Plan) -> tuple[list[Row], Counter[str]]:
    rows: list[Row] = []
    calls: Counter[str] = Counter()
    for workers in (1, 2):
        rows += _measure_raw(plan, RAW_TASK, workers, with_latency=workers == 1)
        rows += _measure_raw(plan, RAW_BATCH, workers, with_latency=False)
        framework_rows, framework_calls = _measure_framework(
            plan, workers, with_latency=workers == 1
        )
        rows += framework_rows
        if workers == 1:
            calls = framework_calls
    return rows, calls


def _table(rows: Sequence[Row]) -> str:
    by_key = {(row.system, row.run, row.workers): row for row in rows}
    ordered = sorted(rows, key=lambda row: (row.run != "throughput", row.workers))
    cells = [
        ("system", "run", "workers", "tasks/s", "p50 ms", "p99 ms", "vs raw/task", "vs raw/batch")
    ]
    cells += [
        (
            row.system,
            row.run,
            str(row.workers),
            _number(row.tasks_per_s, 0),
            _number(row.p50_ms, 2),
            _number(row.p99_ms, 2),
            *(
                _versus(row, by_key.get((raw, row.run, row.workers)))
                for raw in (RAW_TASK, RAW_BATCH)
            ),
        )
        for row in ordered
    ]
    widths = [max(len(line[column]) for line in cells) for column in range(len(cells[0]))]

    def render(line: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(width) if column < 2 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(line, widths, strict=True))
        )

    return "\n".join(
        [render(cells[0]), render(["-" * width for width in widths])]
        + [render(line) for line in cells[1:]]
    )


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _versus(row: Row, raw: Row | None) -> str:
    """Throughput as a share of raw's; latency as a multiple of raw's p50."""
    if raw is None:
        return "-"
    if row.run == "throughput":
        assert row.tasks_per_s is not None and raw.tasks_per_s is not None
        return f"{row.tasks_per_s / raw.tasks_per_s:.0%}"
    assert row.p50_ms is not None and raw.p50_ms is not None
    return f"{row.p50_ms / raw.p50_ms:.1f}x p50"


def _summary(rows: Sequence[Row], calls: Counter[str], tasks: int) -> list[str]:
    by_key = {(row.system, row.run, row.workers): row for row in rows}
    per_task = sum(calls.values()) / tasks
    breakdown = ", ".join(
        f"{name} {count / tasks:.2f}"
        for name, count in calls.most_common()
        if count / tasks >= 0.01
    )
    shares = []
    for raw in (RAW_TASK, RAW_BATCH):
        for workers in (1, 2):
            share = (
                by_key[FRAMEWORK, "throughput", workers].tasks_per_s
                / by_key[raw, "throughput", workers].tasks_per_s
            )
            verdict = _verdict(share >= THROUGHPUT_TARGET)
            shares.append(f"{raw}, {workers} worker(s): {share:.0%} {verdict}")
    p50 = by_key[FRAMEWORK, "latency", 1].p50_ms
    return [
        f"Redis commands per by-framework task (1 worker, INFO commandstats delta / {tasks}, "
        f"all clients, calls inside Lua included): {per_task:.1f}  "
        f"(design budget ~{COMMAND_BUDGET})",
        f"  per task by command: {breakdown}",
        f"Target throughput >= {THROUGHPUT_TARGET:.0%} of raw: {'; '.join(shares)}",
        f"Target p50 send->first chunk <= {P50_TARGET_MS} ms: {p50:.2f} ms "
        f"{_verdict(p50 <= P50_TARGET_MS)}",
    ]


def _verdict(met: bool) -> str:
    return "(met)" if met else "(MISSED)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1000 tasks and 100 latency samples")
    args = parser.parse_args()
    tasks, samples = (1_000, 100) if args.quick else (5_000, 300)
    started = time.perf_counter()
    try:
        url, stop_redis = _local_redis_url()
        try:
            with tempfile.TemporaryDirectory(prefix="by-framework-bench-") as logs:
                plan = Plan(url, f"bench-{uuid.uuid4().hex[:12]}", tasks, samples, Path(logs))
                version = asyncio.run(_redis_version(url))
                try:
                    rows, calls = _run(plan)
                finally:
                    asyncio.run(_delete_keys(url, plan.prefix))
        finally:
            stop_redis()
    except BenchError as exc:
        raise SystemExit(f"bench: {exc}") from None
    print(
        f"by-framework bench: Redis {version} at {url}, {tasks} tasks over {SESSIONS} sessions "
        f"({SEND_CONCURRENCY} sends in flight), {samples} latency samples, "
        f"{os.cpu_count()} CPUs, {time.perf_counter() - started:.0f} s"
    )
    print(_table(rows))
    for line in _summary(rows, calls, tasks):
        print(line)


if __name__ == "__main__":
    main()
