"""The tables, and the migrations that bring a schema to the version this package uses.

Each migration is a list of statements; ``{schema}`` stands for the quoted schema name. A schema
records the migrations applied to it in ``schema_version``; ``migrate`` applies the missing
ones, under an advisory lock, so that workers starting together migrate once.
"""

import asyncpg

from by_framework import ConfigurationError

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: sessions keep their own sequence (the last position handed out); a message's position
    # comes from it, in the same statement that inserts the message.
    (
        """CREATE TABLE {schema}.sessions (
            session_id text PRIMARY KEY,
            last_position bigint NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )""",
        """CREATE TABLE {schema}.messages (
            session_id text NOT NULL,
            position bigint NOT NULL,
            key text,
            role text NOT NULL,
            content jsonb NOT NULL,
            metadata jsonb NOT NULL DEFAULT '{{}}',
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (session_id, position),
            UNIQUE (session_id, key)
        )""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


def quoted(schema: str) -> str:
    return '"' + schema.replace('"', '""') + '"'


async def migrate(connection: asyncpg.Connection, schema: str) -> int:
    """Create the schema or bring it up to ``SCHEMA_VERSION``; the version it was at."""
    name = quoted(schema)
    async with connection.transaction():
        await connection.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))", f"by_framework_history:{schema}"
        )
        if not await connection.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema):
            await connection.execute(f"CREATE SCHEMA {name}")
        await connection.execute(
            f"CREATE TABLE IF NOT EXISTS {name}.schema_version ("
            "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        current = await connection.fetchval(
            f"SELECT coalesce(max(version), 0) FROM {name}.schema_version"
        )
        if current > SCHEMA_VERSION:
            raise ConfigurationError(
                f"the history schema {schema!r} is at version {current}, newer than this "
                f"by-framework-history-postgres knows ({SCHEMA_VERSION}): upgrade the package"
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version - 1]:
                await connection.execute(statement.format(schema=name))
            await connection.execute(
                f"INSERT INTO {name}.schema_version (version) VALUES ($1)", version
            )
        return current
