"""Benchmark: by-framework on a Redis Cluster beside one Redis, with the same workers, in one run.

Servers of the run's own, one at a time: one redis-server; a local Redis Cluster of 3 masters
with a replica each (``tests/support.py``'s ``LocalCluster``); and the same cluster without
replicas, to show what replication costs the masters. No persistence on any. On each, the
same worker processes (``bench.agents.NoopAgent``, through the CLI; 2 by default) and the same
measurement as ``bench/run.py`` (``bench/measure.py``: warm-up, throughput, latency). Also Redis
CPU per task: INFO cpu (used_cpu_sys + used_cpu_user) over the timed throughput run, summed over
the cluster's masters (its replicas apart), beside the one Redis's.

The issue's goals, printed with the figures: the cluster's tasks/s at least 80 % of one Redis's
(with the same workers, the cluster's 3 masters share this machine's cores with them), and its
masters' CPU per task within 1.2x one Redis's. All of it three times in turn (``--rounds``): the
figures are medians of the rounds, each ratio the median of the rounds' own.

``--spread`` measures instead how load spreads over the 3+3 cluster: no-op tasks of 30 agent
types (``bench.agents.SpreadAgent``) over 1,000 sessions, each master's Redis CPU (INFO cpu
delta over the run) as a share of the masters' total, beside how many of the agent types'
streams and of the sessions each master holds (goal: no master above 45 % of the total).

Run from the project root:  .venv/bin/python bench/cluster.py [--quick] [--workers N] [--spread]
"""

import argparse
import asyncio
import functools
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from tempfile import TemporaryDirectory

from redis.asyncio import Redis
from redis.crc import key_slot

if __package__ in (None, ""):  # run as a script: this checkout's bench and by_framework first
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.agents import SPREAD_AGENT_TYPES
from bench.measure import (
    IN_FLIGHT,
    METHOD,
    command_calls,
    latencies,
    percentile,
    redis_cpu,
    throughput,
)
from bench.procs import Child, children, deadline, pids, wait_ready
from bench.procstat import total_cpu_seconds
from bench.run import WORKER_CLASS, WORKER_SHUTDOWN_TIMEOUT_S, framework_driver
from by_framework import GatewayClient, Settings
from by_framework.redis.embedded import EmbeddedRedis
from by_framework.redis.keys import KeySpace
from tests.support import LocalCluster

WARMUP = 200
ONE = "one Redis"
CLUSTER = "cluster 3+3"
UNREPLICATED = "cluster 3+0"
ROUNDS = 3
GOAL_RATE = 0.8
GOAL_CPU = 1.2
SPREAD_WORKER_CLASS = "bench.agents.SpreadAgent"
SPREAD_SESSIONS = 1_000
GOAL_SHARE = 0.45


async def usage(ports: Sequence[int]) -> tuple[float, Counter[str]]:
    """CPU seconds (used_cpu_sys + used_cpu_user), and counts (calls per command from INFO
    commandstats; ``reads`` and ``writes``: the socket reads and writes of INFO stats) of the
    servers on these ports, summed."""
    cpu = 0.0
    counts: Counter[str] = Counter()
    for port in ports:
        redis = Redis(host="127.0.0.1", port=port)
        try:
            cpu += await redis_cpu(redis)
            stats = await redis.info("stats")
            counts += await command_calls(redis)
        finally:
            await redis.aclose()
        counts["reads"] += stats["total_reads_processed"]
        counts["writes"] += stats["total_writes_processed"]
    return cpu, counts


def _worker_command(
    worker_id: str, url: str, prefix: str, worker_class: str = WORKER_CLASS
) -> list[str]:
    return [
        sys.executable, "-m", "by_framework",
        "--worker-class", worker_class,
        "--worker-id", worker_id,
        "--redis-url", url,
        "--key-prefix", prefix,
        "--shutdown-timeout", str(WORKER_SHUTDOWN_TIMEOUT_S),
    ]  # fmt: skip


