"""The raw redis-py consumer of ``bench/run.py``: the minimal no-op task loop, no framework.

    python -m bench.raw_consumer REDIS_URL QUEUE GROUP CONSUMER DATA_PREFIX MODE

Reads QUEUE through the consumer group GROUP, up to 100 entries at a time. Each entry (fields
``s``: session, ``t``: task) gets a reply XADDed to the stream DATA_PREFIX + session and is XACKed.
MODE ``batch``: the replies and one XACK of the whole batch travel in one pipeline (the most
redis-py can do). MODE ``task``: each entry is handled on its own, as a task queue handles tasks:
its reply and its XACK in one pipeline per task, up to 50 tasks at once. Runs until SIGTERM.
"""

import asyncio
import sys

from redis.asyncio import Redis
from redis.exceptions import ResponseError

BATCH = 100
BLOCK_MS = 1_000
TASK_CONCURRENCY = 50


async def consume(
    url: str, queue: str, group: str, consumer: str, data_prefix: str, mode: str
) -> None:
    redis = Redis.from_url(url, max_connections=TASK_CONCURRENCY + 5)
    try:
        await redis.xgroup_create(queue, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    # The consumer's name in the group is how the bench knows this process is ready.
    await redis.xgroup_createconsumer(queue, group, consumer)
    slots = asyncio.Semaphore(TASK_CONCURRENCY)
    running: set[asyncio.Task[None]] = set()

    async def one_task(entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        try:
            pipe = redis.pipeline(transaction=False)
            pipe.xadd(data_prefix + fields[b"s"].decode(), {"t": fields[b"t"], "c": "x"})
            pipe.xack(queue, group, entry_id)
            await pipe.execute()
        finally:
            slots.release()

    while True:
        reply = await redis.xreadgroup(group, consumer, {queue: ">"}, count=BATCH, block=BLOCK_MS)
        if not reply:
            continue
        _, entries = reply[0]
        if mode == "task":
            for entry_id, fields in entries:
                await slots.acquire()
                task = asyncio.create_task(one_task(entry_id, fields))
                running.add(task)
                task.add_done_callback(running.discard)
            continue
        pipe = redis.pipeline(transaction=False)
        for _, fields in entries:
            pipe.xadd(data_prefix + fields[b"s"].decode(), {"t": fields[b"t"], "c": "x"})
        pipe.xack(queue, group, *(entry_id for entry_id, _ in entries))
        await pipe.execute()


if __name__ == "__main__":
    asyncio.run(consume(*sys.argv[1:7]))
