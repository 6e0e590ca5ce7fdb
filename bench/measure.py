"""How every system of the side-by-side comparison is measured: defined once, here.

``bench/run.py`` measures by-framework and the raw redis-py loops with these functions; the peer
drivers (``bench/peer_arq.py``, ``bench/peer_taskiq.py``) measure arq and taskiq with the very same
ones, in processes of their own. Standard library and redis-py only: arq's virtual environment has
redis-py 5, not by-framework.

A system is reached through a ``Driver``: how to queue one task, how to queue a whole throughput
run, and how to read completions. Tasks belong to sessions, plain names: by-framework's sessions;
for the other systems one completion stream per session, on which a task's completion is an entry
whose field ``t`` is the task's key.
"""

import asyncio
import math
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from bench.procs import deadline, stop_task
from bench.procstat import total_cpu_seconds

SESSIONS = 50
IN_FLIGHT = 200
CONCURRENCY = 50  # tasks one worker process runs at once, in every system (by-framework's default)
WARMUP_TASKS = 200
READ_BLOCK_MS = 1_000

METHOD = (
    "throughput: N no-op tasks over 50 sessions, 200 enqueue calls in flight (raw batched: "
    "pipelines of 100), completions read by readers started before the first send; "
    "tasks/s = N / (first send -> last completion read); 200 untimed warm-up tasks first",
    "latency: tasks sent one at a time, each after the last one's completion; done = send -> "
    "its completion read by a reader blocked on its stream; first = send -> its first output "
    "read (by-framework: its chunk; the others have no output before their completion); "
    "p50/p99 nearest-rank",
    "call: tasks one at a time, each sent and then awaited by a read of its own, as a caller "
    "with nothing running in the background does: by-framework: send_message, then "
    "wait_for_result(message_id); the others: the send, then XREAD BLOCK on the session's "
    "completion stream from the last entry the caller read there",
    "cmds/task: Redis INFO commandstats delta over the timed throughput run / N (every client of "
    "the server, calls inside Lua scripts included); Redis CPU/task: INFO used_cpu_sys + "
    "used_cpu_user delta over the same run / N; worker CPU/task: the worker processes' CPU "
    "time (/proc) over the same run, summed, / N; client CPU/task: the measuring process's own "
    "(it sends the tasks and reads their completions) the same way",
    "completion: by-framework: the task's end event on its session (client.events); raw: the "
    "consumer's reply; arq: an entry XADDed by after_job_end (job finished, result stored); "
    "taskiq: an entry XADDed by a middleware's post_save (result stored; its XACK follows)",
    f"concurrency: {CONCURRENCY} tasks at once per worker process, in every system",
    "rounds: every system is measured R times in turn (--rounds; 3 by default); tasks/s, "
    "cmds/task and Redis CPU/task are the medians of the rounds, each round's tasks/s listed "
    "below the table; latency percentiles are over the samples of all rounds together",
)

FIRST, DONE = "first", "done"
Mark = tuple[str, str, float]  # (task key, FIRST or DONE, perf_counter when read)

