"""Benchmark: by-framework beside a raw redis-py loop, arq and taskiq, on one Redis, in one run.

Every system runs a no-op task in 1 and then 2 worker processes, 50 tasks at once per process, and
is measured by the same code (``bench/measure.py``, which defines the method; the run prints it):
200 untimed warm-up tasks, then throughput (5000 tasks; 1000 with --quick) and latency (300
tasks one at a time; 100 with --quick), send -> completion read, p50 / p99. Also: Redis commands
per task, the INFO commandstats delta over the timed throughput run (every client of the server,
calls inside Lua scripts included) divided by N. All of it three times in turn (``--rounds``):
the table gives the medians of the rounds, and each round's tasks/s below it.

- by-framework: ``bench.agents.NoopAgent`` (one chunk, then "completed") in worker processes
  started through the CLI; completions are the ``TaskEndEvent``s read through ``client.events``.
- raw redis-py (``bench/raw_consumer.py``), two ways; completions are its replies:
  - per task: each task handled on its own, as a task queue does: one XADD per send; the consumer
    reads 100 at a time and runs each entry as its own coroutine, its reply XADD and XACK in one
    pipeline. DESIGN.md's "pipelined raw loop", against which the 40 % target is set.
  - batched: the most redis-py can do: XADDs pipelined 100 at a time; the consumer's replies and
    one XACK for the batch in one pipeline per XREADGROUP of 100. An upper bound, not a target.
- arq (``bench/peer_arq.py``, in its own virtual environment ``.venv-arq``: arq pins redis-py
  below 6) and taskiq with taskiq-redis's stream broker and result backend
  (``bench/peer_taskiq.py``), each run by its own driver process (``bench/peers.py``). A peer
  that is not installed is left out, with a note saying how to install it.

Every system gets its own key prefix (arq and taskiq: their queue name, job ids and result keys
carry it); every key whose name contains the run's prefix is deleted at the end. Redis:
REDIS_URL, else 127.0.0.1:6379, else an embedded redis-server; only a Redis on this machine is
accepted.

Run from the project root:  .venv/bin/python bench/run.py [--quick] [--arq-python PATH]
"""

import argparse
import asyncio
import functools
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ResponseError

if __package__ in (None, ""):  # run as a script: this checkout's bench and by_framework first
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import targets
from bench.measure import (
    DONE,
    FIRST,
    IN_FLIGHT,
    METHOD,
    SESSIONS,
    Driver,
    Figures,
    Mark,
    by_system,
    collect_streams,
    follow_stream,
    measure,
    median_figures,
    one_by_one,
    percentile,
    stream_call,
)
from bench.procs import (
    ROOT,
    RUN_TIMEOUT_S,
    START_TIMEOUT_S,
    BenchError,
    Child,
    children,
    pids,
    stop_task,
    wait_ready,
)
from bench.session import bench_session
from by_framework import GatewayClient, StreamChunkEvent, TaskEndEvent, init_redis

WORKER_CLASS = "bench.agents.NoopAgent"
AGENT_TYPE = "bench-noop"  # the agent type NoopAgent serves
RAW_GROUP = "raw"
FRAMEWORK = targets.FRAMEWORK
RAW_TASK = targets.RAW_TASK
RAW_BATCH = "raw, batched"
RAW_MODES = {RAW_TASK: "task", RAW_BATCH: "batch"}
RAW_SEND_BATCH = 100
RAW_CONNECTIONS = 50  # the raw producer's pool: the 200 sends in flight share them
WORKER_SHUTDOWN_TIMEOUT_S = 5.0
ARQ_PYTHON = ROOT / ".venv-arq" / "bin" / "python"
ROUNDS = 3


@dataclass(frozen=True, slots=True)
class PeerCommand:
    """A peer the run can drive: ``python -m module drive ...`` (see ``bench.peers``)."""

    name: str
    python: str
    module: str


@dataclass(frozen=True, slots=True)
class Plan:
    url: str
    prefix: str
    tasks: int
    samples: int
    logs: Path
    peers: tuple[PeerCommand, ...]


# Raw redis-py loop


def _measure_raw(plan: Plan, system: str, consumers: int) -> Figures:
    mode = RAW_MODES[system]
    base = f"{plan.prefix}:raw-{mode}-{consumers}"
    queue, data_prefix = f"{base}:queue", f"{base}:data:"
    names = [f"raw-{mode}-{consumers}-{index}" for index in range(consumers)]
    consumer = [sys.executable, "-m", "bench.raw_consumer", plan.url, queue, RAW_GROUP]
    commands = {name: [*consumer, name, data_prefix, mode] for name in names}
    with children(commands, plan.logs) as started:
        return asyncio.run(_raw_phase(plan, system, queue, data_prefix, started))


