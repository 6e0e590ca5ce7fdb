"""The cookbook's recipes, run as a user runs them, against the real Redis."""

import asyncio
import os
import subprocess
import sys
from urllib.parse import urlparse

import pytest

from by_framework import GatewayClient, Settings
from tests.support import ROOT, output_of, process_env, spawn, wait_online

QUICKSTART = ROOT / "cookbook" / "01_quickstart"


@pytest.fixture
def on_localhost_6379(redis_url: str) -> None:
    url = urlparse(redis_url)
    if url.hostname not in {"127.0.0.1", "localhost"} or url.port != 6379:
        pytest.skip("the spec's quick start talks to localhost:6379; the tests use another Redis")


async def test_the_quick_start_runs_as_pasted(
    on_localhost_6379: None, client: GatewayClient, settings: Settings
) -> None:
    """The worker started in the background and the client at once: the send waits for the
    worker to come online, then prints the task's id and its result."""
    env = {**os.environ, "BYAI_KEY_PREFIX": settings.key_prefix, "PYTHONPATH": str(ROOT)}
    env.pop("REDIS_URL", None)
    worker = spawn([sys.executable, "my_agent.py"], QUICKSTART, env)
    try:
        sent = await asyncio.to_thread(
            subprocess.run, [sys.executable, "send_task.py"], cwd=QUICKSTART, env=env,
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        lines = sent.stdout.splitlines()
        assert lines[0].startswith("Sent: ") and lines[1:] == ["Hello from your agent!"]
        message_id = lines[0].split()[1]
        chunks = [
            item.event.content  # type: ignore[union-attr]
            async for item in client.events("quickstart", until_message_id=message_id)
            if item.event.type == "chunk"
        ]
        assert chunks == ["Hello from your agent!"]
    finally:
        worker.terminate()
        assert worker.wait(timeout=20) == 0, output_of(worker)


POSTGRES_HISTORY = ROOT / "cookbook" / "postgres_history"


async def test_the_postgres_history_recipe_switches_backend_by_env_var_alone(
    client: GatewayClient, settings: Settings, history_url: str
) -> None:
    env = process_env(settings, BYF_HISTORY_URL=history_url)
    workers = [
        spawn([sys.executable, "notebook_agent.py"], POSTGRES_HISTORY, {**env, "BYAI_WORKER_ID": w})
        for w in ("notebook-1", "notebook-2")
    ]
    try:
        await asyncio.gather(*(wait_online(client, w) for w in ("notebook-1", "notebook-2")))
        chat = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "chat.py", "--via", "notebook-1,notebook-2", "buy milk", "call mom",
             "water the plants"],
            cwd=POSTGRES_HISTORY, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        for worker in workers:
            worker.terminate()
        codes = [await asyncio.to_thread(worker.wait, 20) for worker in workers]
        assert codes == [0, 0], [output_of(worker) for worker in workers]
    assert chat.returncode == 0, chat.stderr
    lines = chat.stdout.splitlines()
    if history_url == "memory://":  # each worker remembers only what it was told itself
        assert lines == [
            "notebook-1: noted 'buy milk'; before that you told me []",
            "notebook-2: noted 'call mom'; before that you told me []",
            "notebook-1: noted 'water the plants'; before that you told me ['buy milk']",
            "(memory:// history lives inside each worker process: no transcript to read here)",
        ]
        return
    assert lines[:3] == [
        "notebook-1: noted 'buy milk'; before that you told me []",
        "notebook-2: noted 'call mom'; before that you told me ['buy milk']",
        "notebook-1: noted 'water the plants'; before that you told me ['buy milk', 'call mom']",
    ]
    assert lines[3:] == [
        "[1] user: buy milk",
        "[2] assistant: noted 'buy milk'; before that you told me []",
        "[3] user: call mom",
        "[4] assistant: noted 'call mom'; before that you told me ['buy milk']",
        "[5] user: water the plants",
        "[6] assistant: noted 'water the plants'; before that you told me ['buy milk', 'call mom']",
    ]
