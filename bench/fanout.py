"""Fan-out benchmark: sub-calls (dispatch_group, call_agent) against plain client sends.

One run on the real Redis (REDIS_URL, else 127.0.0.1:6379, else an embedded redis-server; only a
Redis on this machine is accepted), under a key prefix of its own whose keys are deleted at the
end. Workers are real processes started through the CLI, every setting at its default: 1 parent
worker (``bench.agents.FanoutParentAgent``, agent type ``bench-parent``) and 2 child workers
(``bench.agents.NoopChildAgent``, ``bench-child``: returns "completed" at once). Each repetition
uses a session of its own; the client follows it with ``client.events`` (reading, as any follower
does, the children's events too).

(a) Fan-out: the client sends one parent task whose body is one ``dispatch_group`` of N children
    then ``collect_group_results``. Timed: the client's send -> the parent's result event read by
    the client. N = 100 (30 repetitions; 10 with --quick) and N = 1000 (10; 3 with --quick). The
    parent also reports the time spent inside each of its two calls.
(b) Chain: a parent makes 100 ``call_agent`` round trips one after another (3 chains; 1 with
    --quick). Timed, inside the parent: each call's latency (dispatch -> reply returned).
(c) Reference, the same work as plain top-level tasks of the same no-op child agent type:
    - for (a): the client sends N tasks (200 sends in flight, one ``send_message`` each) and reads
      the session until it has every result event; timed: first send -> last result read;
    - for (b): the client sends 100 tasks one at a time, each after the last one's result was
      read; timed per task: send -> its result event read.

Also reported: the ``dispatch`` scripts of each fan-out size that Redis logged in its SLOWLOG
(those slower than its ``slowlog-log-slower-than``; read only, the server's setting is left as is):
a script runs alone, so that long every other client of the server waits.

Every parent's result is checked: all children completed, group results in dispatch order.
Untimed warm-up first: one fan-out of 100, one chain of 20, 100 reference tasks.

Run from the project root:  .venv/bin/python bench/fanout.py [--quick]
"""

import argparse
import asyncio
import functools
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

if __package__ in (None, ""):  # run as a script: this checkout's bench and by_framework first
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import percentile
from bench.procs import BenchError, Child, children, deadline, wait_ready
from bench.session import bench_session
from by_framework import (
    AgentState,
    GatewayClient,
    Settings,
    TaskResultEvent,
    init_redis,
)
from by_framework.redis.scripts import DISPATCH

PARENT_CLASS = "bench.agents.FanoutParentAgent"
PARENT_TYPE = "bench-parent"
CHILD_CLASS = "bench.agents.NoopChildAgent"
CHILD_TYPE = "bench-child"
CHILD_WORKERS = 2

CHAIN_CALLS = 100
SEND_CONCURRENCY = 200
WORKER_SHUTDOWN_TIMEOUT_S = 5.0
WARMUP_FANOUT = 100
WARMUP_CHAIN = 20


@dataclass(frozen=True, slots=True)
class Plan:
    url: str
    prefix: str
    fanouts: tuple[tuple[int, int], ...]  # (children, repetitions)
    chains: int  # chains of CHAIN_CALLS call_agent, with as many reference sequences; 0: none
    logs: Path


@dataclass(frozen=True, slots=True)
class Row:
    case: str
    samples: int
    unit: str  # what one sample is
    values_ms: list[float]
    per: int = 1  # tasks per sample: the "per task" column is the mean divided by it

    @property
    def p50(self) -> float:
        return percentile(self.values_ms, 0.50)

    @property
    def p99(self) -> float:
        return percentile(self.values_ms, 0.99)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values_ms)


@dataclass(slots=True)
class Report:
    rows: list[Row]
    inside: list[str]  # lines: what the parents measured inside dispatch_group / collect


# Processes


def _worker_command(plan: Plan, worker_class: str, worker_id: str) -> list[str]:
    return [
        sys.executable, "-m", "by_framework",
        "--worker-class", worker_class,
        "--worker-id", worker_id,
        "--redis-url", plan.url,
        "--key-prefix", plan.prefix,
        "--shutdown-timeout", str(WORKER_SHUTDOWN_TIMEOUT_S),
    ]  # fmt: skip


def _run(plan: Plan) -> Report:
    commands = {"fanout-parent": _worker_command(plan, PARENT_CLASS, "fanout-parent")}
    for index in range(CHILD_WORKERS):
        worker_id = f"fanout-child-{index}"
        commands[worker_id] = _worker_command(plan, CHILD_CLASS, worker_id)
    with children(commands, plan.logs) as started:
        return asyncio.run(_measure(plan, started))


# Measurements


class Sessions:
    """A fresh session id per repetition: no run reads another's events."""

    def __init__(self) -> None:
        self._count = 0

    def __call__(self, tag: str) -> str:
        self._count += 1
        return f"fanout-{tag}-{self._count}"


