"""A real dashboard process (``python -m by_framework dashboard``) per test, on a free port, with
the test's key prefix; real worker processes started through the CLI."""

import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from by_framework import GatewayClient, Settings
from tests.support import (
    ROOT,
    free_port,
    process_env,
    spawn,
    wait_http,
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


async def wait_serving(dashboard: Dashboard) -> None:
    """Until it answers HTTP (a 401 counts: it is up)."""
    await wait_http(dashboard.process, f"{dashboard.url}/api/whoami")


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
