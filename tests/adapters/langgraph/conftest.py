"""PostgreSQL for the LangGraph adapter's tests: a schema of each test's own (the checkpointer's
tables, created by the workers' ``setup()``), dropped afterwards; worker processes of the tests'
graphs on it (``workers``)."""

import asyncio
import os
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from by_framework_langgraph.worker import CHECKPOINTER_URL_ENV

from by_framework import GatewayClient, Settings
from tests.support import output_of, wait_online, worker_process

GRAPHS = "tests.adapters.langgraph.graphs"

PG_URL = os.environ.get("BYF_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def checkpointer_url() -> Iterator[str]:
    """A ``postgresql://`` URL whose connections use a schema of this test's own."""
    import psycopg  # the adapter's "postgres" extra, which `make install` installs

    schema = f"byf_lg_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as connection:
            connection.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"no PostgreSQL at {PG_URL} (set BYF_TEST_POSTGRES_URL): {exc}")
    separator = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{separator}options=-csearch_path%3D{schema}"
    with psycopg.connect(PG_URL, autocommit=True) as connection:
        connection.execute("SET lock_timeout = '20s'")  # a failure, never a hang
        connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def workers(
    client: GatewayClient, settings: Settings, checkpointer_url: str, monkeypatch: Any
) -> Any:
    """Starts worker processes on the test's Redis prefix and PostgreSQL schema; stops them."""
    monkeypatch.setenv(CHECKPOINTER_URL_ENV, checkpointer_url)
    processes: dict[str, subprocess.Popen[str]] = {}
    killed: set[str] = set()

    async def start(
        extra: tuple[str, ...] = (), **classes: str
    ) -> dict[str, subprocess.Popen[str]]:
        for worker_id, worker_class in classes.items():
            processes[worker_id] = worker_process(
                settings,
                worker_id,
                worker_class if "." in worker_class else f"{GRAPHS}.{worker_class}",
                *extra,
            )
        await asyncio.gather(*(wait_online(client, worker_id, 30) for worker_id in classes))
        return processes

    def kill(worker_id: str) -> None:
        processes[worker_id].kill()  # SIGKILL: no shutdown, no hand-back
        processes[worker_id].wait(timeout=10)
        killed.add(worker_id)

    start.kill = kill  # type: ignore[attr-defined]
    yield start
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    codes = {worker_id: _stopped(process) for worker_id, process in processes.items()}
    for worker_id, code in codes.items():
        output = output_of(processes[worker_id])
        print(f"--- {worker_id} (exit {code}):\n{output[-3000:]}")  # shown on failure
        expected = -9 if worker_id in killed else 0
        assert code == expected, f"{worker_id} exited {code}:\n{output}"


def _stopped(process: subprocess.Popen[str]) -> int:
    """The exit code; a process that does not stop in 30 s is killed (never left behind)."""
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()
