"""taskiq as a peer of the side-by-side bench: a no-op task, its workers and its driver.

The broker is taskiq-redis's ``RedisStreamBroker`` (XADD, XREADGROUP in a consumer group, XACK
once the result is saved) with its ``RedisAsyncResultBackend``, results kept an hour as arq keeps
them. Workers run taskiq's receiver (``run_receiver_task``, what ``taskiq worker`` runs in each of
its processes) with ``max_async_tasks`` = the bench's concurrency, the rest taskiq's defaults. The
task id carries the run's prefix, the session and the task's key; so does every key taskiq writes.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from importlib.metadata import version
from typing import Any

from redis.asyncio import Redis
from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult
from taskiq.api import run_receiver_task
from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker

from bench.measure import (
    CONCURRENCY,
    IN_FLIGHT,
    SESSIONS,
    Driver,
)
from bench.peers import Peer, completion_driver, completion_stream, main, ready_key

RESULT_TTL_S = 3_600
TASK = "noop"


async def noop() -> None:
    """The task: nothing."""


class Completion(TaskiqMiddleware):
    """After taskiq has saved a task's result: its completion."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        super().__init__()
        self._redis = redis
        self._prefix = prefix

    async def post_save(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        session, key = message.task_id.removeprefix(f"{self._prefix}:").rsplit(":", 1)
        await self._redis.xadd(completion_stream(self._prefix, session), {"t": key})


def _broker(url: str, prefix: str, connections: int) -> RedisStreamBroker:
    backend = RedisAsyncResultBackend(
        url,
        result_ex_time=RESULT_TTL_S,
        prefix_str=f"{prefix}:result",
        max_connection_pool_size=connections,
    )
    broker = RedisStreamBroker(
        url, queue_name=f"{prefix}:queue", max_connection_pool_size=connections
    ).with_result_backend(backend)
    broker.register_task(noop, task_name=TASK)
    return broker


async def serve(url: str, prefix: str, name: str) -> None:
    redis = Redis.from_url(url)
    broker = _broker(url, prefix, CONCURRENCY + 10)
    broker.add_middlewares(Completion(redis, prefix))
    broker.is_worker_process = True
    try:
        await broker.startup()  # creates the consumer group: tasks sent from now on are read
        await redis.set(ready_key(prefix, name), 1)
        await run_receiver_task(broker, max_async_tasks=CONCURRENCY)
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await broker.shutdown()
        await redis.aclose()


@contextlib.asynccontextmanager
async def connect(url: str, prefix: str) -> AsyncIterator[Driver]:
    broker = _broker(url, prefix, IN_FLIGHT + SESSIONS)
    task = broker.find_task(TASK)
    assert task is not None
    redis = Redis.from_url(url)
    await broker.startup()

    async def send(session: str, key: str) -> str:
        await task.kicker().with_task_id(f"{prefix}:{session}:{key}").kiq()
        return key

    try:
        yield completion_driver(redis, prefix, send)
    finally:
        await broker.shutdown()
        await redis.aclose()


PEER = Peer(
    f"taskiq {version('taskiq')} + taskiq-redis {version('taskiq-redis')}",
    "bench.peer_taskiq",
    serve,
    connect,
)

if __name__ == "__main__":
    main(PEER)
