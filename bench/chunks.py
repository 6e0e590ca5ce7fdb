"""Chunk streaming rate, worker -> reader: one task emits N chunks, a client reads them.

One worker process (``bench.agents.ChunkAgent``, started through the CLI, every setting at its
default) runs a task that makes N = 5,000 awaited ``emit_chunk`` calls of 4 characters each, as a
model streaming tokens does; the client reads the task's session with ``client.events``. Each
repetition (5; 2 with --quick; one untimed task of 1,000 chunks first) has a session of its own.
Reported: chunks/s = (N - 1) / (first chunk read -> last chunk read), and send -> end read. Every
chunk must be read (a missing one is an error); N stays well under the session stream's bound
(``data_stream_maxlen``, 10,000 by default), so trimming cannot take a chunk the reader has not
read yet.

One run on the real Redis (REDIS_URL, else 127.0.0.1:6379, else an embedded redis-server; only a
Redis on this machine is accepted), under a key prefix of its own whose keys are deleted at the end.

Run from the project root:  .venv/bin/python bench/chunks.py [--quick]
"""

import argparse
import asyncio
import functools
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: this checkout's bench and by_framework first
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import targets
from bench.procs import BenchError, Child, children, deadline, wait_ready
from bench.session import bench_session
from by_framework import GatewayClient, StreamChunkEvent, TaskEndEvent, init_redis

WORKER_CLASS = "bench.agents.ChunkAgent"
AGENT_TYPE = "bench-chunks"
WORKER_ID = "chunks-worker"
CHUNKS = 5_000
WARMUP_CHUNKS = 1_000
REPEATS = 5
QUICK_REPEATS = 2


@dataclass(frozen=True, slots=True)
class ChunkReport:
    chunks: int  # per task
    rates: list[float]  # chunks/s, one per repetition
    end_ms: list[float]  # send -> end read, one per repetition

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    def lines(self) -> list[str]:
        return [
            f"chunk streaming, worker -> reader: {len(self.rates)} tasks of {self.chunks:,} "
            f"awaited emit_chunk calls, 1 worker, read with client.events",
            f"  chunks/s ((N - 1) / first -> last chunk read): median {self.median:,.0f}, "
            f"min {min(self.rates):,.0f}, max {max(self.rates):,.0f}; send -> end read: median "
            f"{statistics.median(self.end_ms):,.0f} ms",
        ]


def run(url: str, prefix: str, logs: Path, repeats: int) -> ChunkReport:
    command = [
        sys.executable, "-m", "by_framework",
        "--worker-class", WORKER_CLASS,
        "--worker-id", WORKER_ID,
        "--redis-url", url,
        "--key-prefix", prefix,
    ]  # fmt: skip
    with children({WORKER_ID: command}, logs) as started:
        return asyncio.run(_measure(url, prefix, started, repeats))


async def _measure(url: str, prefix: str, started: list[Child], repeats: int) -> ChunkReport:
    redis = init_redis(url=url)
    client = GatewayClient(redis, key_prefix=prefix)
    try:
        await wait_ready(functools.partial(client.registry.is_online, WORKER_ID), started)
        await deadline("chunk warm-up", _stream(client, "chunks-warm", WARMUP_CHUNKS))
        rates, end_ms = [], []
        for index in range(repeats):
            rate, end = await deadline("chunk stream", _stream(client, f"chunks-{index}", CHUNKS))
            rates.append(rate)
            end_ms.append(end)
        return ChunkReport(CHUNKS, rates, end_ms)
    finally:
        await client.aclose()
        await redis.aclose()


async def _stream(client: GatewayClient, session: str, chunks: int) -> tuple[float, float]:
    """One task of ``chunks`` chunks: (chunks/s between the first and last read, send -> end ms)."""
    started = time.perf_counter()
    sent = await client.send_message(AGENT_TYPE, session, {"n": chunks})
    first = last = ended = None
    read = 0
    async for event in client.events(session, until_message_id=sent.message_id):
        if event.message_id != sent.message_id:
            continue
        if isinstance(event.event, StreamChunkEvent):
            last = time.perf_counter()
            first = last if first is None else first
            read += 1
        elif isinstance(event.event, TaskEndEvent):
            ended = time.perf_counter()
    if read != chunks or first is None or last is None or ended is None:
        raise BenchError(f"read {read} of {chunks} chunks of task {sent.message_id}")
    return (chunks - 1) / (last - first), (ended - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_REPEATS} repetitions")
    args = parser.parse_args()
    started = time.perf_counter()
    with bench_session("chunks") as session:
        repeats = QUICK_REPEATS if args.quick else REPEATS
        report = run(session.url, session.prefix, session.logs, repeats)
    print(f"by-framework chunk bench: {session.machine}, {time.perf_counter() - started:.0f} s")
    print("\n".join(report.lines()))
    print("\n".join(targets.render([targets.chunk_rate(report.median)])))


if __name__ == "__main__":
    main()
