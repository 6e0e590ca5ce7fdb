"""arq as a peer of the side-by-side bench: a no-op job, its workers and its driver.

arq pins redis-py below 6 and by-framework needs 8, so arq runs in a virtual environment of its
own (``.venv-arq``, arq alone); ``bench/run.py`` runs this module with that environment's Python
(see ``bench.peers`` for the command line). The bench's job ids carry the run's prefix, so every
key arq writes (``arq:job:<id>``, ``arq:result:<id>``, ``arq:in-progress:<id>``, the queue) is the
run's.

Settings: ``max_jobs`` = the bench's concurrency, the rest arq's defaults (results kept an hour)
except ``poll_delay``. arq finds jobs by polling its queue, ``poll_delay`` (0.5 s by default) after
the start of its last poll: at the default a job sent to an idle worker waits up to 0.5 s (about
0.5 s in the one-at-a-time latency run) and a worker idles between batches. At POLL_DELAY_S arq is
measured at its best rather than its default: lower delays gave it no more throughput here.
"""

import contextlib
from collections.abc import AsyncIterator
from importlib.metadata import version
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.worker import Worker, func

from bench.measure import CONCURRENCY, Driver
from bench.peers import Peer, completion_driver, completion_stream, main, ready_key

POLL_DELAY_S = 0.002
FUNCTION = "noop"


async def noop(ctx: dict[str, Any]) -> None:
    """The job: nothing."""


def _queue(prefix: str) -> str:
    return f"{prefix}:queue"


def _job_id(prefix: str, session: str, key: str) -> str:
    return f"{prefix}:{session}:{key}"


def _session_and_key(prefix: str, job_id: str) -> tuple[str, str]:
    session, key = job_id.removeprefix(f"{prefix}:").rsplit(":", 1)
    return session, key


async def serve(url: str, prefix: str, name: str) -> None:
    async def started(ctx: dict[str, Any]) -> None:
        await ctx["redis"].set(ready_key(prefix, name), 1)

    async def finished(ctx: dict[str, Any]) -> None:
        """After arq has recorded the job's result and removed it: its completion."""
        session, key = _session_and_key(prefix, ctx["job_id"])
        await ctx["redis"].xadd(completion_stream(prefix, session), {"t": key})

    worker = Worker(
        functions=[func(noop, name=FUNCTION)],
        queue_name=_queue(prefix),
        redis_settings=RedisSettings.from_dsn(url),
        on_startup=started,
        after_job_end=finished,
        max_jobs=CONCURRENCY,
        poll_delay=POLL_DELAY_S,
        handle_signals=False,  # bench.peers stops the worker on SIGTERM
    )
    try:
        await worker.async_run()
    finally:
        await worker.close()


@contextlib.asynccontextmanager
async def connect(url: str, prefix: str) -> AsyncIterator[Driver]:
    redis: ArqRedis = await create_pool(
        RedisSettings.from_dsn(url), default_queue_name=_queue(prefix)
    )

    async def send(session: str, key: str) -> str:
        await redis.enqueue_job(FUNCTION, _job_id=_job_id(prefix, session, key))
        return key

    try:
        yield completion_driver(redis, prefix, send)
    finally:
        await redis.aclose()


PEER = Peer(f"arq {version('arq')}", "bench.peer_arq", serve, connect)

if __name__ == "__main__":
    main(PEER)
