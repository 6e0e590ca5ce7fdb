"""The raw redis-py consumer of ``bench/run.py``: the minimal no-op task loop, no framework.

    python -m bench.raw_consumer REDIS_URL QUEUE GROUP CONSUMER DATA_PREFIX

Reads QUEUE through the consumer group GROUP, up to 100 entries at a time; for each entry (fields
``s``: session, ``t``: task) it XADDs a reply to the stream DATA_PREFIX + session, then XACKs the
batch, all in one pipeline. Runs until SIGTERM.
"""

import asyncio
import sys

from redis.asyncio import Redis
from redis.exceptions import ResponseError

BATCH = 100
BLOCK_MS = 1_000


async def consume(url: str, queue: str, group: str, consumer: str, data_prefix: str) -> None:
    redis = Redis.from_url(url)
    try:
        await redis.xgroup_create(queue, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    # The consumer's name in the group is how the bench knows this process is ready.
    await redis.xgroup_createconsumer(queue, group, consumer)
    while True:
        reply = await redis.xreadgroup(group, consumer, {queue: ">"}, count=BATCH, block=BLOCK_MS)
        if not reply:
            continue
        _, entries = reply[0]
        pipe = redis.pipeline(transaction=False)
        for _, fields in entries:
            pipe.xadd(data_prefix + fields[b"s"].decode(), {"t": fields[b"t"], "c": "x"})
        pipe.xack(queue, group, *(entry_id for entry_id, _ in entries))
        await pipe.execute()


if __name__ == "__main__":
    asyncio.run(consume(*sys.argv[1:6]))
