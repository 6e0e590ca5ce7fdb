"""One-shot answers (to a ``QueryCommand``) as a list of one entry per caller, taken with a
blocking pop."""

import asyncio
import math

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
        # it), each one shorter than the connection's reply timeout. Redis counts a pop's
        # timeout in whole milliseconds and takes 0 for ever: a remainder under 1 ms (Redis may
        # answer the previous pop that much early by its clock) is rounded up, never down.
        key = self._keys.answer(reply_to)
        limit = reply_timeout(self._redis)
        step = timeout if limit is None else max(0.1, limit / 2)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            wait = math.ceil(min(left, step) * 1000) / 1000
            popped = await self._redis.blpop([key], timeout=wait)
            if popped is not None:
                answer = popped[1]
                return answer.encode() if isinstance(answer, str) else answer
        return None