async def _raw_phase(
    plan: Plan, system: str, queue: str, data_prefix: str, started: list[Child]
) -> Figures:
    pool = BlockingConnectionPool.from_url(plan.url, max_connections=RAW_CONNECTIONS, timeout=None)
    redis = Redis(connection_pool=pool)
    try:
        names = {child.name for child in started}
        await wait_ready(functools.partial(_raw_consumers_ready, redis, queue, names), started)

        async def send(session: str, key: str) -> str:
            await redis.xadd(queue, {"s": session, "t": key})
            return key

        async def send_batched(tasks: Sequence[tuple[str, str]]) -> None:
            for first in range(0, len(tasks), RAW_SEND_BATCH):
                pipe = redis.pipeline(transaction=False)
                for session, key in tasks[first : first + RAW_SEND_BATCH]:
                    pipe.xadd(queue, {"s": session, "t": key})
                await pipe.execute()

        async def collect(sessions: Sequence[str], count: int) -> None:
            await collect_streams(redis, [data_prefix + session for session in sessions], count)

        async def follow(session: str, marks: asyncio.Queue[Mark]) -> None:
            await follow_stream(redis, data_prefix + session, marks)

        send_many = send_batched if system == RAW_BATCH else one_by_one(send)
        call = stream_call(redis, send, lambda session: data_prefix + session)
        driver = Driver(send, send_many, collect, follow, call)
        tag = f"r{RAW_MODES[system]}{len(started)}"
        return await measure(system, pids(started), driver, redis, tag, plan.tasks, plan.samples)
    finally:
        await redis.aclose()


async def _raw_consumers_ready(redis: Redis, queue: str, names: set[str]) -> bool:
    try:
        consumers = await redis.xinfo_consumers(queue, RAW_GROUP)
    except ResponseError:  # no stream or group yet
        return False
    return names <= {consumer["name"].decode() for consumer in consumers}


# by-framework


def _measure_framework(plan: Plan, workers: int) -> Figures:
    worker_ids = [f"bench-{workers}-{index}" for index in range(workers)]
    commands = {worker_id: _worker_command(plan, worker_id) for worker_id in worker_ids}
    with children(commands, plan.logs) as started:
        return asyncio.run(_framework_phase(plan, started))


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


async def _framework_phase(plan: Plan, started: list[Child]) -> Figures:
    redis = init_redis(url=plan.url, max_connections=SESSIONS + IN_FLIGHT)
    client = GatewayClient(redis, key_prefix=plan.prefix)
    try:
        for child in started:
            await wait_ready(functools.partial(client.registry.is_online, child.name), started)
        driver = framework_driver(client)
        tag = f"f{len(started)}"
        workers = pids(started)
        return await measure(FRAMEWORK, workers, driver, redis, tag, plan.tasks, plan.samples)
    finally:
        await client.aclose()
        await redis.aclose()