async def _send_parent(
    client: GatewayClient, session: str, content: dict[str, Any]
) -> tuple[float, Any]:
    """Send one parent task; (send -> its result event read, in ms; the result's content)."""
    started = time.perf_counter()
    sent = await client.send_message(PARENT_TYPE, session, content)
    async for event in client.events(session, "0-0", until_message_id=sent.message_id):
        if event.message_id == sent.message_id and isinstance(event.event, TaskResultEvent):
            elapsed = (time.perf_counter() - started) * 1000
            result = event.event.result
            if result.status is not AgentState.COMPLETED:
                raise BenchError(f"parent task {content} ended {result.status}: {result.error}")
            return elapsed, result.content
    raise BenchError(f"parent task {sent.message_id} ended without a result")


async def _fanout(client: GatewayClient, session: str, children: int) -> tuple[float, Any]:
    elapsed, content = await _send_parent(client, session, {"op": "fanout", "n": children})
    if content["completed"] != children or not content["in_order"]:
        raise BenchError(f"fan-out of {children}: {content}")
    return elapsed, content


async def _chain(client: GatewayClient, session: str, calls: int) -> list[float]:
    _, content = await _send_parent(client, session, {"op": "chain", "n": calls})
    if content["not_completed"] or len(content["call_ms"]) != calls:
        raise BenchError(f"chain of {calls}: {content['not_completed']} calls did not complete")
    return list(content["call_ms"])


async def _burst(client: GatewayClient, session: str, tasks: int) -> float:
    """N top-level child tasks, 200 sends in flight: first send -> last result read (ms)."""
    indexes = iter(range(tasks))

    async def sender() -> None:
        for index in indexes:
            await client.send_message(CHILD_TYPE, session, index)

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(min(SEND_CONCURRENCY, tasks))))
    results = 0
    async for event in client.events(session, "0-0"):
        if isinstance(event.event, TaskResultEvent):
            if event.event.result.status is not AgentState.COMPLETED:
                raise BenchError(f"a reference task ended {event.event.result.status}")
            results += 1
            if results == tasks:
                return (time.perf_counter() - started) * 1000
    raise AssertionError("unreachable: client.events never ends on its own")


async def _sequential(client: GatewayClient, session: str, tasks: int) -> list[float]:
    """N top-level child tasks one at a time: send -> its result read (ms), per task."""
    latencies = []
    after = "0-0"
    for index in range(tasks):
        started = time.perf_counter()
        sent = await client.send_message(CHILD_TYPE, session, index)
        elapsed = None
        async for event in client.events(session, after, until_message_id=sent.message_id):
            after = event.stream_id
            if event.message_id == sent.message_id and isinstance(event.event, TaskResultEvent):
                elapsed = (time.perf_counter() - started) * 1000
        if elapsed is None:
            raise BenchError(f"reference task {sent.message_id} ended without a result")
        latencies.append(elapsed)
    return latencies


async def _measure(plan: Plan, children: list[Child]) -> Report:
    redis = init_redis(url=plan.url, max_connections=SEND_CONCURRENCY + 10)
    client = GatewayClient(redis, key_prefix=plan.prefix)
    session = Sessions()
    try:
        for child in children:
            await wait_ready(functools.partial(client.registry.is_online, child.name), children)
        await deadline("warm-up fan-out", _fanout(client, session("warm"), WARMUP_FANOUT))
        if plan.chains:
            await deadline("warm-up chain", _chain(client, session("warm"), WARMUP_CHAIN))
        await deadline("warm-up reference", _burst(client, session("warm"), WARMUP_FANOUT))

        rows: list[Row] = []
        inside: list[str] = []
        threshold = await _slowlog_threshold(redis)
        for size, reps in plan.fanouts:
            totals, dispatch_ms, collect_ms = [], [], []
            since = await _slowlog_last_id(redis)
            for _ in range(reps):
                elapsed, content = await deadline(
                    f"fan-out of {size}", _fanout(client, session(f"a{size}"), size)
                )
                totals.append(elapsed)
                dispatch_ms.append(content["dispatch_ms"])
                collect_ms.append(content["collect_ms"])
            rows.append(Row(f"(a) fan-out, group of {size}", reps, "parent", totals, size))
            references = [
                await deadline(
                    f"reference burst of {size}", _burst(client, session(f"c{size}"), size)
                )
                for _ in range(reps)
            ]
            rows.append(Row(f"(c) {size} top-level tasks", reps, "burst", references, size))
            inside.append(
                f"group of {size}, inside the parent (p50 / p99 ms): dispatch_group "
                f"{percentile(dispatch_ms, 0.5):.1f} / {percentile(dispatch_ms, 0.99):.1f}, "
                f"collect_group_results {percentile(collect_ms, 0.5):.1f} / "
                f"{percentile(collect_ms, 0.99):.1f}"
            )
            slow = await _slow_dispatches(redis, since, plan.prefix)
            inside.append(
                f"  its dispatch script in Redis: {len(slow)} of {reps} over "
                f"slowlog-log-slower-than ({threshold})"
                + (f", p50 {percentile(slow, 0.5):.1f} ms, max {max(slow):.1f} ms" if slow else "")
            )

        if plan.chains:
            rows += await _chains(client, session, plan.chains)
        return Report(rows, inside)
    finally:
        await client.aclose()
        await redis.aclose()


