"""Running the operator's commands as an operator does: ``python -m by_framework ...`` in a
process of its own, pointed at the test's Redis and key prefix."""

import asyncio
import json
import signal
import subprocess
import sys
from typing import Any

from by_framework import Settings
from tests.support import ROOT, output_of, process_env, spawn


def start_cli(settings: Settings, *args: str, **env: str) -> subprocess.Popen[str]:
    """``python -m by_framework ARGS``; Redis and the key prefix come from the environment
    (``REDIS_URL``, ``BYAI_KEY_PREFIX``), with ``env`` added."""
    command = [sys.executable, "-m", "by_framework", *args]
    return spawn(command, ROOT, process_env(settings, **env))


async def run_cli(settings: Settings, *args: str, **env: str) -> tuple[int, str]:
    """Its exit status and everything it printed (stdout and stderr)."""
    process = start_cli(settings, *args, **env)
    code = await asyncio.to_thread(process.wait, 60)
    return code, output_of(process)


async def status_json(settings: Settings, *args: str) -> dict[str, Any]:
    code, output = await run_cli(settings, "status", "--json", *args)
    assert code == 0, output
    document: dict[str, Any] = json.loads(output)
    return document


def stop(*processes: subprocess.Popen[str]) -> None:
    """SIGTERM each process still running and wait for it."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(timeout=30)
