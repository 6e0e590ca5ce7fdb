"""Agents calling agents on the real Redis: call_agent, groups, ask_user/resume, cancel."""

import asyncio

import pytest

from by_framework import (
    AgentState,
    GatewayClient,
    Settings,
    TaskNotWaitingError,
)
from tests.agents import EchoAgent, OrchestraAgent
from tests.support import running_worker


async def test_call_agent_returns_the_childs_reply_and_links_the_tree(
    client: GatewayClient, settings: Settings
) -> None:
    async with (
        running_worker(OrchestraAgent(), settings, worker_id="orchestra"),
        running_worker(EchoAgent(), settings, worker_id="echo"),
    ):
        sent = await client.send_message(
            "planner", "s-call", {"op": "call", "target": "echo", "content": "hi"}
        )
        result = await client.wait_for_result(sent.message_id, timeout=10)
    assert result.status is AgentState.COMPLETED
    assert result.content == {"reply": "hi", "status": "completed"}
    parent = await client.get_task(sent.message_id)
    assert parent is not None and len(parent.children) == 1
    child = await client.get_task(parent.children[0])
    assert child is not None
    assert child.parent_message_id == sent.message_id
    assert child.status is AgentState.COMPLETED
    states = [state for state, _ in parent.timeline]
    assert states == ["queued", "running", "waiting_reply", "running", "completed"]
