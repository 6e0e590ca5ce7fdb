"""AdkWorker beyond the basics, on the real Redis, in this process: several questions at once,
a conversation over several tasks, transfers to sub-agents, binary artifacts, an ADK ``App``,
remote tools given through a toolset. The models are fakes that call tools (no network)."""

import asyncio
import base64

from by_framework_adk import AdkWorker
from google.adk.apps import App

from by_framework import (
    AgentState,
    AgentTaskResult,
    ArtifactEvent,
    AskUserEvent,
    GatewayClient,
    Settings,
    StateChangeEvent,
)
from tests.adapters.adk.agents import (
    PIXEL,
    Painter,
    UpperAgent,
    mixed_tools_agent,
    parrot_agent,
    router_agent,
    survey_agent,
)
from tests.adapters.adk.test_worker import results
from tests.agents import EchoAgent
from tests.support import chunks, running_worker, task_events


async def test_two_questions_in_one_turn_are_asked_one_after_the_other(
    client: GatewayClient, settings: Settings
) -> None:
    async with running_worker(AdkWorker(survey_agent()), settings):
        sent = await client.send_message("survey", "s-survey", "start the survey")
        first = await client.wait_for_result(sent.message_id, timeout=15)
        assert first.status is AgentState.WAITING_USER
        await client.resume(sent.message_id, "s-survey", content="Ada")
        second = await _next_question(client, sent.message_id, after=first)
        await client.resume(sent.message_id, "s-survey", content="London")
        events = await task_events(client, "s-survey", sent.message_id)
    questions = [e for e in events if isinstance(e, AskUserEvent)]
    assert [q.prompt for q in questions] == ["Your name?", "Your city?"]
    assert second.content == "Your city?"
    ids = [q.data["adk"]["function_call_id"] for q in questions]
    assert len(set(ids)) == 2  # two calls, each answered by its own resume
    assert [r.status for r in results(events)] == [
        AgentState.WAITING_USER,
        AgentState.WAITING_USER,
        AgentState.COMPLETED,
    ]
    assert results(events)[-1].content == "Answers: ['Ada', 'London']"


async def _next_question(
    client: GatewayClient, message_id: str, after: AgentTaskResult
) -> AgentTaskResult:
    """The task's result once it waits again, on another question than ``after``."""
    async with asyncio.timeout(15):
        while True:
            record = await client.get_task(message_id)
            result = record.result if record is not None else None
            if result is not None and result.status is AgentState.WAITING_USER:
                if result.content != after.content:
                    return result
            await asyncio.sleep(0.05)


async def test_a_conversation_goes_on_across_tasks_per_user(
    client: GatewayClient, settings: Settings
) -> None:
    """Each task of a session continues the ADK session of its user; another user in the same
    by-framework session has an ADK session of their own."""
    worker = AdkWorker(parrot_agent())
    said = []
    async with running_worker(worker, settings):
        for text, user in (("first", "ada"), ("second", "ada"), ("third", "alan")):
            sent = await client.send_message("parrot", "s-talk", text, user_code=user)
            said.append((await client.wait_for_result(sent.message_id, timeout=15)).content)
    assert said == ["You said: first", "You said: first / second", "You said: third"]
    sessions = {
        user: await worker.session_service.get_session(
            app_name="parrot", user_id=user, session_id="s-talk"
        )
        for user in ("ada", "alan")
    }
    assert all(session is not None for session in sessions.values())


async def test_a_transfer_to_a_sub_agent(client: GatewayClient, settings: Settings) -> None:
    async with running_worker(AdkWorker(router_agent()), settings):
        sent = await client.send_message("router", "s-route", "what do I owe?")
        result = await client.wait_for_result(sent.message_id, timeout=15)
        events = await task_events(client, "s-route", sent.message_id)
    assert result.status is AgentState.COMPLETED
    assert result.content == "Billing here: you owe nothing."
    states = [(e.state, e.detail) for e in events if isinstance(e, StateChangeEvent)]
    assert ("transfer", "billing") in states
    assert 'call transfer_to_agent({"agent_name": "billing"})' in chunks(events, "reasoning")


async def test_binary_and_file_artifacts(client: GatewayClient, settings: Settings) -> None:
    async with running_worker(AdkWorker(Painter(name="painter")), settings):
        sent = await client.send_message("painter", "s-paint", "paint")
        result = await client.wait_for_result(sent.message_id, timeout=15)
        events = await task_events(client, "s-paint", sent.message_id)
    assert result.content == "painted"
    artifacts = {e.name: e for e in events if isinstance(e, ArtifactEvent)}
    assert set(artifacts) == {"pixel.png", "big.bin", "report.pdf"}
    pixel = artifacts["pixel.png"]
    assert pixel.mime_type == "image/png"
    assert pixel.data is not None and base64.b64decode(pixel.data["base64"]) == PIXEL
    assert pixel.data["size"] == len(PIXEL)
    big = artifacts["big.bin"]  # too big to travel inline: named, sized, to load from the store
    assert big.data == {"version": 0, "size": 64 * 1024 + 1}
    report = artifacts["report.pdf"]
    assert (report.url, report.mime_type) == ("gs://reports/r.pdf", "application/pdf")


async def test_an_adk_app(client: GatewayClient, settings: Settings) -> None:
    """An ``App`` is served under its root agent's name, its sessions under the app's name."""
    worker = AdkWorker(App(name="shop", root_agent=parrot_agent()))
    async with running_worker(worker, settings):
        sent = await client.send_message("parrot", "s-app", "hello", user_code="ada")
        result = await client.wait_for_result(sent.message_id, timeout=15)
    assert (worker.agent_type, worker.app_name) == ("parrot", "shop")
    assert result.content == "You said: hello"
    session = await worker.session_service.get_session(
        app_name="shop", user_id="ada", session_id="s-app"
    )
    assert session is not None


async def test_a_remote_tool_given_through_a_toolset(
    client: GatewayClient, settings: Settings
) -> None:
    """The toolset's tool is not among the agent's tools, so it is sent on its own; both
    replies still reach the model, each tool call its own."""
    async with (
        running_worker(AdkWorker(mixed_tools_agent()), settings, worker_id="concierge"),
        running_worker(EchoAgent(), settings, worker_id="echo"),
        running_worker(UpperAgent(), settings, worker_id="translator"),
    ):
        sent = await client.send_message("concierge", "s-toolset", "greet them")
        result = await client.wait_for_result(sent.message_id, timeout=15)
    assert result.status is AgentState.COMPLETED
    assert result.content == "Replies: echo=hi, translator=HELLO"
    parent = await client.get_task(sent.message_id)
    assert parent is not None and len(parent.children) == 2
