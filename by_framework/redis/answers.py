"""One-shot answers (to a ``QueryCommand``) as a list of one entry per caller, taken with a
blocking pop."""

import asyncio

from by_framework.redis.batching import Batcher
from by_framework.redis.connection import RedisClient, reply_timeout
from by_framework.redis.keys import KeySpace


class RedisAnswers:
    def __init__(self, redis: RedisClient, batcher: Batcher, keys: KeySpace) -> None:
        self._redis = redis
        self._batcher = batcher
        self._keys = keys

    async def put(self, reply_to: str, answer: bytes, ttl: float) -> None:
        key = self._keys.answer(reply_to)
        await self._batcher.execute(("RPUSH", key, answer), ("PEXPIRE", key, round(ttl * 1000)))

    async def take(self, reply_to: str, timeout: float) -> bytes | None:
        # A blocking pop on a pooled connection (the batcher's pipeline must not wait behind
        # it), each one shorter than the connection's reply timeout.
        key = self._keys.answer(reply_to)
        limit = reply_timeout(self._redis)
        step = timeout if limit is None else max(0.1, limit / 2)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            popped = await self._redis.blpop([key], timeout=min(left, step))
            if popped is not None:
                answer = popped[1]
                return answer.encode() if isinstance(answer, str) else answer
        return None