Send = Callable[[str, str], Awaitable[str]]
SendMany = Callable[[Sequence[tuple[str, str]]], Awaitable[None]]
Collect = Callable[[Sequence[str], int], Awaitable[None]]
Follow = Callable[[str, "asyncio.Queue[Mark]"], Awaitable[None]]
Call = Callable[[str, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Driver:
    """How the bench talks to one system."""

    send: Send  # queue one task (session, key); returns the key its completion will carry
    send_many: SendMany  # queue a throughput run's tasks
    collect: Collect  # return once this many completions were read on these sessions
    follow: Follow  # put a mark for every output and completion read on one session, forever
    call: Call  # send one task (session, key); return once a read of its own saw it complete


@dataclass(frozen=True, slots=True)
class Figures:
    """One system, one worker count. JSON-safe: peer drivers print it."""

    system: str
    workers: int
    tasks_per_s: float
    first_ms: list[float]
    done_ms: list[float]
    call_ms: list[float]  # send -> completion, awaited by a read of its own (``Driver.call``)
    commands: dict[str, float]  # Redis commands per task, by command
    redis_cpu_ms: float  # Redis's CPU time per task over the throughput run
    worker_cpu_ms: float  # the worker processes' CPU time per task over that run, summed
    client_cpu_ms: float  # the sending and reading process's CPU time per task over that run


def by_system(rounds: Sequence[Sequence[Figures]]) -> dict[tuple[str, int], list[Figures]]:
    """Each system and worker count's figures, one per round, in the first round's order."""
    grouped: dict[tuple[str, int], list[Figures]] = {}
    for figures in rounds:
        for f in figures:
            grouped.setdefault((f.system, f.workers), []).append(f)
    return grouped


def median_figures(rounds: Sequence[Sequence[Figures]]) -> list[Figures]:
    """One Figures per system and worker count of several rounds (METHOD's "rounds")."""
    merged = []
    for (system, workers), runs in by_system(rounds).items():
        names = {name for f in runs for name in f.commands}
        merged.append(
            Figures(
                system,
                workers,
                statistics.median(f.tasks_per_s for f in runs),
                [ms for f in runs for ms in f.first_ms],
                [ms for f in runs for ms in f.done_ms],
                [ms for f in runs for ms in f.call_ms],
                {n: statistics.median(f.commands.get(n, 0.0) for f in runs) for n in names},
                statistics.median(f.redis_cpu_ms for f in runs),
                statistics.median(f.worker_cpu_ms for f in runs),
                statistics.median(f.client_cpu_ms for f in runs),
            )
        )
    return merged


def sessions(tag: str) -> list[str]:
    return [f"{tag}-{index}" for index in range(SESSIONS)]


def one_by_one(send: Send) -> SendMany:
    """A throughput run's sends: one enqueue call per task, IN_FLIGHT at a time."""

    async def send_many(tasks: Sequence[tuple[str, str]]) -> None:
        pending = iter(tasks)

        async def sender() -> None:
            for session, key in pending:
                await send(session, key)

        await asyncio.gather(*(sender() for _ in range(min(IN_FLIGHT, len(tasks)))))

    return send_many


async def measure(
    system: str,
    worker_pids: Sequence[int],
    driver: Driver,
    redis: Redis,
    tag: str,
    tasks: int,
    samples: int,
) -> Figures:
    """Warm-up, throughput, latency: every system's figures, taken the same way.

    ``worker_pids``: the system's worker processes; ``redis``: any client of the server, for
    INFO commandstats and cpu.
    """
    workers = len(worker_pids)
    await deadline(f"{system} warm-up", throughput(driver, f"{tag}-warm", WARMUP_TASKS))
    before, cpu_before = await command_calls(redis), await redis_cpu(redis)
    workers_before, client_before = total_cpu_seconds(worker_pids), time.process_time()
    rate = await deadline(
        f"{system} throughput ({workers} workers)", throughput(driver, f"{tag}-run", tasks)
    )
    worker_cpu = total_cpu_seconds(worker_pids) - workers_before
    client_cpu = time.process_time() - client_before
    calls, cpu = await command_calls(redis) - before, await redis_cpu(redis) - cpu_before
    first_ms, done_ms = await deadline(
        f"{system} latency ({workers} workers)", latencies(driver, f"{tag}-latency", samples)
    )
    call_ms = await deadline(
        f"{system} calls ({workers} workers)", call_latencies(driver, f"{tag}-call", samples)
    )
    commands = {name: count / tasks for name, count in calls.items()}
    redis_ms, worker_ms, client_ms = (s * 1000 / tasks for s in (cpu, worker_cpu, client_cpu))
    return Figures(
        system, workers, rate, first_ms, done_ms, call_ms, commands, redis_ms, worker_ms, client_ms
    )


async def throughput(driver: Driver, tag: str, tasks: int) -> float:
    """Tasks per second: N / (first send -> last completion read)."""
    names = sessions(tag)
    work = [(names[index % SESSIONS], str(index)) for index in range(tasks)]
    start = time.perf_counter()
    reader = asyncio.create_task(driver.collect(names, tasks))
    try:
        await driver.send_many(work)
        await reader
    finally:
        if not reader.done():
            await stop_task(reader)
    return tasks / (time.perf_counter() - start)


async def latencies(driver: Driver, session: str, samples: int) -> tuple[list[float], list[float]]:
    """Send -> first output and send -> completion (ms) of tasks sent one at a time."""
    marks: asyncio.Queue[Mark] = asyncio.Queue()
    reader = asyncio.create_task(driver.follow(session, marks))
    first_ms, done_ms = [], []
    try:
        for index in range(samples):
            start = time.perf_counter()
            key = await driver.send(session, str(index))
            first = None
            while True:
                got, kind, at = await marks.get()
                if got != key:
                    continue
                first = at if first is None else first
                if kind == DONE:
                    break
            first_ms.append((first - start) * 1000)
            done_ms.append((at - start) * 1000)
    finally:
        await stop_task(reader)
    return first_ms, done_ms


async def call_latencies(driver: Driver, session: str, samples: int) -> list[float]:
    """Send -> completion (ms) of tasks sent one at a time, each awaited by a read of its own."""
    took = []
    for index in range(samples):
        start = time.perf_counter()
        await driver.call(session, str(index))
        took.append((time.perf_counter() - start) * 1000)
    return took


async def command_calls(redis: Redis) -> Counter[str]:
    """Calls per command since the server started (INFO commandstats)."""
    stats = await redis.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): row["calls"] for name, row in stats.items()})


