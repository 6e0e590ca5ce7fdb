"""``PostgresHistoryStore``: the ``HistoryStore`` port on PostgreSQL, through an asyncpg pool."""

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from by_framework.backends import (
    HistoryMessage,
    HistoryPage,
    check_append,
    check_limit,
    encode_json,
    encode_metadata,
    parse_cursor,
)
from by_framework_history_postgres.schema import migrate, quoted

DEFAULT_SCHEMA = "by_framework_history"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_COLUMNS = "position, key, role, content, metadata, created_at"
OPTIONS = {"schema", "pool_min_size", "pool_max_size"}
"""URL query options this package reads (the rest go to asyncpg: sslmode, ...)."""


class PostgresHistoryStore:
    """Messages in ``<schema>.messages``, positioned by their session's own sequence.

    An append takes the next position from its session's row in ``<schema>.sessions`` and
    inserts the message in one statement. The row lock orders appends to one session, whichever
    worker or connection they come from, and they commit in position order, so a reader paging
    by position never skips a message that commits late. Content and metadata are JSONB.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = DEFAULT_SCHEMA,
        pool_min_size: int = 1,
        pool_max_size: int = 10,
    ) -> None:
        if not _IDENTIFIER.fullmatch(schema):
            raise ValueError(
                f"schema must be a plain identifier (letters, digits, _; up to 63), not {schema!r}"
            )
        if not 0 <= pool_min_size <= pool_max_size or pool_max_size < 1:
            raise ValueError("need 0 <= pool_min_size <= pool_max_size and pool_max_size >= 1")
        self.dsn = dsn
        self.schema = schema
        self.pool_min_size = pool_min_size
        self.pool_max_size = pool_max_size
        self._pool: asyncpg.Pool | None = None
        name = quoted(schema)
        self._append = f"""
            WITH next AS (
                INSERT INTO {name}.sessions AS s (session_id, last_position) VALUES ($1, 1)
                ON CONFLICT (session_id) DO UPDATE SET last_position = s.last_position + 1
                RETURNING last_position
            )
            INSERT INTO {name}.messages (session_id, position, key, role, content, metadata)
            SELECT $1, last_position, $2, $3, $4::jsonb, $5::jsonb FROM next
            ON CONFLICT (session_id, key) DO NOTHING
            RETURNING {_COLUMNS}"""
        self._by_key = f"SELECT {_COLUMNS} FROM {name}.messages WHERE session_id = $1 AND key = $2"
        self._page = (
            f"SELECT {_COLUMNS} FROM {name}.messages WHERE session_id = $1 AND position > $2 "
            "ORDER BY position LIMIT $3"
        )
        self._lock_session = f"SELECT 1 FROM {name}.sessions WHERE session_id = $1 FOR UPDATE"
        self._delete_messages = (
            f"WITH gone AS (DELETE FROM {name}.messages WHERE session_id = $1 RETURNING 1) "
            "SELECT count(*) FROM gone"
        )
        self._delete_session = f"DELETE FROM {name}.sessions WHERE session_id = $1"

    @classmethod
    def from_url(cls, url: str) -> "PostgresHistoryStore":
        """``postgresql://user:password@host:port/db?schema=...&pool_max_size=...``; other query
        options (``sslmode``, ...) are asyncpg's."""
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        ours = {name: value for name, value in query if name in OPTIONS}
        rest = [(name, value) for name, value in query if name not in OPTIONS]
        options: dict[str, Any] = {}
        if "schema" in ours:
            options["schema"] = ours["schema"]
        for name in ("pool_min_size", "pool_max_size"):
            if name in ours:
                try:
                    options[name] = int(ours[name])
                except ValueError:
                    raise ValueError(f"{name} must be an integer, got {ours[name]!r}") from None
        return cls(urlunsplit(parts._replace(query=urlencode(rest))), **options)

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the PostgreSQL history store is not started: await start() first")
        return self._pool

    async def start(self) -> None:
        if self._pool is not None:
            return
        pool = await asyncpg.create_pool(
            self.dsn, min_size=self.pool_min_size, max_size=self.pool_max_size
        )
        try:
            async with pool.acquire() as connection:
                await migrate(connection, self.schema)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def append(
        self,
        session_id: str,
        role: str,
        content: Any,
        metadata: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
    ) -> HistoryMessage:
        check_append(session_id, role, key)
        encoded, encoded_metadata = encode_json(content), encode_metadata(metadata)
        pool = self.pool
        row = await pool.fetchrow(self._append, session_id, key, role, encoded, encoded_metadata)
        if row is None:  # the key was used before: that message stands (its position is spent)
            row = await pool.fetchrow(self._by_key, session_id, key)
        return _message(session_id, row)

    async def list(
        self, session_id: str, after: str | None = None, limit: int = 100
    ) -> HistoryPage:
        start = parse_cursor(after)
        check_limit(limit)
        rows = await self.pool.fetch(self._page, session_id, start, limit + 1)
        messages = [_message(session_id, row) for row in rows[:limit]]
        return HistoryPage(messages, messages[-1].cursor if len(rows) > limit else None)

    async def delete(self, session_id: str) -> int:
        async with self.pool.acquire() as connection, connection.transaction():
            # Appends to the session wait on its row until the delete commits, then start over.
            await connection.execute(self._lock_session, session_id)
            deleted: int = await connection.fetchval(self._delete_messages, session_id)
            await connection.execute(self._delete_session, session_id)
        return deleted


def _message(session_id: str, row: asyncpg.Record) -> HistoryMessage:
    return HistoryMessage(
        session_id=session_id,
        position=row["position"],
        role=row["role"],
        content=json.loads(row["content"]),
        metadata=json.loads(row["metadata"]),
        key=row["key"],
        created_at=row["created_at"],
    )


def from_url(url: str) -> PostgresHistoryStore:
    """The entry point ``by_framework.history`` names for ``postgresql://`` and ``postgres://``."""
    return PostgresHistoryStore.from_url(url)
