"""Metrics A/B: a worker's CPU per no-op task with its metrics port off, and on.

Each pair is two worker processes measured side by side, at the same time, on the same load:
one ``bench.agents.NoopAgent`` worker without metrics and one ``NoopAgentB`` worker (the same
agent under its own agent type) with ``--metrics-port``, both started through the CLI with
``--log-level WARNING`` (the per-task log line is not what is measured). Tasks alternate between
the two agent types, so each worker gets exactly half: 200 untimed warm-up tasks, then N sent as
``bench/run.py``'s throughput run sends them (``bench/measure.py``). Each worker's CPU time
(user + system, from /proc) over the N tasks, divided by its N / 2, is its CPU per task.
Measured side by side, the machine's other load (a CI job, another benchmark) weighs on both
arms alike, which runs taken one after the other cannot promise on a shared machine. On a
machine of two CPUs or more, both workers are pinned to one CPU, which they share as equals,
and the bench process to the others; pairs alternate which worker starts first. The metrics
worker is scraped once a second while it runs
(Prometheus scrapes every 15 s or so: this charges the scrapes more than they will cost), and
its counters are checked against the tasks it was sent.

Also printed: what the metrics calls a task makes cost by themselves, timed in this process
(``PrometheusMetrics`` against the no-op ``NO_METRICS``): the floor under the A/B's figure,
free of its noise. The goal is a median difference of at most 3 %.

Run from the project root:  .venv/bin/python bench/metrics_ab.py [--pairs 7] [--tasks 20000]
"""

import argparse
import asyncio
import contextlib
import functools
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

if __package__ in (None, ""):  # run as a script: this checkout's bench and by_framework first
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import IN_FLIGHT, SESSIONS, WARMUP_TASKS, Driver, one_by_one, throughput
from bench.procs import BenchError, Child, children, deadline, free_port, wait_ready, worker_command
from bench.procstat import cpu_seconds
from bench.run import framework_driver
from bench.session import BenchSession, bench_session
from by_framework import GatewayClient, init_redis
from by_framework.metrics import NO_METRICS, WorkerLoad, WorkerMetrics
from by_framework.metrics.prometheus import PrometheusMetrics
from by_framework.protocol import AgentState

GOAL_PERCENT = 3.0
SCRAPE_EVERY_S = 1.0
WORKER_FLAGS = ("--shutdown-timeout", "5", "--log-level", "WARNING")
OFF = ("bench.agents.NoopAgent", "bench-noop")
ON = ("bench.agents.NoopAgentB", "bench-noop-b")
CALLS_TIMED = 200_000
_CPUS = sorted(os.sched_getaffinity(0))
WORKERS_CPU = _CPUS[-1] if len(_CPUS) >= 2 else None
"""The CPU both workers share (none on a machine of one CPU); the bench keeps off it."""


@dataclass(frozen=True, slots=True)
class Pair:
    off_cpu_per_task_s: float
    on_cpu_per_task_s: float
    tasks_per_s: float

    @property
    def percent(self) -> float:
        return _percent(self.off_cpu_per_task_s, self.on_cpu_per_task_s)


def _percent(off: float, on: float) -> float:
    return (on - off) / off * 100


def _pair(session: BenchSession, index: int, tasks: int) -> Pair:
    """Two workers, metrics off and on, measured side by side over ``tasks`` tasks."""
    prefix = f"{session.prefix}:pair{index}"
    port = free_port()
    commands = {
        f"off-{index}": worker_command(session.url, prefix, OFF[0], f"off-{index}", WORKER_FLAGS),
        f"on-{index}": worker_command(
            session.url, prefix, ON[0], f"on-{index}", [*WORKER_FLAGS, "--metrics-port", str(port)]
        ),
    }
    if index % 2:  # alternate which one starts first
        commands = dict(reversed(commands.items()))
    with children(commands, session.logs) as started:
        if WORKERS_CPU is not None:
            for child in started:
                os.sched_setaffinity(child.process.pid, {WORKERS_CPU})
        by_arm = {child.name.split("-")[0]: child for child in started}
        return asyncio.run(_measured(session.url, prefix, by_arm["off"], by_arm["on"], port, tasks))


