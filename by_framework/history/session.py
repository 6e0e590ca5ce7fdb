"""``context.history``: a session's history as a running task reads it."""

from collections.abc import AsyncIterator

from by_framework.ports import HistoryMessage, HistoryPage, HistoryStore


class SessionHistory:
    """The turns of one session recorded so far, oldest first, whichever worker ran them (with a
    shared backend). A task's own incoming message is recorded before it runs, so it is there,
    last but for what the task's sub-calls recorded since.

    ``await history.list()`` reads them all, ``async for message in history`` pages through them,
    and ``await history.page(after, limit)`` reads one page at a time.
    """

    def __init__(self, store: HistoryStore, session_id: str) -> None:
        self.store = store
        self.session_id = session_id

    async def page(self, after: str | None = None, limit: int = 100) -> HistoryPage:
        """Up to ``limit`` messages after the cursor ``after``; pass the page's ``next_cursor``
        as ``after`` for the next one."""
        return await self.store.list(self.session_id, after, limit)

    async def __aiter__(self) -> AsyncIterator[HistoryMessage]:
        after: str | None = None
        while True:
            page = await self.store.list(self.session_id, after, 100)
            for message in page.messages:
                yield message
            if page.next_cursor is None:
                return
            after = page.next_cursor

    async def list(self) -> list[HistoryMessage]:
        """Every message of the session, oldest first."""
        return [message async for message in self]
