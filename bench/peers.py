"""What every peer of the side-by-side bench shares: its command line, workers and driver run.

A peer module (``bench/peer_arq.py``, ``bench/peer_taskiq.py``) describes itself as a ``Peer`` and
calls ``main``. ``bench/run.py`` runs it with the peer's own Python, as

    python -m bench.peer_<name> drive REDIS_URL PREFIX WORKERS TASKS SAMPLES LOG_DIR

which starts WORKERS worker processes of the same module (``... worker REDIS_URL PREFIX NAME``),
measures the peer with ``bench.measure``, stops the workers, deletes every key whose name contains
PREFIX and prints the ``Figures`` as one JSON line. Each worker sets ``PREFIX:ready:NAME`` once it
is about to take tasks; its tasks' completions go to ``completion_stream(PREFIX, session)``.
"""

import argparse
import asyncio
import contextlib
import functools
import json
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from redis.asyncio import Redis

from bench.measure import (
    Driver,
    Figures,
    Mark,
    collect_streams,
    delete_keys,
    follow_stream,
    measure,
    one_by_one,
    stream_call,
)
from bench.procs import Child, children, pids, wait_ready


@dataclass(frozen=True, slots=True)
class Peer:
    system: str  # name and version, as the table shows it
    module: str  # "bench.peer_<name>"
    serve: Callable[[str, str, str], Awaitable[None]]  # (url, prefix, name): a worker till cancel
    connect: Callable[[str, str], contextlib.AbstractAsyncContextManager[Driver]]  # (url, prefix)


def completion_stream(prefix: str, session: str) -> str:
    return f"{prefix}:done:{session}"


def completion_driver(
    redis: Redis, prefix: str, send: Callable[[str, str], Awaitable[str]]
) -> Driver:
    """A peer's driver: ``send(session, key)`` enqueues a task; its completion is the entry the
    peer's post-completion hook XADDs to the session's completion stream."""

    async def collect(sessions: Sequence[str], count: int) -> None:
        streams = [completion_stream(prefix, session) for session in sessions]
        await collect_streams(redis, streams, count)

    async def follow(session: str, marks: asyncio.Queue[Mark]) -> None:
        await follow_stream(redis, completion_stream(prefix, session), marks)

    call = stream_call(redis, send, functools.partial(completion_stream, prefix))
    return Driver(send, one_by_one(send), collect, follow, call)


def ready_key(prefix: str, name: str) -> str:
    return f"{prefix}:ready:{name}"


def main(peer: Peer) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m {peer.module}")
    modes = parser.add_subparsers(dest="mode", required=True)
    worker = modes.add_parser("worker", help="one worker process, until SIGTERM")
    worker.add_argument("url")
    worker.add_argument("prefix")
    worker.add_argument("name")
    drive = modes.add_parser("drive", help="start workers, measure, print the figures (JSON)")
    drive.add_argument("url")
    drive.add_argument("prefix")
    drive.add_argument("workers", type=int)
    drive.add_argument("tasks", type=int)
    drive.add_argument("samples", type=int)
    drive.add_argument("logs", type=Path)
    args = parser.parse_args()
    if args.mode == "worker":
        asyncio.run(_work(peer, args.url, args.prefix, args.name))
        return
    names = [f"{args.prefix}-worker-{index}" for index in range(args.workers)]
    command = [sys.executable, "-m", peer.module, "worker", args.url, args.prefix]
    try:
        with children({name: [*command, name] for name in names}, args.logs) as started:
            figures = asyncio.run(_drive(peer, args, names, started))
    finally:
        asyncio.run(delete_keys(args.url, args.prefix))
    print(json.dumps(asdict(figures)))


async def _work(peer: Peer, url: str, prefix: str, name: str) -> None:
    """The peer's worker until SIGTERM, then its own clean shutdown."""
    serving = asyncio.ensure_future(peer.serve(url, prefix, name))
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, serving.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await serving


async def _drive(
    peer: Peer, args: argparse.Namespace, names: list[str], started: list[Child]
) -> Figures:
    redis = Redis.from_url(args.url)  # readiness and INFO commandstats
    try:
        keys = [ready_key(args.prefix, name) for name in names]

        async def ready() -> bool:
            return await redis.exists(*keys) == len(keys)

        await wait_ready(ready, started)
        async with peer.connect(args.url, args.prefix) as driver:
            tag = f"w{args.workers}"
            workers = pids(started)
            return await measure(peer.system, workers, driver, redis, tag, args.tasks, args.samples)
    finally:
        await redis.aclose()
