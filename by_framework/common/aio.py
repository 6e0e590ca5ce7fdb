"""asyncio helpers."""

import asyncio
from typing import Any

CANCEL_RETRY_S = 0.1


async def cancel_and_wait(task: "asyncio.Task[Any]") -> None:
    """Cancel ``task`` and return once it has ended, cancelling again if a cancel was lost.

    On Python 3.11 a cancel that lands while redis-py is inside ``asyncio.wait_for`` (every
    socket operation under its default socket timeout) can be swallowed, and the task carries on.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=CANCEL_RETRY_S)
    if not task.cancelled():
        task.exception()  # retrieved: an error on the way out is not worth a warning at exit


class Backoff:
    """Growing pauses between retries (50 ms doubling to 2 s), reset after a success."""

    def __init__(self, first: float = 0.05, cap: float = 2.0) -> None:
        self._first = first
        self._cap = cap
        self._next = first

    async def pause(self) -> float:
        delay = self._next
        self._next = min(self._cap, self._next * 2)
        await asyncio.sleep(delay)
        return delay

    def reset(self) -> None:
        self._next = self._first
