"""A real gateway process (``python -m by_framework gateway``) per test, on a free port, with
the test's key prefix; real worker processes behind it."""

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
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

SHORT_HEARTBEAT = "0.2"


@dataclass
class Gateway:
    process: subprocess.Popen[str]
    url: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@dataclass
class Sse:
    """One frame of an SSE response: an event, or a comment."""

    id: str | None = None
    event: str | None = None
    data: Any = None
    comment: str | None = None
    fields: dict[str, str] = field(default_factory=dict)


def gateway_command(port: int, *flags: str, host: str = "127.0.0.1") -> list[str]:
    return [sys.executable, "-m", "by_framework", "gateway", "--host", host, "--port", str(port),
            "--heartbeat-seconds", SHORT_HEARTBEAT, *flags]  # fmt: skip


async def wait_serving(gateway: Gateway) -> None:
    await wait_http(gateway.process, f"{gateway.url}/openapi.json")


@pytest.fixture
async def start_gateway(
    settings: Settings,
) -> AsyncIterator[Callable[..., Any]]:
    """``await start_gateway(*flags, port=None, **env)``: a serving gateway process."""
    started: list[Gateway] = []

    async def start(*flags: str, port: int | None = None, **env: str) -> Gateway:
        port = port or free_port()
        process = spawn(gateway_command(port, *flags), ROOT, process_env(settings, **env))
        gateway = Gateway(process, f"http://127.0.0.1:{port}")
        started.append(gateway)
        await wait_serving(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


@pytest.fixture
def start_worker(settings: Settings) -> Iterator[Callable[..., Any]]:
    """``await start_worker(client, worker_class)``: an online worker process."""
    started: list[subprocess.Popen[str]] = []

    async def start(client: GatewayClient, worker_class: str, name: str = "w1") -> None:
        process = worker_process(settings, name, worker_class)
        started.append(process)
        await wait_online(client, name)

    yield start
    for process in started:
        process.terminate()
    for process in started:
        process.wait(10)


async def sse_frames(response: httpx.Response) -> AsyncIterator[Sse]:
    """The frames of an SSE response as they come."""
    frame = Sse()
    async for line in response.aiter_lines():
        if line == "":
            if frame.fields or frame.comment is not None:
                yield frame
            frame = Sse()
        elif line.startswith(":"):
            frame.comment = line[1:].strip()
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            frame.fields[name] = value
            if name == "id":
                frame.id = value
            elif name == "event":
                frame.event = value
            elif name == "data":
                frame.data = json.loads(value)


async def read_until_end(
    http: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None
) -> list[Sse]:
    """Every event frame of an SSE response that ends by itself (``?until=``)."""
    frames: list[Sse] = []
    async with http.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        async for frame in sse_frames(response):
            if frame.comment is None:
                frames.append(frame)
    return frames
