"""A real dashboard process (``python -m by_framework dashboard``) per test, on a free port, with
the test's key prefix; real worker processes started through the CLI."""

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from by_framework import GatewayClient, Settings
from tests.support import (
    ROOT,
    free_port,
    output_of,
    process_env,
    spawn,
    wait_online,
    worker_process,
)

API_KEYS = {
    "BYAI_GATEWAY_API_KEYS": "viewer:key-viewer,ops:key-ops",
    "BYAI_GATEWAY_ADMIN_KEYS": "ops",
}
"""Auth for a dashboard: ``key-viewer`` may look, ``key-ops`` (an admin) may act too."""
VIEWER = {"Authorization": "Bearer key-viewer"}
ADMIN = {"Authorization": "Bearer key-ops"}


@dataclass
class Dashboard:
    process: subprocess.Popen[str]
    url: str


async def wait_serving(dashboard: Dashboard, timeout: float = 15.0) -> None:
    """Until it answers HTTP (a 401 counts: it is up)."""
    async with httpx.AsyncClient() as http, asyncio.timeout(timeout):
        while True:
            if dashboard.process.poll() is not None:
                pytest.fail(f"the dashboard exited:\n{output_of(dashboard.process)}")
            try:
                await http.get(f"{dashboard.url}/api/whoami")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)


@pytest.fixture
async def start_dashboard(settings: Settings) -> AsyncIterator[Callable[..., Any]]:
    """``await start_dashboard(*flags, **env)``: a serving dashboard process."""
    started: list[subprocess.Popen[str]] = []

    async def start(*flags: str, **env: str) -> Dashboard:
        port = free_port()
        command = [sys.executable, "-m", "by_framework", "dashboard", "--port", str(port), *flags]
        process = spawn(command, ROOT, process_env(settings, **env))
        started.append(process)
        dashboard = Dashboard(process, f"http://127.0.0.1:{port}")
        await wait_serving(dashboard)
        return dashboard

    yield start
    for process in started:
        process.kill()
        process.wait(10)


@pytest.fixture
def start_worker(settings: Settings) -> Iterator[Callable[..., Any]]:
    """``await start_worker(client, worker_id, worker_class, *flags)``: an online worker
    process."""
    started: list[subprocess.Popen[str]] = []

    async def start(
        client: GatewayClient, worker_id: str, worker_class: str, *flags: str
    ) -> subprocess.Popen[str]:
        process = worker_process(settings, worker_id, worker_class, *flags)
        started.append(process)
        await wait_online(client, worker_id)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
    for process in started:
        process.wait(10)
