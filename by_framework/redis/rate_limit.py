"""A token bucket per caller in Redis, shared by every gateway replica."""

from by_framework.redis.batching import Batcher, evalsha
from by_framework.redis.keys import KeySpace
from by_framework.redis.scripts import TAKE_TOKEN, TakeTokenArgs


class RedisRateLimiter:
    def __init__(self, batcher: Batcher, keys: KeySpace) -> None:
        self._batcher = batcher
        self._keys = keys

    async def take(self, caller: str, rate: float, burst: int) -> float:
        """0 if the caller may go on now (a token taken), else the seconds until it may."""
        keys = [self._keys.rate_bucket(caller)]
        take = evalsha(TAKE_TOKEN, keys, TakeTokenArgs(rate, burst))
        (wait_ms,) = await self._batcher.execute(take)
        return int(wait_ms) / 1000
