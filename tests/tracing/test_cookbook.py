"""The tracing recipe, run as its README runs it, once per provider: its collector, one worker
per agent (through the CLI, tracing enabled by the provider's variables alone, pointed at the
collector) and its client script, against the real Redis. The collector's printed tree is the
check: one trace, each task under the call that made it, across three processes."""

import asyncio
import signal
import subprocess
import sys

import pytest

from by_framework import GatewayClient, Settings
from tests.support import ROOT, output_of, process_env, spawn, wait_online

RECIPE = ROOT / "cookbook" / "tracing"
TEAM = {"planner-1": "team:planner", "researcher-1": "team:researcher", "writer-1": "team:writer"}
PROVIDER_VARIABLES = (
    "LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY", "LANGFUSE_BASE_URL", "LANGFUSE_HOST",
    "PHOENIX_COLLECTOR_ENDPOINT", "PHOENIX_PROJECT_NAME", "PHOENIX_API_KEY",
)  # fmt: skip


def recipe_env(settings: Settings) -> dict[str, str]:
    """Where Redis is and the test's own key prefix; no tracing variables from outside."""
    env = process_env(settings)
    for name in PROVIDER_VARIABLES:
        env.pop(name, None)
    return env


def provider_env(provider: str, url: str) -> dict[str, str]:
    """The README's variables for ``provider``, pointed at the collector at ``url``."""
    if provider == "langfuse":
        return {
            "LANGFUSE_PUBLIC_KEY": "pk-lf-local",
            "LANGFUSE_SECRET_KEY": "sk-lf-local",
            "LANGFUSE_BASE_URL": url,
        }
    return {"PHOENIX_COLLECTOR_ENDPOINT": url, "PHOENIX_PROJECT_NAME": "cookbook"}


async def stop(process: subprocess.Popen[str], signum: int) -> int:
    """Send ``signum`` and wait for the exit code; a process that does not exit is killed."""
    process.send_signal(signum)
    try:
        return await asyncio.to_thread(process.wait, 20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def collecting_url(collector: subprocess.Popen[str]) -> str:
    """The URL the collector printed once it listens (it chose a free port: ``--port 0``)."""
    async with asyncio.timeout(15):
        while not output_of(collector).startswith("collecting on "):
            assert collector.poll() is None, output_of(collector)
            await asyncio.sleep(0.05)
    return output_of(collector).splitlines()[0].removeprefix("collecting on ")


@pytest.mark.parametrize(
    ("provider", "kinds"),
    [("phoenix", ("AGENT", "TOOL", "CHAIN")), ("langfuse", ("agent", "tool", "span"))],
)
async def test_the_tracing_recipe_prints_one_trace_across_three_workers(
    client: GatewayClient, settings: Settings, provider: str, kinds: tuple[str, str, str]
) -> None:
    env = recipe_env(settings)
    collector = spawn([sys.executable, "collector.py", "--port", "0"], RECIPE, env)
    try:
        env |= provider_env(provider, await collecting_url(collector))
        command = [sys.executable, "-m", "by_framework", "--worker-class"]
        workers = {
            worker_id: spawn([*command, worker_class, "--worker-id", worker_id], RECIPE, env)
            for worker_id, worker_class in TEAM.items()
        }
        try:
            await asyncio.gather(*(wait_online(client, worker_id) for worker_id in workers))
            asked = await asyncio.to_thread(
                subprocess.run, [sys.executable, "ask.py", "Redis streams"],
                cwd=RECIPE, env=env, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
        finally:  # a stopping worker exports the spans it still holds
            codes = {w: await stop(p, signal.SIGTERM) for w, p in workers.items()}
        assert set(codes.values()) == {0}, {w: output_of(p) for w, p in workers.items()}
    finally:  # Ctrl-C: the collector prints what it received
        stopped = await stop(collector, signal.SIGINT)
    assert stopped == 0, output_of(collector)

    assert asked.returncode == 0, asked.stdout + asked.stderr
    trace, *answer = asked.stdout.splitlines()
    assert answer == [
        "answer (completed):",
        "# Redis Streams",
        "About redis streams: entries are append-only; a consumer group shares them out.",
    ]
    printed = output_of(collector).splitlines()
    (start,) = [n for n, line in enumerate(printed) if line.startswith("trace ")]
    agent, tool, span = kinds
    assert printed[start:] == [
        f"{trace} from {provider}: 6 spans",
        f"task planner  agent=planner status=completed worker=planner-1 kind={agent}",
        f"└── call_agent researcher  status=completed kind={tool}",
        "    └── task researcher  agent=researcher status=completed worker=researcher-1 "
        f"kind={agent}",
        f"        ├── lookup notes  status=ok kind={span}",
        f"        └── call_agent writer  status=completed kind={tool}",
        f"            └── task writer  agent=writer status=completed worker=writer-1 kind={agent}",
    ]
