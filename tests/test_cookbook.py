"""The cookbook's recipes, run as a user runs them, against the real Redis."""

import asyncio
import os
import subprocess
import sys
from urllib.parse import urlparse

import pytest

from by_framework import GatewayClient, Settings
from tests.support import ROOT, output_of, spawn, wait_online

QUICKSTART = ROOT / "cookbook" / "01_quickstart"


@pytest.fixture
def on_localhost_6379(redis_url: str) -> None:
    url = urlparse(redis_url)
    if url.hostname not in {"127.0.0.1", "localhost"} or url.port != 6379:
        pytest.skip("the spec's quick start talks to localhost:6379; the tests use another Redis")


async def test_the_spec_quick_start_runs_unchanged(
    on_localhost_6379: None, client: GatewayClient, settings: Settings
) -> None:
    env = {**os.environ, "BYAI_KEY_PREFIX": settings.key_prefix, "PYTHONPATH": str(ROOT)}
    env.pop("REDIS_URL", None)
    worker = spawn([sys.executable, "my_agent.py"], QUICKSTART, env)
    try:
        await wait_online(client, "worker-01")
        sent = await asyncio.to_thread(
            subprocess.run, [sys.executable, "send_task.py"], cwd=QUICKSTART, env=env,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.startswith("Sent: ")
        message_id = sent.stdout.split()[1]
        result = await client.wait_for_result(message_id, timeout=20)
        assert result.content == "Hello from your agent!"
        chunks = [
            item.event.content  # type: ignore[union-attr]
            async for item in client.events("demo-session", until_message_id=message_id)
            if item.event.type == "chunk"
        ]
        assert chunks == ["Hello from your agent!"]
    finally:
        worker.terminate()
        assert worker.wait(timeout=20) == 0, output_of(worker)
