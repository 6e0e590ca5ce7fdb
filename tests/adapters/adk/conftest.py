"""For the ADK adapter's tests: a session store that worker processes share."""

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest


@pytest.fixture(params=["sqlite", "postgres"])
def session_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A session store the worker processes share: ADK's SQLite one in this test's directory, or
    ADK's DatabaseSessionService on a PostgreSQL database of this test's own."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'adk-sessions.db'}"
        monkeypatch.setenv("BYAI_ADK_SESSION_URL", url)
        yield url
        return
    server = request.getfixturevalue("postgres_url")
    database = f"adk_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_postgres(server, f'CREATE DATABASE "{database}"'))
    parts = urlsplit(server)
    url = parts._replace(scheme="postgresql+asyncpg", path=f"/{database}").geturl()
    monkeypatch.setenv("BYAI_ADK_SESSION_URL", url)
    yield url
    asyncio.run(_postgres(server, f'DROP DATABASE "{database}" WITH (FORCE)'))


async def _postgres(url: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()
