"""AdkWorker on the real Redis, in this process: ADK events on the session stream, remote agents
as ADK tools, questions to the user, cancel. The model is a fake that calls tools (no network)."""

import asyncio
import json
from typing import Any

import pytest
from by_framework_adk import AdkWorker
from google.adk.agents import RunConfig

from by_framework import (
    AgentState,
    ArtifactEvent,
    AskUserEvent,
    GatewayClient,
    SessionEvent,
    Settings,
    StateChangeEvent,
    StreamChunkEvent,
    TaskRecord,
    TaskResultEvent,
)
from tests.adapters.adk.agents import (
    Countdown,
    UpperAgent,
    banker_agent,
    concierge_agent,
    greeter_agent,
    showcase_agent,
    slow_agent,
    ticket_agent,
)
from tests.agents import EchoAgent
from tests.support import chunks, eventually, running_worker, task_events


def results(events: list[Any]) -> list[Any]:
    return [e.result for e in events if isinstance(e, TaskResultEvent)]


@pytest.mark.parametrize("streaming", [True, False], ids=["streamed", "whole"])
async def test_adk_events_on_the_session_stream(
    client: GatewayClient, settings: Settings, streaming: bool
) -> None:
    final = "Noted: you live in Oslo, Norway."
    run_config = None if streaming else RunConfig()
    worker = AdkWorker(showcase_agent(), run_config=run_config)
    async with running_worker(worker, settings):
        sent = await client.send_message("showcase", "s-show", "I live in Oslo", user_code="ada")
        result = await client.wait_for_result(sent.message_id, timeout=15)
        events = await task_events(client, "s-show", sent.message_id)
        session = await worker.session_service.get_session(
            app_name="showcase", user_id="ada", session_id="s-show"
        )
    assert result.status is AgentState.COMPLETED
    assert result.content == final
    text = chunks(events)
    if streaming:
        assert text == ["Noted: ", "you ", "live ", "in ", "Oslo, ", "Norway."]
    else:
        assert text == [final]
    assert "".join(text) == final  # the final response once, not again as a whole
    assert [r.content for r in results(events)] == [final]
    assert chunks(events, "reasoning") == [
        'call remember({"city": "Oslo"})',
        'remember -> {"remembered": "Oslo"}',
    ]
    states = [(e.state, e.detail) for e in events if isinstance(e, StateChangeEvent)]
    assert ("state_delta", '{"city": "Oslo"}') in states
    (artifact,) = [e for e in events if isinstance(e, ArtifactEvent)]
    assert artifact.name == "note.txt" and artifact.mime_type == "text/plain"
    assert artifact.data == {"version": 0, "text": "The user lives in Oslo."}
    # in order: the call, its response with the state and the artifact, then the answer
    kinds = [
        e.kind if isinstance(e, StreamChunkEvent) else e.type
        for e in events
        if isinstance(e, StreamChunkEvent | ArtifactEvent)
        or (isinstance(e, StateChangeEvent) and e.state == "state_delta")
    ]
    assert kinds == ["reasoning", "reasoning", "state", "artifact", *["text"] * len(text)]
    assert session is not None and session.state["city"] == "Oslo"


async def test_a_custom_base_agent(client: GatewayClient, settings: Settings) -> None:
    async with running_worker(AdkWorker(Countdown(name="countdown")), settings):
        sent = await client.send_message("countdown", "s-count", "go")
        result = await client.wait_for_result(sent.message_id, timeout=15)
        events = await task_events(client, "s-count", sent.message_id)
    assert result.content == "liftoff"
    assert chunks(events) == ["3... ", "2... ", "1... ", "liftoff"]
    deltas = [e.detail for e in events if isinstance(e, StateChangeEvent) and e.state != "running"]
    assert deltas[:3] == ['{"left": 3}', '{"left": 2}', '{"left": 1}']


