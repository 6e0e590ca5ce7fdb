"""AdkWorker's fault paths: bad configuration, a resume no worker can answer, agents that fail,
remote agents that fail or are too slow, bad calls of the batch tool. Real Redis, fake models."""

import logging

import pytest
from by_framework_adk import (
    AdkWorker,
    current_context,
    remote_agent_tool,
    session_service_from_url,
)
from by_framework_adk.services import SESSION_URL_ENV
from google.adk.sessions import InMemorySessionService

from by_framework import AgentState, GatewayClient, Settings
from tests.adapters.adk.agents import (
    Failing,
    Raising,
    UpperAgent,
    concierge_agent,
    greeter_agent,
    impatient_agent,
    parrot_agent,
)
from tests.support import running_worker


def test_sessions_in_memory_come_with_a_warning(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SESSION_URL_ENV, raising=False)
    with caplog.at_level(logging.WARNING, logger="by_framework_adk"):
        worker = AdkWorker(parrot_agent())
    assert isinstance(worker.session_service, InMemorySessionService)
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "this process's memory" in warning.getMessage()
    assert SESSION_URL_ENV in warning.getMessage()


def test_a_session_service_passed_in_is_the_one_used(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SESSION_URL_ENV, "sqlite:////nonexistent/dir/never-opened.db")
    shared = InMemorySessionService()
    with caplog.at_level(logging.WARNING, logger="by_framework_adk"):
        worker = AdkWorker(parrot_agent(), session_service=shared)
    assert worker.session_service is shared
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_session_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SESSION_URL_ENV, "memory://")
    worker = AdkWorker(parrot_agent(), session_url=None)
    assert isinstance(worker.session_service, InMemorySessionService)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"agent_type": "  "}, "needs an agent_type"),
        ({"session_url": "nosuchdb://user:hunter2@host/db"}, "Invalid database URL"),
        ({"artifact_url": "nosuch://user:hunter2@host/bucket"}, "no ADK artifact service"),
    ],
    ids=["blank agent type", "unknown session store", "unknown artifact store"],
)
def test_bad_configuration_is_refused_at_once(options: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        AdkWorker(parrot_agent(), **options)
    assert "hunter2" not in str(raised.value)  # no password in the error


def test_session_service_from_url_hides_the_password() -> None:
    with pytest.raises(ValueError) as raised:
        session_service_from_url("mysql+nosuchdriver://ada:hunter2@db/adk")
    assert "hunter2" not in str(raised.value)


def test_the_tools_need_a_running_task() -> None:
    with pytest.raises(RuntimeError, match="only while an AdkWorker runs the agent"):
        current_context()


async def test_a_resume_the_worker_cannot_see_fails_clearly(
    client: GatewayClient, settings: Settings
) -> None:
    """Sessions in one worker's memory: the worker that asked is gone, and the one that gets the
    answer has never seen the question."""
    async with running_worker(AdkWorker(greeter_agent()), settings, worker_id="greeter-1"):
        sent = await client.send_message("greeter", "s-lost", "hello")
        asked = await client.wait_for_result(sent.message_id, timeout=15)
    assert asked.status is AgentState.WAITING_USER
    async with running_worker(AdkWorker(greeter_agent()), settings, worker_id="greeter-2"):
        await client.resume(sent.message_id, "s-lost", content="Ada")
        result = await client.wait_for_result(sent.message_id, timeout=15)
    assert result.status is AgentState.FAILED
    assert result.error is not None
    assert result.error.startswith("NothingToResumeError: ")
    assert "do all replicas share one session store?" in result.error


@pytest.mark.parametrize(
    ("agent", "error"),
    [
        (Failing(name="failing"), "the ADK agent ended with an error: SAFETY: the answer was"),
        (Raising(name="raising"), "the agent broke"),
    ],
    ids=["an error event", "an exception"],
)
async def test_an_agent_that_fails_fails_the_task(
    client: GatewayClient, settings: Settings, agent: object, error: str
) -> None:
    async with running_worker(AdkWorker(agent), settings):  # type: ignore[arg-type]
        sent = await client.send_message(agent.name, "s-fail", "go")  # type: ignore[attr-defined]
        result = await client.wait_for_result(sent.message_id, timeout=15)
    assert result.status is AgentState.FAILED
    assert result.error is not None and error in result.error


async def test_a_remote_agent_that_fails(client: GatewayClient, settings: Settings) -> None:
    """The model hears the remote agent's error and can say so; the task itself completes."""
    agent = concierge_agent([("translator", {"request": "fail"})])
    async with (
        running_worker(AdkWorker(agent), settings, worker_id="concierge"),
        running_worker(UpperAgent(), settings, worker_id="translator"),
    ):
        sent = await client.send_message("concierge", "s-remote-fail", "translate")
        result = await client.wait_for_result(sent.message_id, timeout=15)
    assert result.status is AgentState.COMPLETED
    assert result.content == "Replies: translator=RuntimeError: cannot translate that"


async def test_a_remote_agent_past_the_tool_timeout(
    client: GatewayClient, settings: Settings
) -> None:
    async with (
        running_worker(AdkWorker(impatient_agent("sleep 30")), settings, worker_id="concierge"),
        running_worker(UpperAgent(), settings, worker_id="translator"),
    ):
        sent = await client.send_message("concierge", "s-slow", "translate")
        result = await client.wait_for_result(sent.message_id, timeout=15)
        parent = await client.get_task(sent.message_id)
        assert parent is not None
        (child,) = parent.children
        await client.cancel_task(child, "s-slow", reason="nobody waits for it")
        stopped = await client.wait_for_result(child, timeout=15)
    assert result.status is AgentState.COMPLETED
    assert result.content == "Replies: translator=no reply within 0.5s; the agents go on"
    assert stopped.status is AgentState.CANCELLED


@pytest.mark.parametrize(
    ("calls", "error"),
    [
        ([{"agent": "nobody", "content": "x"}], "call_agents cannot call ['nobody']"),
        ([], "call_agents needs at least one call"),
        ([{"agent": "echo"}], "call_agents takes 'calls': a list of {agent, content}"),
    ],
    ids=["an agent it may not call", "no call", "a call without content"],
)
async def test_bad_calls_of_the_batch_tool(
    client: GatewayClient, settings: Settings, calls: list[dict[str, str]], error: str
) -> None:
    """The model is told what was wrong; nothing is sent."""
    agent = concierge_agent([("call_agents", {"calls": calls})])
    async with running_worker(AdkWorker(agent), settings):
        sent = await client.send_message("concierge", "s-batch-bad", "all of them")
        result = await client.wait_for_result(sent.message_id, timeout=15)
        parent = await client.get_task(sent.message_id)
    assert result.status is AgentState.COMPLETED
    assert result.content.startswith(f"Replies: call_agents={error}")
    assert parent is not None and parent.children == []


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ({"request": 42}, "translator takes one text argument, 'request'"),
        ({"text": "hello"}, "mandatory input parameters are not present"),  # ADK's own check
    ],
    ids=["not text", "missing"],
)
async def test_a_remote_tool_called_with_a_bad_request(
    client: GatewayClient, settings: Settings, args: dict[str, object], error: str
) -> None:
    agent = concierge_agent([("translator", args)], remote=["translator"])
    async with running_worker(AdkWorker(agent), settings):
        sent = await client.send_message("concierge", "s-bad-request", "translate")
        result = await client.wait_for_result(sent.message_id, timeout=15)
        parent = await client.get_task(sent.message_id)
    assert result.status is AgentState.COMPLETED
    assert result.content.startswith("Replies: translator=") and error in result.content
    assert parent is not None and parent.children == []


def test_remote_agent_tool_names() -> None:
    """A tool's name is a valid function name, whatever the agent type is called."""
    assert remote_agent_tool("translator-fr.v2").name == "translator_fr_v2"
    assert remote_agent_tool("2nd-opinion").name == "agent_2nd_opinion"
    assert remote_agent_tool("x", name="ask_x").name == "ask_x"
