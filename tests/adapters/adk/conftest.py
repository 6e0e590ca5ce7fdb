"""For the ADK adapter's tests: a session store that worker processes share, and worker
processes of ``agents.py``'s workers."""

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import pytest

from by_framework import GatewayClient, Settings
from tests.support import output_of, wait_online, worker_process

AGENTS = "tests.adapters.adk.agents"


class Serve(Protocol):
    """Starts a worker process of one of ``agents.py``'s workers (its id: the class name in
    lower case and a number, unless given)."""

    async def __call__(
        self, worker_class: str, worker_id: str | None = None
    ) -> subprocess.Popen[str]: ...


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


@pytest.fixture
async def serve(client: GatewayClient, settings: Settings) -> AsyncIterator[Serve]:
    """Starts a worker process of one of ``agents.py``'s workers; stops it, which must go well."""
    processes: list[subprocess.Popen[str]] = []

    async def start(worker_class: str, worker_id: str | None = None) -> subprocess.Popen[str]:
        worker_id = worker_id or f"{worker_class.lower()}-{len(processes)}"
        processes.append(worker_process(settings, worker_id, f"{AGENTS}.{worker_class}"))
        await wait_online(client, worker_id, 30)
        return processes[-1]

    yield start
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        assert code == 0, output_of(process)
