"""Processes the benchmarks start, and the time limits they run under.

Standard library only: the peer drivers import it too, from virtual environments that do not have
by-framework installed (``bench/peer_arq.py`` runs in one whose redis-py is pinned below 6).
"""

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent

START_TIMEOUT_S = 30.0
RUN_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0

T = TypeVar("T")


class BenchError(RuntimeError):
    """The benchmark could not measure what it set out to; the message says why."""


@dataclass(frozen=True, slots=True)
class Child:
    """A process the bench started; ``name`` is its worker id or consumer name."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def pids(started: Sequence[Child]) -> list[int]:
    return [child.process.pid for child in started]


@contextlib.contextmanager
def children(
    commands: dict[str, list[str]], logs: Path, env: dict[str, str] | None = None
) -> Iterator[list[Child]]:
    """One process per command, run from the project root (``env``: variables to add); those
    still running are stopped (SIGTERM) on exit."""
    started: list[Child] = []
    try:
        for name, command in commands.items():
            started.append(spawn(name, command, logs / f"{name}.log", env))
        yield started
    finally:
        stop_children(started)


def spawn(name: str, command: list[str], log: Path, env: dict[str, str] | None = None) -> Child:
    """One process run from the project root (``env``: variables to add), its output in ``log``;
    the caller stops it."""
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Child(name, process, log)


def worker_command(
    url: str, prefix: str, worker_class: str, worker_id: str, flags: Sequence[str]
) -> list[str]:
    """The CLI command of one by-framework worker process (``python -m by_framework``)."""
    options = ["--redis-url", url, "--key-prefix", prefix, *flags]
    command = [sys.executable, "-m", "by_framework", "--worker-class", worker_class]
    return [*command, "--worker-id", worker_id, *options]


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop_children(started: Sequence[Child]) -> None:
    """SIGTERM the children still running and reap them (SIGKILL after STOP_TIMEOUT_S)."""
    running = [child for child in started if child.process.poll() is None]
    for child in running:
        child.process.terminate()
    for child in running:
        _reap(child)


def _reap(child: Child) -> None:
    try:
        code = child.process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        child.process.kill()
        child.process.wait()
        print(f"warning: {child.name} ignored SIGTERM; killed", file=sys.stderr)
        return
    if code not in (0, -signal.SIGTERM):
        print(
            f"warning: {child.name} exited with status {code}:\n{child.log_tail()}", file=sys.stderr
        )


async def wait_ready(ready: Callable[[], Awaitable[bool]], started: Sequence[Child]) -> None:
    """Until ``ready()``; a BenchError if a child exits first or START_TIMEOUT_S passes."""
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            while not await ready():
                for child in started:
                    if child.process.poll() is not None:
                        raise BenchError(
                            f"{child.name} exited with status {child.process.returncode} before "
                            f"it was ready:\n{child.log_tail()}"
                        )
                await asyncio.sleep(0.05)
    except TimeoutError:
        names = ", ".join(child.name for child in started)
        raise BenchError(f"{names} not ready after {START_TIMEOUT_S:g} s") from None


async def deadline(what: str, work: Awaitable[T]) -> T:
    """``work``'s result, or a BenchError after RUN_TIMEOUT_S: a lost task must not hang."""
    try:
        async with asyncio.timeout(RUN_TIMEOUT_S):
            return await work
    except TimeoutError:
        raise BenchError(f"{what} did not finish within {RUN_TIMEOUT_S:g} s") from None


async def stop_task(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait for it; raise what it failed with, if anything.

    The cancel is repeated: on Python 3.11 a cancellation landing while redis-py writes a command
    (its ``asyncio.wait_for`` around the socket write) can be lost, and the task goes on reading.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.1)
    if not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]
