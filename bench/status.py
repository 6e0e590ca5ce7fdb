"""How long ``status`` takes on a large fleet: 100 agent types, 50 workers, 1M queued entries.

A redis-server of its own on a free port (so the million entries never touch a shared Redis),
filled with pipelined XADDs: 10,000 command entries on each of the 100 agent types' control
streams, a consumer group on each, 20 entries per stream fetched and left pending. 50 workers are
registered through the real registry code (lock, membership, profile and a report with an hour
of ended-task counts), each serving two agent types.

Reported: the fleet status query (``fleet_status``, what ``status`` and ``status --json`` print)
timed in process over 20 runs, and the whole ``python -m by_framework status --json`` command
(interpreter start included) over 5. The budget is 1 s.

Run from the project root:  .venv/bin/python bench/status.py
"""

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from by_framework import Settings
from by_framework.fleet import fleet_status
from by_framework.ports import WorkerProfile, WorkerReport
from by_framework.protocol import AskAgentCommand, MessageHeader, encode_command
from by_framework.redis.embedded import EmbeddedRedis
from by_framework.redis.engine import RedisEngine

ROOT = Path(__file__).resolve().parent.parent
AGENT_TYPES = 100
WORKERS = 50
ENTRIES = 1_000_000
PENDING_PER_STREAM = 20
BATCH = 5_000
QUERY_RUNS = 20
COMMAND_RUNS = 5
BUDGET_S = 1.0
PREFIX = "bench-status"


async def fill(engine: RedisEngine, settings: Settings) -> None:
    """The streams, their groups and pending entries, and the registered workers."""
    redis, keys = engine.redis, engine.keys
    agent_types = [f"agent-{i:03d}" for i in range(AGENT_TYPES)]
    streams = [keys.agent_type_stream(agent_type) for agent_type in agent_types]
    await engine.control.prepare(streams)
    header = MessageHeader(session_id="bench-session", target_agent_type=agent_types[0])
    entry = {b"e": encode_command(header, AskAgentCommand(content={"text": "x" * 64}))}
    per_stream = ENTRIES // AGENT_TYPES
    for stream in streams:
        for start in range(0, per_stream, BATCH):
            pipe = redis.pipeline(transaction=False)
            for _ in range(min(BATCH, per_stream - start)):
                pipe.xadd(stream, entry)
            await pipe.execute()
    ended = {
        int(time.time() // 60) - minute: {"completed": 120, "failed": 3} for minute in range(60)
    }
    for n in range(WORKERS):
        worker_id = f"worker-{n:02d}"
        served = agent_types[2 * n : 2 * n + 2]
        token = await engine.registry.acquire(worker_id, 3600)
        assert token is not None
        profile = WorkerProfile(f"instance-{n}", "bench-host", 1000 + n, time.time(), 50, 5.0)
        report = WorkerReport("running", PENDING_PER_STREAM * 2, None, ended)
        await engine.registry.register(worker_id, served, token, 3600, profile, report)
        fetcher = engine.control.fetcher(
            [keys.agent_type_stream(name) for name in served], worker_id
        )
        await fetcher.fetch(PENDING_PER_STREAM, 0, own_pending=False)
        await fetcher.aclose()


async def time_queries(engine: RedisEngine) -> list[float]:
    took = []
    for _ in range(QUERY_RUNS):
        started = time.perf_counter()
        status = await fleet_status(engine.fleet, 300)
        took.append(time.perf_counter() - started)
    queued = sum(a.queued or 0 for a in status.agent_types)
    pending = sum(a.pending for a in status.agent_types)
    if (len(status.workers), len(status.agent_types)) != (WORKERS, AGENT_TYPES):
        raise RuntimeError(f"saw {len(status.workers)} workers, {len(status.agent_types)} types")
    if queued + pending != ENTRIES:
        raise RuntimeError(f"saw {queued:,} queued and {pending:,} pending of {ENTRIES:,}")
    return took


def time_command(url: str) -> list[float]:
    env = {**os.environ, "REDIS_URL": url, "BYAI_KEY_PREFIX": PREFIX, "PYTHONPATH": str(ROOT)}
    took = []
    for _ in range(COMMAND_RUNS):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "by_framework", "status", "--json"],
            env=env,
            capture_output=True,
            check=True,
        )
        took.append(time.perf_counter() - started)
        if len(json.loads(done.stdout)["workers"]) != WORKERS:
            raise RuntimeError("status --json did not list every worker")
    return took


async def main() -> None:
    server = EmbeddedRedis().start()
    try:
        settings = Settings.resolve(redis_url=server.url, key_prefix=PREFIX)
        engine = RedisEngine.connect(settings)
        try:
            started = time.perf_counter()
            await fill(engine, settings)
            print(
                f"filled {ENTRIES:,} entries on {AGENT_TYPES} streams, {WORKERS} workers in "
                f"{time.perf_counter() - started:.1f}s"
            )
            queries = await time_queries(engine)
        finally:
            await engine.aclose()
        commands = time_command(server.url)
    finally:
        server.stop()
    print(
        f"fleet status query: median {statistics.median(queries) * 1000:.1f} ms, "
        f"max {max(queries) * 1000:.1f} ms ({QUERY_RUNS} runs)"
    )
    print(
        f"python -m by_framework status --json, whole process: median "
        f"{statistics.median(commands) * 1000:.0f} ms, max {max(commands) * 1000:.0f} ms "
        f"({COMMAND_RUNS} runs)"
    )
    worst = max(max(queries), max(commands))
    verdict = "within" if worst < BUDGET_S else "OVER"
    print(f"{verdict} the {BUDGET_S:g} s budget (worst {worst:.2f} s)")


if __name__ == "__main__":
    asyncio.run(main())
