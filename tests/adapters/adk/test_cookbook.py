"""The ADK cross-agent recipe, run as its README runs it: three worker processes (ADK, LangGraph,
a plain function) through the CLI, and its client script, against the real Redis."""

import asyncio
import subprocess
import sys

import pytest

from by_framework import AgentState, GatewayClient, Settings
from tests.support import ROOT, output_of, process_env, spawn, wait_online

pytest.importorskip("by_framework_langgraph")

RECIPE = ROOT / "cookbook" / "adk_cross_agent"
WORKERS = {
    "summarizer-1": "summarizer.SummarizerWorker",
    "shout-1": "shout.ShoutWorker",
    "concierge-1": "concierge.ConciergeWorker",
}


async def test_the_adk_cross_agent_recipe(client: GatewayClient, settings: Settings) -> None:
    env = process_env(settings)
    workers = [
        spawn(
            [sys.executable, "-m", "by_framework", "--worker-class", cls, "--worker-id", worker],
            RECIPE,
            env,
        )
        for worker, cls in WORKERS.items()
    ]
    try:
        await asyncio.gather(*(wait_online(client, worker, timeout=30) for worker in WORKERS))
        asked = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "ask.py", "agents from three frameworks work together"],
            cwd=RECIPE, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        for worker in workers:
            worker.terminate()
        codes = [await asyncio.to_thread(worker.wait, 20) for worker in workers]
        assert codes == [0, 0, 0], [output_of(worker) for worker in workers]
    assert asked.returncode == 0, asked.stderr
    lines = asked.stdout.splitlines()
    answer = [
        "summarizer: 6 words, the longest is 'frameworks'",
        "shout: AGENTS FROM THREE FRAMEWORKS WORK TOGETHER!",
    ]
    assert lines[-3:] == ["answer:", *answer]
    request = '{"request": "agents from three frameworks work together"}'
    assert lines[:2] == [
        f"[concierge reasoning] call summarizer({request})",
        f"[concierge reasoning] call shout({request})",
    ]
    assert "[shout reasoning] clearing my throat" in lines
    assert "[summarizer text] 6 words, the longest is 'frameworks'" in lines

    (task,) = [
        r for r in await client.list_session_tasks("cookbook-adk") if not r.parent_message_id
    ]
    assert task.status is AgentState.COMPLETED and task.result is not None
    assert task.result.content == "\n".join(answer)