def measure_on(
    name: str, url: str, masters: Sequence[int], workers: int, tasks: int, samples: int, logs: Path
) -> tuple[dict[str, float], dict[str, float]]:
    prefix = f"cluster-bench-{uuid.uuid4().hex[:8]}"
    commands = {f"{name}-{n}": _worker_command(f"{name}-{n}", url, prefix) for n in range(workers)}
    with children(commands, logs) as started:
        return asyncio.run(_measure(name, url, prefix, masters, started, tasks, samples))


async def _measure(
    name: str,
    url: str,
    prefix: str,
    masters: Sequence[int],
    started: list[Child],
    tasks: int,
    samples: int,
) -> tuple[dict[str, float], dict[str, float]]:
    client = GatewayClient.connect(Settings.resolve(redis_url=url, key_prefix=prefix))
    try:
        for child in started:
            await wait_ready(functools.partial(client.registry.is_online, child.name), started)
        driver = framework_driver(client)
        await deadline(f"{name} warm-up", throughput(driver, f"{name}-warm", WARMUP))
        cpu_before, counts_before = await usage(masters)
        workers = pids(started)
        workers_before = total_cpu_seconds(workers)
        client_before = time.process_time()
        rate = await deadline(f"{name} throughput", throughput(driver, f"{name}-run", tasks))
        client_cpu = time.process_time() - client_before
        workers_cpu = total_cpu_seconds(workers) - workers_before
        cpu_after, counts_after = await usage(masters)
        cpu = cpu_after - cpu_before
        counts = counts_after - counts_before
        io = {kind: counts.pop(kind, 0) / tasks for kind in ("reads", "writes")}
        _, done_ms = await deadline(f"{name} latency", latencies(driver, f"{name}-lat", samples))
    finally:
        await client.aclose()
    return {
        "tasks_per_s": rate,
        "p50_ms": percentile(done_ms, 0.5),
        "p99_ms": percentile(done_ms, 0.99),
        "cpu_ms_per_task": cpu * 1000 / tasks,
        "worker_cpu_ms_per_task": workers_cpu * 1000 / tasks,
        "client_cpu_ms_per_task": client_cpu * 1000 / tasks,
        "reads_per_task": io["reads"],
        "writes_per_task": io["writes"],
    }, {command: count / tasks for command, count in counts.most_common() if count >= tasks / 10}


@dataclass(frozen=True, slots=True)
class Spread:
    """One master's part of the spread run."""

    streams: int  # agent-type streams it holds, of 30
    sessions: int  # sessions whose keys it holds, of 1,000
    cpu_s: float  # its Redis CPU over the run
    share: float  # of the masters' total
    tasks_per_s: float  # the run's (the same on every row)


def spread_on(cluster: LocalCluster, workers: int, tasks: int, logs: Path) -> dict[int, Spread]:
    """Each master's share of the load of ``tasks`` no-op tasks of 30 agent types over 1,000
    sessions, by master port."""
    prefix = f"cluster-spread-{uuid.uuid4().hex[:8]}"
    commands = {
        f"spread-{n}": _worker_command(f"spread-{n}", cluster.url, prefix, SPREAD_WORKER_CLASS)
        for n in range(workers)
    }
    with children(commands, logs) as started:
        cpu, rate = asyncio.run(_spread(cluster, prefix, started, tasks))
    keys = KeySpace(prefix)
    streams = Counter(
        cluster.owner(key_slot(keys.agent_type_stream(t).encode())) for t in SPREAD_AGENT_TYPES
    )
    sessions = Counter(
        cluster.owner(key_slot(keys.session_registry(f"spread-run-{n}").encode()))
        for n in range(SPREAD_SESSIONS)
    )
    total = sum(cpu.values())
    return {
        port: Spread(streams[port], sessions[port], used, used / total, rate)
        for port, used in sorted(cpu.items())
    }


