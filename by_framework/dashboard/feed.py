"""The fleet page's live data: one reader polls the fleet while anyone watches, and every open
page gets what it read. Redis answers one snapshot a second, however many pages are open."""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Document = dict[str, Any]


class FleetFeed:
    def __init__(self, read: Callable[[], Awaitable[Document]], interval: float) -> None:
        self._read = read
        self._interval = interval
        self._latest: Document | None = None
        self._published = asyncio.Condition()
        self._watchers = 0
        self._poller: asyncio.Task[None] | None = None

    async def watch(self) -> AsyncIterator[Document]:
        """Each new reading, from the next one on, until the caller stops iterating."""
        self._watchers += 1
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll())
        try:
            seen = None
            while True:
                async with self._published:
                    while self._latest is None or self._latest is seen:
                        await self._published.wait()
                    seen = self._latest
                yield seen
        finally:
            self._watchers -= 1

    async def _poll(self) -> None:
        try:
            while self._watchers:
                document = await self._reading()
                async with self._published:
                    self._latest = document
                    self._published.notify_all()
                await asyncio.sleep(self._interval)
        finally:  # nobody watches: the next watcher starts afresh, not from a stale reading
            self._poller = None
            self._latest = None

    async def _reading(self) -> Document:
        try:
            return await self._read()
        except Exception as exc:  # shown on the page; the next second tries again
            log.warning("cannot read the fleet: %s", exc)
            return {"error": f"cannot read the fleet: {exc}"}

    async def aclose(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
