"""Every kind of agent is a worker: an ADK LlmAgent (a fake model that calls tools) asks a
LangGraph agent and a plain-callable agent, in one model turn, and answers with both replies."""

from typing import Any

import pytest
from by_framework_adk import AdkWorker

from by_framework import (
    AgentState,
    CallableWorker,
    GatewayClient,
    Settings,
    StreamChunkEvent,
    TaskResultEvent,
)
from tests.adapters.adk.agents import concierge_agent
from tests.support import running_worker, task_events

pytest.importorskip("by_framework_langgraph")

from by_framework_langgraph import LangGraphWorker

from tests.adapters.adk.cross import formatter, research_graph


async def test_an_adk_agent_asks_a_langgraph_agent_and_a_plain_callable(
    client: GatewayClient, settings: Settings
) -> None:
    agent = concierge_agent(
        [("researcher", {"request": "Redis Streams"}), ("formatter", {"request": "done"})],
        remote=["researcher", "formatter"],
    )
    async with (
        running_worker(AdkWorker(agent), settings, worker_id="adk"),
        running_worker(LangGraphWorker(research_graph(), "researcher"), settings, worker_id="lg"),
        running_worker(CallableWorker([formatter]), settings, worker_id="plain"),
    ):
        sent = await client.send_message("concierge", "s-cross", "what are Redis Streams?")
        result = await client.wait_for_result(sent.message_id, timeout=20)
        parent = await client.get_task(sent.message_id)
        assert parent is not None
        children = [await client.get_task(child) for child in parent.children]
        stream: list[Any] = []
        async for item in client.events("s-cross", timeout=5):
            stream.append(item)
            if item.message_id == sent.message_id and item.event.type == "end":
                break

    assert result.status is AgentState.COMPLETED
    assert (
        result.content
        == "Replies: researcher=Redis Streams is a log of entries, formatter=**done**"
    )
    # both sub-calls sent together, in the model's order, and both completed
    assert [(c.agent_type, c.status) for c in children if c] == [
        ("researcher", AgentState.COMPLETED),
        ("formatter", AgentState.COMPLETED),
    ]
    assert len({c.task_group_id for c in children if c}) == 1
    # the three frameworks' output on the one session stream
    by_agent = {
        (item.agent_type, item.event.kind)
        for item in stream
        if isinstance(item.event, StreamChunkEvent)
    }
    assert {
        ("concierge", "reasoning"),
        ("formatter", "reasoning"),
        ("researcher", "text"),
    } <= by_agent
    # the concierge's answer: once
    events = await task_events(client, "s-cross", sent.message_id)
    assert [e.result.content for e in events if isinstance(e, TaskResultEvent)] == [result.content]
    text = [e.content for e in events if isinstance(e, StreamChunkEvent) and e.kind == "text"]
    assert "".join(text) == result.content