async def _spread(
    cluster: LocalCluster, prefix: str, started: list[Child], tasks: int
) -> tuple[dict[int, float], float]:
    client = GatewayClient.connect(Settings.resolve(redis_url=cluster.url, key_prefix=prefix))
    masters = {port: Redis(host="127.0.0.1", port=port) for port in cluster.masters()}
    try:
        for child in started:
            await wait_ready(functools.partial(client.registry.is_online, child.name), started)
        await deadline("spread warm-up", _spread_run(client, "spread-warm", 100, 600))
        before = {port: await redis_cpu(redis) for port, redis in masters.items()}
        start = time.perf_counter()
        await deadline("spread run", _spread_run(client, "spread-run", SPREAD_SESSIONS, tasks))
        rate = tasks / (time.perf_counter() - start)
        after = {port: await redis_cpu(redis) for port, redis in masters.items()}
    finally:
        for redis in masters.values():
            await redis.aclose()
        await client.aclose()
    return {port: after[port] - before[port] for port in masters}, rate


async def _spread_run(client: GatewayClient, tag: str, session_count: int, tasks: int) -> None:
    """``tasks`` no-op tasks, task i to session i mod ``session_count`` and agent type i mod
    30, IN_FLIGHT sends at a time; returns once every one has ended (read on its session)."""
    names = [f"{tag}-{n}" for n in range(session_count)]
    work = iter(
        (names[i % session_count], SPREAD_AGENT_TYPES[i % len(SPREAD_AGENT_TYPES)])
        for i in range(tasks)
    )

    async def sender() -> None:
        for session, agent_type in work:
            await client.send_message(agent_type, session, "x")

    reader = asyncio.create_task(framework_driver(client).collect(names, tasks))
    try:
        await asyncio.gather(*(sender() for _ in range(IN_FLIGHT)))
        await reader
    finally:
        if not reader.done():
            reader.cancel()


def main_spread(workers: int, tasks: int) -> None:
    began = time.perf_counter()
    with TemporaryDirectory(prefix="by-framework-cluster-bench-") as logs:
        cluster = LocalCluster(replicas=1)
        try:
            cluster.start()
            rows = spread_on(cluster, workers, tasks, Path(logs))
        finally:
            cluster.stop()
    rate = next(iter(rows.values())).tasks_per_s
    print(
        f"by-framework cluster spread: {tasks} no-op tasks of {len(SPREAD_AGENT_TYPES)} agent "
        f"types over {SPREAD_SESSIONS} sessions, cluster 3+3, {workers} worker processes, "
        f"{rate:.0f} tasks/s, {time.perf_counter() - began:.0f} s"
    )
    print("  Redis CPU: INFO cpu (used_cpu_sys + used_cpu_user) delta over the run, per master")
    print()
    print(f"{'master':>8} {'agent-type streams':>19} {'sessions':>9} {'CPU s':>7} {'share':>6}")
    for port, row in rows.items():
        print(f"{port:>8} {row.streams:>19} {row.sessions:>9} {row.cpu_s:7.2f} {row.share:6.1%}")
    top = max(row.share for row in rows.values())
    print()
    print(f"busiest master's share of the Redis CPU: {top:.1%} (goal <= {GOAL_SHARE:.0%})")


Measured = dict[str, tuple[dict[str, float], dict[str, float]]]
"""One round: each server's figures and its commands per task, by server."""


def one_round(workers: int, tasks: int, samples: int, logs: Path) -> Measured:
    """One Redis, then the 3+3 cluster, then the 3+0 one, each started for its measurement
    and stopped after it (each server runs alone)."""
    figures: Measured = {}
    single = EmbeddedRedis().start()
    try:
        figures[ONE] = measure_on(
            "single", single.url, [single.port], workers, tasks, samples, logs
        )
    finally:
        single.stop()
    for name, replicas in ((CLUSTER, 1), (UNREPLICATED, 0)):
        cluster = LocalCluster(replicas=replicas)
        try:
            cluster.start()
            figures[name] = measure_on(
                f"cluster{replicas}", cluster.url, cluster.masters(), workers, tasks, samples,
                logs,
            )  # fmt: skip
        finally:
            cluster.stop()
    return figures


