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
masters' CPU per task within 1.2x one Redis's.

Run from the project root:  .venv/bin/python bench/cluster.py [--quick] [--workers N]
"""

import argparse
import asyncio
import functools
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from tempfile import TemporaryDirectory

from redis.asyncio import Redis

if __package__ in (None, ""):  # run as a script: make the ``bench`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import METHOD, command_calls, latencies, percentile, throughput
from bench.procs import Child, children, deadline, wait_ready
from bench.run import WORKER_CLASS, WORKER_SHUTDOWN_TIMEOUT_S, framework_driver
from by_framework import GatewayClient, Settings
from by_framework.redis.embedded import EmbeddedRedis
from tests.support import LocalCluster

WARMUP = 200
ONE = "one Redis"
CLUSTER = "cluster 3+3"
UNREPLICATED = "cluster 3+0"
GOAL_RATE = 0.8
GOAL_CPU = 1.2


async def usage(ports: Sequence[int]) -> tuple[float, Counter[str]]:
    """CPU seconds (used_cpu_sys + used_cpu_user), and counts (calls per command from INFO
    commandstats; ``reads`` and ``writes``: the socket reads and writes of INFO stats) of the
    servers on these ports, summed."""
    cpu = 0.0
    counts: Counter[str] = Counter()
    for port in ports:
        redis = Redis(host="127.0.0.1", port=port)
        try:
            info = await redis.info("cpu")
            stats = await redis.info("stats")
            counts += await command_calls(redis)
        finally:
            await redis.aclose()
        cpu += float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
        counts["reads"] += stats["total_reads_processed"]
        counts["writes"] += stats["total_writes_processed"]
    return cpu, counts


def _worker_command(worker_id: str, url: str, prefix: str) -> list[str]:
    return [
        sys.executable, "-m", "by_framework",
        "--worker-class", WORKER_CLASS,
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
        rate = await deadline(f"{name} throughput", throughput(driver, f"{name}-run", tasks))
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
        "reads_per_task": io["reads"],
        "writes_per_task": io["writes"],
    }, {command: count / tasks for command, count in counts.most_common() if count >= tasks / 10}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1000 tasks and 100 latency samples")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    args = parser.parse_args()
    tasks, samples = (1_000, 100) if args.quick else (5_000, 300)
    began = time.perf_counter()
    figures: dict[str, tuple[dict[str, float], dict[str, float]]] = {}
    with TemporaryDirectory(prefix="by-framework-cluster-bench-") as logs:
        single = EmbeddedRedis().start()  # each server runs alone, for its own measurement
        try:
            figures[ONE] = measure_on(
                "single", single.url, [single.port], args.workers, tasks, samples, Path(logs)
            )
        finally:
            single.stop()
        for name, replicas in ((CLUSTER, 1), (UNREPLICATED, 0)):
            cluster = LocalCluster(replicas=replicas)
            try:
                cluster.start()
                figures[name] = measure_on(
                    f"cluster{replicas}", cluster.url, cluster.masters(), args.workers, tasks,
                    samples, Path(logs),
                )  # fmt: skip
            finally:
                cluster.stop()
    print(
        f"by-framework cluster bench: {tasks} no-op tasks, {samples} latency samples, "
        f"{args.workers} worker processes, {time.perf_counter() - began:.0f} s"
    )
    print("\n".join(f"  {line}" for line in METHOD[:2]))
    print(
        "  Redis CPU per task: INFO cpu (used_cpu_sys + used_cpu_user) over the throughput run, "
        "summed over the masters, / N; socket reads and writes: INFO stats "
        "total_reads_processed / total_writes_processed, the same way"
    )
    print()
    print(
        f"{'':12} {'tasks/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'Redis CPU ms/task':>18} "
        f"{'socket reads/task':>18} {'writes/task':>12}"
    )
    for name, (row, _) in figures.items():
        print(
            f"{name:12} {row['tasks_per_s']:8.0f} {row['p50_ms']:7.2f} {row['p99_ms']:7.2f} "
            f"{row['cpu_ms_per_task']:18.3f} {row['reads_per_task']:18.2f} "
            f"{row['writes_per_task']:12.2f}"
        )
    one, many = figures[ONE][0], figures[CLUSTER][0]
    rate = many["tasks_per_s"] / one["tasks_per_s"]
    cpu = many["cpu_ms_per_task"] / one["cpu_ms_per_task"]
    print()
    print(f"cluster tasks/s / one Redis's: {rate:.0%} (goal >= {GOAL_RATE:.0%})")
    print(f"cluster Redis CPU per task / one Redis's: {cpu:.2f}x (goal <= {GOAL_CPU}x)")
    print()
    for name, (_, commands) in figures.items():
        listed = ", ".join(f"{command} {count:.2f}" for command, count in commands.items())
        print(f"{name} commands per task (masters): {sum(commands.values()):.1f}: {listed}")


if __name__ == "__main__":
    main()