async def redis_cpu(redis: Redis) -> float:
    """Seconds of CPU the server has used since it started (INFO cpu, system and user)."""
    stats = await redis.info("cpu")
    return float(stats["used_cpu_sys"]) + float(stats["used_cpu_user"])


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


# Completion streams: raw and peers


async def collect_streams(redis: Redis, streams: Sequence[str], count: int) -> None:
    """Until ``count`` entries were read on the streams, from their start."""
    positions: dict[str, bytes | str] = dict.fromkeys(streams, "0-0")
    seen = 0
    while seen < count:
        for stream, entries in await redis.xread(positions, block=READ_BLOCK_MS) or []:
            positions[stream.decode()] = entries[-1][0]
            seen += len(entries)


async def follow_stream(redis: Redis, stream: str, marks: "asyncio.Queue[Mark]") -> None:
    """A DONE mark for every entry of ``stream``, from its start: its completions."""
    position: bytes | str = "0-0"
    while True:
        reply = await redis.xread({stream: position}, block=READ_BLOCK_MS)
        at = time.perf_counter()
        for _, entries in reply or []:
            for entry_id, fields in entries:
                position = entry_id
                marks.put_nowait((fields[b"t"].decode(), DONE, at))


def stream_call(redis: Redis, send: Send, stream_of: Callable[[str], str]) -> Call:
    """A ``Driver.call`` for a system whose completions are entries of a stream per session
    (field ``t``: the task's key): the send, then blocking reads of the stream from the last
    entry this caller read there until the task's entry."""
    positions: dict[str, bytes | str] = {}

    async def call(session: str, key: str) -> None:
        stream = stream_of(session)
        position = positions.get(stream, "0-0")
        await send(session, key)
        done = False
        while not done:
            for _, entries in await redis.xread({stream: position}, block=READ_BLOCK_MS) or []:
                for entry_id, fields in entries:
                    position = entry_id
                    done = done or fields[b"t"].decode() == key
        positions[stream] = position

    return call


async def delete_keys(url: str, prefix: str) -> None:
    """Delete every key whose name contains ``prefix`` (a run's own, unique prefix).

    "Contains", not "starts with": arq names its job keys ``arq:job:<job id>``, and the bench's
    job ids carry the prefix.
    """
    redis = Redis.from_url(url)
    try:
        batch = []
        async for key in redis.scan_iter(match=f"*{prefix}*", count=1_000):
            batch.append(key)
            if len(batch) == 500:
                await redis.delete(*batch)
                batch = []
        if batch:
            await redis.delete(*batch)
    finally:
        await redis.aclose()
