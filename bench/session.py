"""One run of a benchmark: the Redis it talks to, its own key prefix, a folder for logs."""

import asyncio
import contextlib
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from redis.asyncio import Redis

from bench.measure import delete_keys
from bench.procs import BenchError
from by_framework.redis.embedded import resolve_redis_url


@dataclass(frozen=True, slots=True)
class BenchSession:
    url: str
    prefix: str
    """Every key the run makes contains it; they are deleted at the end."""
    logs: Path
    """The worker processes' logs (deleted at the end)."""
    redis_version: str

    @property
    def machine(self) -> str:
        """What the run's figures were measured on, for its first line."""
        return f"Redis {self.redis_version} at {self.url}, {os.cpu_count()} CPUs"


@contextlib.contextmanager
def bench_session(
    name: str, redis: Callable[[], tuple[str, Callable[[], None]]] | None = None
) -> Iterator[BenchSession]:
    """A run of the benchmark ``name`` on a Redis of this machine: the one ``redis()`` starts
    (its URL and how to stop it), else ``local_redis_url()`` (REDIS_URL, else 127.0.0.1:6379,
    else an embedded redis-server, stopped at the end). The run's keys are deleted when it ends,
    however it ends; a ``BenchError`` ends the program with its message."""
    try:
        url, stop_redis = (redis or local_redis_url)()
        try:
            with tempfile.TemporaryDirectory(prefix=f"by-framework-{name}-") as logs:
                prefix = f"{name}-{uuid.uuid4().hex[:12]}"
                version = asyncio.run(redis_version(url))
                try:
                    yield BenchSession(url, prefix, Path(logs), version)
                finally:
                    asyncio.run(delete_keys(url, prefix))
        finally:
            stop_redis()
    except BenchError as exc:
        raise SystemExit(f"{name}: {exc}") from None


def local_redis_url() -> tuple[str, Callable[[], None]]:
    """The Redis URL and how to stop the embedded server started for it (a no-op if none)."""
    url, server = resolve_redis_url()
    stop = server.stop if server is not None else lambda: None
    host = urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost"):
        stop()
        raise BenchError(f"the bench only talks to a Redis on 127.0.0.1, not {host!r} ({url})")
    return url, stop


async def redis_version(url: str) -> str:
    redis = Redis.from_url(url)
    try:
        return str((await redis.info("server"))["redis_version"])
    finally:
        await redis.aclose()