def framework_driver(client: GatewayClient) -> Driver:
    """How the bench drives by-framework: sends and completions through a GatewayClient."""

    async def send(session: str, key: str) -> str:
        return (await client.send_message(AGENT_TYPE, session, "x")).message_id

    async def collect(sessions: Sequence[str], count: int) -> None:
        ended = 0
        all_ended = asyncio.Event()

        async def read(session: str) -> None:
            nonlocal ended
            async for event in client.events(session):
                if isinstance(event.event, TaskEndEvent):
                    ended += 1
                    if ended == count:
                        all_ended.set()

        readers = [asyncio.create_task(read(session)) for session in sessions]
        waiter = asyncio.create_task(all_ended.wait())
        try:  # a reader that fails ends the wait too: its error is raised below
            await asyncio.wait([waiter, *readers], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in [waiter, *readers]:
                await stop_task(task)

    async def follow(session: str, marks: asyncio.Queue[Mark]) -> None:
        async for event in client.events(session):
            at = time.perf_counter()
            if isinstance(event.event, StreamChunkEvent):
                marks.put_nowait((event.message_id, FIRST, at))
            elif isinstance(event.event, TaskEndEvent):
                marks.put_nowait((event.message_id, DONE, at))

    async def call(session: str, key: str) -> None:
        await client.wait_for_result(await send(session, key))

    return Driver(send, one_by_one(send), collect, follow, call)


# Peers: arq, taskiq


def _peers(arq_python: Path) -> tuple[tuple[PeerCommand, ...], list[str]]:
    """The peers installed here, and a note for each one that is not."""
    peers, notes = [], []
    if arq_python.exists() and _imports(arq_python, "arq"):
        peers.append(PeerCommand("arq", str(arq_python), "bench.peer_arq"))
    else:
        notes.append(
            f"arq left out: no arq at {arq_python} (arq pins redis-py < 6, so it gets a venv of "
            f"its own: python -m venv .venv-arq && .venv-arq/bin/pip install arq)"
        )
    if importlib.util.find_spec("taskiq_redis") is not None:
        peers.append(PeerCommand("taskiq", sys.executable, "bench.peer_taskiq"))
    else:
        notes.append("taskiq left out: not installed (pip install -e '.[bench]')")
    return tuple(peers), notes


def _imports(python: Path, module: str) -> bool:
    command = [str(python), "-c", f"import {module}"]
    return subprocess.run(command, capture_output=True, check=False).returncode == 0


def _measure_peer(plan: Plan, peer: PeerCommand, workers: int) -> Figures:
    prefix = f"{plan.prefix}:{peer.name}-{workers}"
    command = [
        peer.python, "-m", peer.module, "drive",
        plan.url, prefix, str(workers), str(plan.tasks), str(plan.samples), str(plan.logs),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        done = subprocess.run(
            command,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S + 3 * RUN_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"{peer.name} ({workers} workers) did not finish") from None
    if done.returncode != 0:
        tail = "\n".join(done.stderr.splitlines()[-15:])
        raise BenchError(f"{peer.name} ({workers} workers) failed:\n{tail}")
    return Figures(**json.loads(done.stdout.splitlines()[-1]))


# Redis, keys, report


def rounds(plan: Plan, count: int) -> list[list[Figures]]:
    """Every system measured ``count`` times in turn, each round under a key prefix of its own
    (a round's readers start from the beginning of its sessions)."""
    return [_run(replace(plan, prefix=f"{plan.prefix}:r{n}")) for n in range(count)]


def round_rates(measured: Sequence[Sequence[Figures]]) -> list[str]:
    """Each system's tasks/s in each round, one line per system and worker count."""
    grouped = sorted(by_system(measured).items(), key=lambda item: item[0][1])
    return [
        f"  {system}, {workers} worker{'s' if workers > 1 else ''}: "
        + " / ".join(f"{f.tasks_per_s:,.0f}" for f in runs)
        for (system, workers), runs in grouped
    ]


def _run(plan: Plan) -> list[Figures]:
    figures: list[Figures] = []
    for workers in (1, 2):
        figures.append(_measure_raw(plan, RAW_TASK, workers))
        figures.append(_measure_raw(plan, RAW_BATCH, workers))
        figures.append(_measure_framework(plan, workers))
        figures += [_measure_peer(plan, peer, workers) for peer in plan.peers]
    return figures


def table(figures: Sequence[Figures]) -> list[str]:
    """Every system and worker count; ``by-fw / this``: by-framework's tasks/s over this row's."""
    ours = {f.workers: f.tasks_per_s for f in figures if f.system == FRAMEWORK}
    header = (
        "system", "workers", "tasks/s", "by-fw / this", "cmds/task", "Redis CPU us/task",
        "worker CPU us/task", "client CPU us/task", "first p50 ms", "done p50 ms",
        "done p99 ms", "call p50 ms", "call p99 ms",
    )  # fmt: skip
    cells: list[Sequence[str]] = [header]
    for f in sorted(figures, key=lambda f: f.workers):
        versus = f"{ours[f.workers] / f.tasks_per_s:.2f}x" if f.workers in ours else "-"
        cells.append(
            (
                f.system,
                str(f.workers),
                f"{f.tasks_per_s:,.0f}",
                versus,
                f"{sum(f.commands.values()):.1f}",
                f"{f.redis_cpu_ms * 1000:.0f}",
                f"{f.worker_cpu_ms * 1000:.0f}",
                f"{f.client_cpu_ms * 1000:.0f}",
                f"{percentile(f.first_ms, 0.50):.2f}",
                f"{percentile(f.done_ms, 0.50):.2f}",
                f"{percentile(f.done_ms, 0.99):.2f}",
                f"{percentile(f.call_ms, 0.50):.2f}",
                f"{percentile(f.call_ms, 0.99):.2f}",
            )
        )
    return targets.columns(cells)


def command_breakdown(figures: Sequence[Figures]) -> str:
    """by-framework's commands per task (1 worker), by command; DESIGN.md's budget is about 12."""
    ours = next(f for f in figures if f.system == FRAMEWORK and f.workers == 1)
    ordered = sorted(ours.commands.items(), key=lambda item: -item[1])
    return ", ".join(f"{name} {count:.2f}" for name, count in ordered if count >= 0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1000 tasks and 100 latency samples")
    parser.add_argument(
        "--rounds", type=int, default=ROUNDS, help=f"times each system is measured ({ROUNDS})"
    )
    parser.add_argument(
        "--arq-python", type=Path, default=ARQ_PYTHON, help=f"arq's Python ({ARQ_PYTHON})"
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    tasks, samples = (1_000, 100) if args.quick else (5_000, 300)
    peers, notes = _peers(args.arq_python)
    started = time.perf_counter()
    with bench_session("bench") as session:
        plan = Plan(session.url, session.prefix, tasks, samples, session.logs, peers)
        measured = rounds(plan, args.rounds)
    figures = median_figures(measured)
    print(
        f"by-framework bench: {session.machine}, {tasks} tasks, {samples} latency samples, "
        f"{time.perf_counter() - started:.0f} s"
    )
    print("\n".join(f"  {line}" for line in (*METHOD, *notes)))
    print()
    print("\n".join(table(figures)))
    print(f"by-framework commands per task (1 worker): {command_breakdown(figures)}")
    print(f"tasks/s of each of the {args.rounds} rounds:")
    print("\n".join(round_rates(measured)))
    print()
    print("\n".join(targets.render(targets.comparison(figures))))


if __name__ == "__main__":
    main()
