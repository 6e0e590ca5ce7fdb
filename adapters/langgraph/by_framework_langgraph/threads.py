"""Which graph thread a task runs on, and the lock that lets one task at a time run on a thread.

The rule (docs/langgraph.md, "Threads"): a task the user sent (no parent) continues the
conversation of its session with this agent type, thread ``{session_id}:{agent_type}``; a sub-call
from another agent is a request of its own, thread ``{session_id}:{agent_type}:{message_id}``.
Tasks that share a thread run one after the other, in the order they take the lock.
"""

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Protocol

from by_framework import AgentContext, TaskCancelledError

if TYPE_CHECKING:
    from psycopg import AsyncConnection

log = logging.getLogger("by_framework_langgraph")

ThreadIdFunction = Callable[[AgentContext], str]


def conversation_thread(session_id: str, agent_type: str) -> str:
    """The thread of a session's conversation with an agent type."""
    return f"{session_id}:{agent_type}"


def default_thread_id(context: AgentContext) -> str:
    """The session's conversation with this agent type; a thread of its own for a sub-call."""
    conversation = conversation_thread(context.session_id, context.current_agent_id)
    if context.parent_message_id:
        return f"{conversation}:{context.message_id}"
    return conversation


class ThreadLock(Protocol):
    """Serializes the tasks of one thread. ``hold`` waits for the thread, checking
    ``cancelled()`` (then raises ``TaskCancelledError``) and gives up after ``timeout`` seconds
    (``TimeoutError``)."""

    def hold(
        self, thread_id: str, cancelled: Callable[[], bool], timeout: float | None
    ) -> contextlib.AbstractAsyncContextManager[None]: ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...


class LocalThreadLock:
    """One task per thread within this process: enough for a single worker (and the in-memory
    checkpointer, which a single worker uses anyway)."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    @contextlib.asynccontextmanager
    async def hold(
        self, thread_id: str, cancelled: Callable[[], bool], timeout: float | None
    ) -> AsyncIterator[None]:
        lock = self._locks.setdefault(thread_id, asyncio.Lock())
        self._users[thread_id] = self._users.get(thread_id, 0) + 1
        try:
            async with asyncio.timeout(timeout):
                while True:
                    if cancelled():
                        raise TaskCancelledError(f"cancelled while waiting for thread {thread_id}")
                    try:
                        await asyncio.wait_for(lock.acquire(), POLL_SECONDS)
                        break
                    except TimeoutError:
                        continue
            try:
                yield
            finally:
                lock.release()
        finally:
            self._users[thread_id] -= 1
            if not self._users[thread_id]:
                del self._users[thread_id], self._locks[thread_id]


POLL_SECONDS = 0.2


def advisory_key(thread_id: str) -> int:
    """A signed 64-bit key for ``pg_advisory_lock``, stable across processes."""
    digest = hashlib.blake2b(f"by-framework-langgraph:{thread_id}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


class PostgresThreadLock:
    """One task per thread across every worker that shares the PostgreSQL database: a
    session-level advisory lock, taken on a connection of this worker's own. A worker that dies
    loses its connection, and PostgreSQL frees its locks at once."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._connection: AsyncConnection[Any] | None = None
        self._io = asyncio.Lock()
        self._local = LocalThreadLock()  # advisory locks are re-entrant within one connection

    async def open(self) -> None:
        await self._connect()

    async def _connect(self) -> "AsyncConnection[Any]":
        import psycopg  # the "postgres" extra

        self._connection = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
        return self._connection

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def _query(self, sql: str, key: int) -> bool:
        import psycopg

        async with self._io:
            for attempt in (1, 2):
                connection = self._connection
                if connection is None or connection.closed:
                    connection = await self._connect()
                try:
                    cursor = await connection.execute(sql, (key,))
                    row = await cursor.fetchone()
                    return bool(row and row[0])
                except psycopg.OperationalError:
                    if attempt == 2:
                        raise
                    log.warning("lost the thread-lock connection to PostgreSQL; reconnecting")
                    self._connection = None
        raise AssertionError("unreachable")

    @contextlib.asynccontextmanager
    async def hold(
        self, thread_id: str, cancelled: Callable[[], bool], timeout: float | None
    ) -> AsyncIterator[None]:
        key = advisory_key(thread_id)
        async with self._local.hold(thread_id, cancelled, timeout):
            async with asyncio.timeout(timeout):
                while not await self._query("SELECT pg_try_advisory_lock(%s)", key):
                    if cancelled():
                        raise TaskCancelledError(f"cancelled while waiting for thread {thread_id}")
                    await asyncio.sleep(POLL_SECONDS)
            try:
                yield
            finally:
                with contextlib.suppress(Exception):  # a lost connection freed it already
                    await self._query("SELECT pg_advisory_unlock(%s)", key)
