"""The gateway's tokens held ahead never let a caller past the Redis bucket's rate, however its
requests interleave over replicas, and a caller's requests still see 429 when it is spent."""

import asyncio
import random

from redis.asyncio import Redis

from by_framework.gateway.tokens import TokenReserve
from by_framework.redis.engine import RedisEngine
from by_framework.settings import Settings

SLOW = 0.001  # tokens/s: nothing refills while a test runs


async def test_a_held_token_is_spent_then_the_bucket_answers(redis: Redis, settings: Settings):
    engine = RedisEngine(redis, settings)
    reserve = TokenReserve(engine.rate_limiter, SLOW, 2)
    try:
        waits = [await reserve.take("alice") for _ in range(3)]
        assert waits[:2] == [0, 0] and waits[2] > 0
        assert await reserve.take("bob") == 0  # a bucket of its own
    finally:
        reserve.close()
        await engine.aclose()


async def test_replicas_and_concurrent_requests_never_pass_the_burst(
    redis: Redis, settings: Settings
):
    engine = RedisEngine(redis, settings)
    replicas = [TokenReserve(engine.rate_limiter, SLOW, 5) for _ in range(3)]
    rng = random.Random(7)
    try:
        takes = [rng.choice(replicas).take("carol") for _ in range(30)]
        waits = await asyncio.gather(*takes)
        assert sum(wait == 0 for wait in waits) <= 5
        for reserve in replicas:  # each spends the token it may hold ahead, or hears 429
            waits.append(await reserve.take("carol"))
        assert sum(wait == 0 for wait in waits) == 5  # each token Redis gave, spent once
    finally:
        for reserve in replicas:
            reserve.close()
        await engine.aclose()