async def test_ask_user_tool_then_resume(client: GatewayClient, settings: Settings) -> None:
    async with running_worker(AdkWorker(greeter_agent()), settings):
        sent = await client.send_message("greeter", "s-greet", "hello")
        asked = await client.wait_for_result(sent.message_id, timeout=15)
        assert asked.status is AgentState.WAITING_USER
        await client.resume(sent.message_id, "s-greet", content="Ada")
        events = await task_events(client, "s-greet", sent.message_id)
    (question,) = [e for e in events if isinstance(e, AskUserEvent)]
    assert question.prompt == "What is your name?"
    assert question.options == ["Ada", "Alan"]
    assert question.data["adk"]["name"] == "ask_user"
    call_id = question.data["adk"]["function_call_id"]
    assert [r.status for r in results(events)] == [AgentState.WAITING_USER, AgentState.COMPLETED]
    assert results(events)[-1].content == "Nice to meet you, Ada!"
    # the answer went back as the response of the very call that asked
    assert f"ask_user -> {json.dumps({'answer': 'Ada'})}" in chunks(events, "reasoning")
    record = await client.get_task(sent.message_id)
    assert record is not None and record.result is not None
    assert record.result.content == "Nice to meet you, Ada!"
    assert call_id


async def test_a_long_running_tool_that_answers_pending_first(
    client: GatewayClient, settings: Settings
) -> None:
    async with running_worker(AdkWorker(ticket_agent()), settings):
        sent = await client.send_message("helpdesk", "s-ticket", "my printer is on fire")
        asked = await client.wait_for_result(sent.message_id, timeout=15)
        assert asked.status is AgentState.WAITING_USER
        await client.resume(sent.message_id, "s-ticket", content={"status": "fixed"})
        events = await task_events(client, "s-ticket", sent.message_id)
    (question,) = [e for e in events if isinstance(e, AskUserEvent)]
    assert question.prompt == "Ticket T-1 is open; I will tell you when it is handled."
    assert question.data["adk"]["so_far"] == {"status": "pending", "ticket": "T-1"}
    assert [r.content for r in results(events)][-1] == "Ticket T-1: fixed."


async def test_an_adk_tool_confirmation(client: GatewayClient, settings: Settings) -> None:
    async with running_worker(AdkWorker(banker_agent()), settings):
        sent = await client.send_message("banker", "s-bank", "send 100")
        asked = await client.wait_for_result(sent.message_id, timeout=15)
        assert asked.status is AgentState.WAITING_USER
        await client.resume(sent.message_id, "s-bank", content={"confirmed": True})
        events = await task_events(client, "s-bank", sent.message_id)
    (question,) = [e for e in events if isinstance(e, AskUserEvent)]
    assert question.data["adk"]["name"] == "adk_request_confirmation"
    assert question.prompt.startswith("Please approve or reject the tool call transfer()")
    assert results(events)[-1].content == "Done: {'transferred': 100}"


async def test_remote_agent_tools(client: GatewayClient, settings: Settings) -> None:
    """One model turn calls two remote agents: both are sent at once, in the model's order."""
    agent = concierge_agent([("echo", {"request": "hi"}), ("translator", {"request": "hello"})])
    async with (
        running_worker(AdkWorker(agent), settings, worker_id="concierge"),
        running_worker(EchoAgent(), settings, worker_id="echo"),
        running_worker(UpperAgent(), settings, worker_id="translator"),
    ):
        sent = await client.send_message("concierge", "s-remote", "greet them")
        result = await client.wait_for_result(sent.message_id, timeout=15)
    assert result.status is AgentState.COMPLETED
    assert result.content == "Replies: echo=hi, translator=HELLO"
    parent = await client.get_task(sent.message_id)
    assert parent is not None
    children = [await client.get_task(child) for child in parent.children]
    assert [(c.agent_type, c.status) for c in children if c] == [
        ("echo", AgentState.COMPLETED),
        ("translator", AgentState.COMPLETED),
    ]
    assert len({c.task_group_id for c in children if c}) == 1  # one group


