"""The rate limit's next token for each caller, taken from Redis ahead of its next request.

A request that finds its caller's token already taken spends it at once and its send waits for
one Redis round trip instead of two; the token after it is taken in the background. The limit
is the Redis bucket's, shared by every gateway replica: a token is only ever spent after Redis
gave it, so holding one ahead lets no caller past its rate (at most one token per caller and
replica is held, and lost if the caller never comes back).
"""

import asyncio
from collections import OrderedDict

from by_framework.ports import RateLimiter

MAX_CALLERS = 10_000
"""Callers with a token held ahead; past it the longest-held is dropped (its token unused)."""


class TokenReserve:
    def __init__(self, limiter: RateLimiter, rate: float, burst: int) -> None:
        self._limiter = limiter
        self._rate, self._burst = rate, burst
        self._ahead: OrderedDict[str, asyncio.Task[float]] = OrderedDict()

    async def take(self, caller: str) -> float:
        """0 if the caller may go on now (a token spent), else the seconds until it may."""
        ahead = self._ahead.get(caller)
        if ahead is not None:
            if not ahead.done():
                await asyncio.wait([ahead])  # the caller's earlier request fetches it now
            if self._ahead.get(caller) is ahead:  # not spent by a concurrent request
                del self._ahead[caller]
                if not ahead.cancelled() and ahead.exception() is None and ahead.result() == 0:
                    self._take_ahead(caller)
                    return 0.0
        wait = await self._limiter.take(caller, self._rate, self._burst)
        if wait == 0:
            self._take_ahead(caller)
        return wait

    def _take_ahead(self, caller: str) -> None:
        task = asyncio.create_task(self._limiter.take(caller, self._rate, self._burst))
        task.add_done_callback(_retrieve)
        self._ahead[caller] = task
        while len(self._ahead) > MAX_CALLERS:
            _, dropped = self._ahead.popitem(last=False)
            dropped.cancel()

    def close(self) -> None:
        for task in self._ahead.values():
            task.cancel()
        self._ahead.clear()


def _retrieve(task: asyncio.Task[float]) -> None:
    """A token fetched ahead that failed (Redis away) is not an error of its own: the caller's
    next request takes one itself, and meets the error there."""
    if not task.cancelled():
        task.exception()
