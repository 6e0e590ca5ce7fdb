"""ADK's long-term memory named by URL (``memory_url`` / ``$BYAI_ADK_MEMORY_URL``): what one
conversation stored with ``add_session_to_memory`` a tool of another finds with
``search_memory``. In this process: ``memory://`` lives in it; ``sqlite://`` is a file that two
workers share."""

from pathlib import Path
from typing import Any

import pytest
from by_framework_adk import AdkWorker
from by_framework_adk.services import MEMORY_URL_ENV
from google.adk.agents import LlmAgent
from google.adk.agents.callback_context import CallbackContext
from google.adk.memory import InMemoryMemoryService
from google.adk.models import LlmRequest
from google.adk.tools import ToolContext

from by_framework import AgentState, GatewayClient, Settings
from tests.adapters.adk.fake_llm import FakeLlm, responses
from tests.support import running_worker


async def recall(query: str, tool_context: ToolContext) -> dict[str, Any]:
    """Search what the user said in earlier conversations."""
    found = await tool_context.search_memory(query)
    texts = [part.text for memory in found.memories for part in memory.content.parts or ()]
    return {"memories": [text for text in texts if text]}


async def remember(callback_context: CallbackContext) -> None:
    await callback_context.add_session_to_memory()


def _first_turn(request: LlmRequest) -> Any:
    text = request.contents[-1].parts[0].text or ""
    if text.startswith("recall "):
        return [("recall", {"query": text.removeprefix("recall ")})]
    return "Noted."


def _answer(request: LlmRequest) -> str:
    (response,) = responses(request)
    return "I remember: " + " / ".join((response.response or {}).get("memories", []))


def memo_agent() -> LlmAgent:
    """Stores every conversation in memory after each turn; ``recall X`` searches it."""
    return LlmAgent(
        name="memo",
        model=FakeLlm(script=[_first_turn, _answer]),
        tools=[recall],
        after_agent_callback=remember,
    )


async def _ask(client: GatewayClient, session: str, text: str, **options: Any) -> str:
    sent = await client.send_message("memo", session, text, user_code="ann", **options)
    result = await client.wait_for_result(sent.message_id, timeout=15)
    assert result.status is AgentState.COMPLETED, result.error
    return str(result.content)


async def test_memory_url_from_the_environment_is_searched_across_sessions(
    client: GatewayClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MEMORY_URL_ENV, "memory://")
    worker = AdkWorker(memo_agent())
    assert isinstance(worker.runner.memory_service, InMemoryMemoryService)
    async with running_worker(worker, settings):
        assert await _ask(client, "s-mem-1", "I drink green tea") == "Noted."
        answer = await _ask(client, "s-mem-2", "recall tea")
    assert answer == "I remember: I drink green tea"


async def test_a_sqlite_memory_url_is_shared_by_two_workers(
    client: GatewayClient, settings: Settings, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'memory.db'}"
    first = AdkWorker(memo_agent(), memory_url=url)
    second = AdkWorker(memo_agent(), memory_url=url)
    async with (
        running_worker(first, settings, worker_id="memo-a"),
        running_worker(second, settings, worker_id="memo-b"),
    ):
        said = await _ask(client, "s-mem-a", "I drink green tea", target_worker_id="memo-a")
        answer = await _ask(client, "s-mem-b", "recall tea", target_worker_id="memo-b")
    assert said == "Noted."
    assert answer.startswith("I remember: I drink green tea"), answer


def test_an_unknown_memory_url_is_refused() -> None:
    with pytest.raises(ValueError, match="no ADK memory service for 'nope://x'"):
        AdkWorker(memo_agent(), memory_url="nope://x")