async def test_one_remote_call_is_a_call_agent(client: GatewayClient, settings: Settings) -> None:
    agent = concierge_agent([("translator", {"request": "bonjour"})])
    async with (
        running_worker(AdkWorker(agent), settings, worker_id="concierge"),
        running_worker(UpperAgent(), settings, worker_id="translator"),
    ):
        sent = await client.send_message("concierge", "s-one", "translate")
        result = await client.wait_for_result(sent.message_id, timeout=15)
    assert result.content == "Replies: translator=BONJOUR"
    parent = await client.get_task(sent.message_id)
    assert parent is not None and len(parent.children) == 1
    child = await client.get_task(parent.children[0])
    assert child is not None and child.task_group_id is None  # a call_agent, not a group
    assert [s for s, _ in parent.timeline] == [
        "queued",
        "running",
        "waiting_reply",
        "running",
        "completed",
    ]


async def test_the_batch_tool(client: GatewayClient, settings: Settings) -> None:
    calls = [
        {"agent": "translator", "content": "one"},
        {"agent": "echo", "content": "two"},
        {"agent": "translator", "content": "three"},
    ]
    agent = concierge_agent([("call_agents", {"calls": calls})])
    async with (
        running_worker(AdkWorker(agent), settings, worker_id="concierge"),
        running_worker(EchoAgent(), settings, worker_id="echo"),
        running_worker(UpperAgent(), settings, worker_id="translator"),
    ):
        sent = await client.send_message("concierge", "s-batch", "all of them")
        result = await client.wait_for_result(sent.message_id, timeout=15)
    assert result.content == "Replies: translator=ONE, echo=two, translator=THREE"
    parent = await client.get_task(sent.message_id)
    assert parent is not None
    children = [await client.get_task(child) for child in parent.children]
    assert [c.agent_type for c in children if c] == ["translator", "echo", "translator"]
    assert len({c.task_group_id for c in children if c}) == 1


async def test_a_remote_agent_nobody_serves(client: GatewayClient, settings: Settings) -> None:
    """The model hears of the failure (and can say so); the task does not fail."""
    agent = concierge_agent([("translator", {"request": "hello"})])
    async with running_worker(AdkWorker(agent), settings):
        sent = await client.send_message("concierge", "s-nobody", "translate")
        result = await client.wait_for_result(sent.message_id, timeout=15)
    assert result.status is AgentState.COMPLETED
    assert result.content.startswith("Replies: translator=NoOnlineWorkerError")


@pytest.mark.parametrize("where", ["in a tool", "waiting for a remote agent"])
async def test_cancel_stops_the_adk_agent(
    client: GatewayClient, settings: Settings, where: str
) -> None:
    """A graceful cancel aborts the run: the grace period (an hour) is far past the wait, so
    only the adapter stopping the agent can end the task."""
    if where == "in a tool":
        agent, expect = slow_agent(), "waiting 60s"
    else:
        agent, expect = concierge_agent([("translator", {"request": "sleep 60"})]), "call "
    async with (
        running_worker(AdkWorker(agent), settings, cancel_grace_seconds=3600),
        running_worker(UpperAgent(), settings, worker_id="translator"),
    ):
        sent = await client.send_message(agent.name, "s-cancel", "take your time")
        await _chunk_starting(client, "s-cancel", expect)
        await client.cancel_task(sent.message_id, "s-cancel", reason="enough")
        result = await client.wait_for_result(sent.message_id, timeout=15)

        async def all_ended() -> list[TaskRecord] | None:
            # The remote agent (marked cancelled in Redis) stops on its own worker, maybe
            # after the concierge has ended.
            records = await client.list_session_tasks("s-cancel")
            return records if all(r.status.is_terminal for r in records) else None

        records = await eventually(all_ended, what="every task of the session to end")
    assert result.status is AgentState.CANCELLED
    assert result.error == "enough"
    assert {r.status for r in records} == {AgentState.CANCELLED}


async def _chunk_starting(client: GatewayClient, session_id: str, prefix: str) -> SessionEvent:
    async with asyncio.timeout(15):
        async for item in client.events(session_id):
            if isinstance(item.event, StreamChunkEvent) and item.event.content.startswith(prefix):
                return item
    raise AssertionError("unreachable")