def ratios(figures: Measured) -> tuple[float, float]:
    """The 3+3 cluster's tasks/s and Redis CPU per task, each over one Redis's."""
    one, many = figures[ONE][0], figures[CLUSTER][0]
    return (
        many["tasks_per_s"] / one["tasks_per_s"],
        many["cpu_ms_per_task"] / one["cpu_ms_per_task"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1000 tasks and 100 latency samples")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    parser.add_argument(
        "--rounds", type=int, default=ROUNDS, help=f"times each server is measured ({ROUNDS})"
    )
    parser.add_argument(
        "--spread", action="store_true", help="how load spreads over the masters (only that)"
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    tasks, samples = (1_000, 100) if args.quick else (5_000, 300)
    if args.spread:
        main_spread(args.workers, 3 * tasks)
        return
    began = time.perf_counter()
    with TemporaryDirectory(prefix="by-framework-cluster-bench-") as logs:
        rounds = [one_round(args.workers, tasks, samples, Path(logs)) for _ in range(args.rounds)]
    print(
        f"by-framework cluster bench: {tasks} no-op tasks, {samples} latency samples, "
        f"{args.workers} worker processes, {args.rounds} rounds, "
        f"{time.perf_counter() - began:.0f} s"
    )
    print("\n".join(f"  {line}" for line in METHOD[:2]))
    print(
        "  Redis CPU per task: INFO cpu (used_cpu_sys + used_cpu_user) over the throughput run, "
        "summed over the masters, / N; socket reads and writes: INFO stats "
        "total_reads_processed / total_writes_processed, the same way; worker and client CPU: "
        "the worker processes' (/proc, summed) and this process's own, the same way"
    )
    print(
        "  rounds: one Redis, 3+3, 3+0 in turn, R times; each figure the median of the rounds, "
        "each ratio the median of the rounds' own ratios (one Redis and the cluster of the same "
        "round)"
    )
    print()
    print(
        f"{'':12} {'tasks/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'Redis CPU ms/task':>18} "
        f"{'socket reads/task':>18} {'writes/task':>12} {'worker CPU ms/task':>19} "
        f"{'client CPU ms/task':>19}"
    )
    for name in rounds[0]:
        row = {key: median(r[name][0][key] for r in rounds) for key in rounds[0][name][0]}
        print(
            f"{name:12} {row['tasks_per_s']:8.0f} {row['p50_ms']:7.2f} {row['p99_ms']:7.2f} "
            f"{row['cpu_ms_per_task']:18.3f} {row['reads_per_task']:18.2f} "
            f"{row['writes_per_task']:12.2f} {row['worker_cpu_ms_per_task']:19.3f} "
            f"{row['client_cpu_ms_per_task']:19.3f}"
        )
    each = [ratios(figures) for figures in rounds]
    rate, cpu = median(r for r, _ in each), median(c for _, c in each)
    print()
    print(
        f"cluster tasks/s / one Redis's: {rate:.0%} (goal >= {GOAL_RATE:.0%}); rounds: "
        + " / ".join(f"{r:.0%}" for r, _ in each)
    )
    print(
        f"cluster Redis CPU per task / one Redis's: {cpu:.2f}x (goal <= {GOAL_CPU}x); rounds: "
        + " / ".join(f"{c:.2f}x" for _, c in each)
    )
    print()
    for name, (_, commands) in rounds[-1].items():
        listed = ", ".join(f"{command} {count:.2f}" for command, count in commands.items())
        print(
            f"{name} commands per task (masters, last round): {sum(commands.values()):.1f}: "
            f"{listed}"
        )


if __name__ == "__main__":
    main()