async def _chains(client: GatewayClient, session: Sessions, chains: int) -> list[Row]:
    """(b) and its reference (c): ``chains`` chains of CHAIN_CALLS calls, as many sequences."""
    calls: list[float] = []
    for _ in range(chains):
        calls += await deadline("chain", _chain(client, session("b"), CHAIN_CALLS))
    sequential: list[float] = []
    for _ in range(chains):
        sequential += await deadline(
            "reference sequence", _sequential(client, session("c-seq"), CHAIN_CALLS)
        )
    return [
        Row(f"(b) chain of {CHAIN_CALLS} call_agent", len(calls), "call", calls),
        Row(f"(c) {CHAIN_CALLS} top-level, one at a time", len(sequential), "task", sequential),
    ]


async def _slowlog_threshold(redis: Redis) -> str:
    try:
        reply = await redis.config_get("slowlog-log-slower-than")
    except ResponseError:  # CONFIG not allowed
        return "unknown"
    micros = int(reply.get("slowlog-log-slower-than", -1))
    return f"{micros / 1000:g} ms" if micros >= 0 else "off"


async def _slowlog_last_id(redis: Redis) -> int:
    entries = await redis.slowlog_get(1)
    return int(entries[0]["id"]) if entries else -1


async def _slow_dispatches(redis: Redis, since: int, prefix: str) -> list[float]:
    """Durations (ms) of this run's dispatch scripts logged in SLOWLOG after entry ``since``."""
    found = []
    for entry in await redis.slowlog_get(128):
        command = entry["command"]
        text = command.decode(errors="replace") if isinstance(command, bytes) else str(command)
        if int(entry["id"]) > since and DISPATCH.sha in text and f" {prefix}:" in text:
            found.append(entry["duration"] / 1000)
    return found


# Report


def _table(rows: Sequence[Row]) -> list[str]:
    header = ("case", "samples", "one sample", "p50 ms", "p99 ms", "mean ms", "mean per task ms")
    cells: list[Sequence[str]] = [header]
    for row in rows:
        cells.append(
            (
                row.case,
                str(row.samples),
                _sample_name(row),
                f"{row.p50:,.2f}",
                f"{row.p99:,.2f}",
                f"{row.mean:,.2f}",
                f"{row.mean / row.per:,.3f}",
            )
        )
    widths = [max(len(line[column]) for line in cells) for column in range(len(header))]

    def render(line: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(width) if column in (0, 2) else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(line, widths, strict=True))
        )

    return [render(cells[0]), render(["-" * width for width in widths])] + [
        render(line) for line in cells[1:]
    ]


def _sample_name(row: Row) -> str:
    names: dict[str, Callable[[Row], str]] = {
        "parent": lambda r: f"send -> parent result ({r.per} children)",
        "burst": lambda r: f"first send -> last of {r.per} results",
        "call": lambda _: "one call_agent, in the parent",
        "task": lambda _: "send -> its result read",
    }
    return names[row.unit](row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer repetitions: 10 x 100, 3 x 1000, 1 chain"
    )
    args = parser.parse_args()
    fanouts, chains = (((100, 10), (1000, 3)), 1) if args.quick else (((100, 30), (1000, 10)), 3)
    started = time.perf_counter()
    with bench_session("fanout") as session:
        plan = Plan(session.url, session.prefix, fanouts, chains, session.logs)
        report = _run(plan)
    defaults = Settings()
    print(f"by-framework fan-out bench: {session.machine}, {time.perf_counter() - started:.0f} s")
    print(
        f"settings: 1 parent worker ({PARENT_CLASS}), {CHILD_WORKERS} child workers "
        f"({CHILD_CLASS}: returns completed, no events of its own), real processes via the CLI, "
        f"every setting default (max_concurrency {defaults.max_concurrency}, fetch_count "
        f"{defaults.fetch_count}, sweep_interval {defaults.sweep_interval:g} s: a waiting "
        f"parent's re-check); one session per repetition; p99 is nearest-rank (with fewer than 100 "
        f"samples: the slowest)"
    )
    print()
    print("\n".join(_table(report.rows)))
    print()
    for line in report.inside:
        print(line)


if __name__ == "__main__":
    main()