async def _measured(url: str, prefix: str, off: Child, on: Child, port: int, tasks: int) -> Pair:
    redis = init_redis(url=url, max_connections=SESSIONS + IN_FLIGHT)
    client = GatewayClient(redis, key_prefix=prefix)
    try:
        for worker in (off, on):
            await wait_ready(functools.partial(client.registry.is_online, worker.name), [off, on])
        driver = _alternating(client, (OFF[1], ON[1]))
        await deadline("warm-up", throughput(driver, "warm", WARMUP_TASKS))
        async with _scraped(port):
            before = [cpu_seconds(worker.process.pid) for worker in (off, on)]
            rate = await deadline("run", throughput(driver, "run", tasks))
            after = [cpu_seconds(worker.process.pid) for worker in (off, on)]
        await _check_counted(port, (WARMUP_TASKS + tasks) // 2)
        share = tasks / 2
        return Pair((after[0] - before[0]) / share, (after[1] - before[1]) / share, rate)
    finally:
        await client.aclose()
        await redis.aclose()


def _alternating(client: GatewayClient, agent_types: Sequence[str]) -> Driver:
    """``bench/run.py``'s driver, sending task k to ``agent_types[k % 2]``."""
    base = framework_driver(client)

    async def send(session: str, key: str) -> str:
        agent_type = agent_types[int(key) % len(agent_types)]
        return (await client.send_message(agent_type, session, "x")).message_id

    return Driver(send, one_by_one(send), base.collect, base.follow, base.call)


@contextlib.asynccontextmanager
async def _scraped(port: int) -> AsyncIterator[None]:
    """Scrape ``/metrics`` once a second meanwhile."""

    async def scrape_forever(http: httpx.AsyncClient) -> None:
        while True:
            (await http.get(f"http://127.0.0.1:{port}/metrics")).raise_for_status()
            await asyncio.sleep(SCRAPE_EVERY_S)

    async with httpx.AsyncClient() as http:
        scraping = asyncio.create_task(scrape_forever(http))
        try:
            yield
        finally:
            scraping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await scraping


async def _check_counted(port: int, expected: int) -> None:
    """The metrics worker counted every task it ran: its metrics were on, and recording."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    ended = sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "byai_worker_tasks_ended"
        for sample in family.samples
        if sample.name == "byai_worker_tasks_ended_total"
    )
    if ended != expected:
        raise BenchError(f"the metrics worker counted {ended:g} ended tasks, not {expected}")


def calls_cost_s(metrics: WorkerMetrics, calls: int = CALLS_TIMED) -> float:
    """CPU seconds of the metrics calls one task makes (its start and its end)."""
    entry_id = f"{int(time.time() * 1000)}-0"
    started = time.process_time()
    for _ in range(calls):
        metrics.task_started(ON[1], entry_id)
        metrics.task_ended(ON[1], AgentState.COMPLETED, 0.001)
    return (time.process_time() - started) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=7, help="pairs of workers (7)")
    parser.add_argument("--tasks", type=int, default=20_000, help="measured tasks per pair")
    args = parser.parse_args()
    tasks = args.tasks + args.tasks % 2  # even: the two workers get exactly half each
    if WORKERS_CPU is not None:
        os.sched_setaffinity(0, set(_CPUS) - {WORKERS_CPU})
    pairs: list[Pair] = []
    with bench_session("metrics-ab") as session:
        print(
            f"metrics A/B: {session.machine}; {args.pairs} pairs of workers (metrics off, on) "
            f"side by side, {tasks} no-op tasks per pair, half each (after {WARMUP_TASKS} "
            f"warm-up tasks); workers on CPU {WORKERS_CPU}, sharing it"
        )
        print(f"{'pair':<5} {'off µs/task':>12} {'on µs/task':>11} {'on - off':>9} {'tasks/s':>8}")
        for index in range(args.pairs):
            pair = _pair(session, index, tasks)
            pairs.append(pair)
            print(
                f"{index + 1:<5} {pair.off_cpu_per_task_s * 1e6:>12.1f} "
                f"{pair.on_cpu_per_task_s * 1e6:>11.1f} {pair.percent:>+8.1f}% "
                f"{pair.tasks_per_s:>8,.0f}",
                flush=True,
            )
    off = statistics.median(pair.off_cpu_per_task_s for pair in pairs)
    on = statistics.median(pair.on_cpu_per_task_s for pair in pairs)
    difference = statistics.median(pair.percent for pair in pairs)
    verdict = "met" if difference <= GOAL_PERCENT else "NOT met"
    print(
        f"median CPU per task: off {off * 1e6:.1f} µs, on {on * 1e6:.1f} µs; median of the "
        f"pairs' differences {difference:+.1f} % (goal <= {GOAL_PERCENT:g} %: {verdict})"
    )
    load = lambda: WorkerLoad(0, 50, 0, 0, 0, 0)  # noqa: E731  (never read while timing)
    calls = calls_cost_s(PrometheusMetrics([ON[1]], load)) - calls_cost_s(NO_METRICS)
    print(
        f"the metrics calls of one task, timed alone: {calls * 1e6:.2f} µs "
        f"({_percent(off, off + calls):+.1f} % of the median CPU per task without metrics)"
    )


if __name__ == "__main__":
    main()
