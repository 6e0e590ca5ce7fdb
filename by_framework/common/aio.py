"""asyncio helpers."""

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")

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


async def run_to_end(step: Awaitable[T]) -> T:
    """Await ``step`` to its end even if this task is cancelled meanwhile; the cancel is raised
    once the step is done (the step's own error, if it failed).

    For a clean-up made of several Redis steps that runs as its task is being stopped: the
    stopper's ``cancel_and_wait`` cancels again every ``CANCEL_RETRY_S``, and a second cancel
    landing between a hand-back's two steps left its entry pending until a reclaim."""
    task = asyncio.ensure_future(step)
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            cancelled = True
    if cancelled and not task.cancelled() and task.exception() is None:
        raise asyncio.CancelledError
    return task.result()  # the step's error, if it failed, rather than the cancel


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
