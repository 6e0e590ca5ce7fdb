"""AdkWorker in real worker processes (the CLI): an ADK long-running tool asks the user, the
worker that asked goes away, and another one takes the answer to the agent."""

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from by_framework_adk import session_service_from_url
from by_framework_adk.questions import live_events

from by_framework import (
    AgentState,
    AskUserEvent,
    GatewayClient,
    Settings,
    TaskResultEvent,
)
from tests.adapters.adk.agents import UpperAgent
from tests.agents import EchoAgent
from tests.support import (
    ROOT,
    chunks,
    final_result,
    output_of,
    process_env,
    running_worker,
    spawn,
    task_events,
    wait_online,
    worker_process,
)


async def test_long_running_tool_asks_and_another_worker_resumes(
    client: GatewayClient, settings: Settings, session_url: str
) -> None:
    first, second = (
        worker_process(settings, worker_id, "tests.adapters.adk.agents.ApprovalWorker")
        for worker_id in ("payer-1", "payer-2")
    )
    try:
        await asyncio.gather(wait_online(client, "payer-1"), wait_online(client, "payer-2"))
        sent = await client.send_message(
            "payer", "s-pay", "pay the team dinner", user_code="ada", target_worker_id="payer-1"
        )
        asked = await client.wait_for_result(sent.message_id, timeout=15)
        assert asked.status is AgentState.WAITING_USER, output_of(first)
        first.terminate()  # the worker that asked is gone: the resume can only go to payer-2
        assert await asyncio.to_thread(first.wait, 15) == 0, output_of(first)
        await client.resume(sent.message_id, "s-pay", content={"approved": True, "by": "alice"})
        result = await final_result(client, sent.message_id)
        events = await task_events(client, "s-pay", sent.message_id)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()

    final = "Paid 500 EUR, approved by alice."
    assert result.status is AgentState.COMPLETED and result.content == final
    record = await client.get_task(sent.message_id)
    assert record is not None and record.worker_id == "payer-2" and record.run == 1

    (question,) = [e for e in events if isinstance(e, AskUserEvent)]
    call = question.data["adk"]
    assert call["name"] == "request_approval"
    assert call["args"] == {"amount": 500, "reason": "team dinner"}
    assert question.prompt == "request_approval is waiting for an answer"

    # the final response, once on the whole session stream
    text = [c for c in chunks(events) if c]
    assert "".join(text) == final
    finals = [e for e in events if isinstance(e, TaskResultEvent) and e.result.content == final]
    assert len(finals) == 1
    assert chunks(events, "reasoning") == [
        'call request_approval({"amount": 500, "reason": "team dinner"})',
        'request_approval -> {"approved": true, "by": "alice"}',
    ]

    # the answer reached the agent as the response of the call that asked, in the shared store
    store = session_service_from_url(session_url)
    session = await store.get_session(app_name="payer", user_id="ada", session_id="s-pay")
    assert session is not None
    answers = [
        (event.author, response.id, response.response)
        for event in session.events
        for response in event.get_function_responses()
    ]
    assert answers == [("user", call["function_call_id"], {"approved": True, "by": "alice"})]
    await _close(store)


def _stop(workers: list[subprocess.Popen[str]]) -> list[int]:
    """Stop the worker processes still running; every process's exit code."""
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
    return [worker.wait(15) for worker in workers]


async def _close(store: Any) -> None:
    close = getattr(store, "close", None)
    if close is not None:
        await close()


@pytest.mark.parametrize(
    ("worker_class", "answer"),
    [
        ("CrashingConciergeWorker", "Replies: translator=HELLO"),
        ("CrashingGroupWorker", "Replies: echo=hi, translator=HELLO"),
    ],
    ids=["call_agent", "dispatch_group"],
)
async def test_a_run_cut_off_by_a_crash_runs_again_without_repeating_its_sub_calls(
    client: GatewayClient,
    settings: Settings,
    session_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    worker_class: str,
    answer: str,
) -> None:
    """The worker dies after the remote agents answered: the re-run on another worker starts
    the ADK turn over (the cut-off attempt rewound from the session), the model makes the same
    calls again, and gets the recorded replies: each remote agent ran once."""
    monkeypatch.setenv("ADK_TEST_CRASH_FILE", str(tmp_path / "crashed"))
    workers = [
        worker_process(settings, worker_id, f"tests.adapters.adk.agents.{worker_class}")
        for worker_id in ("concierge-1", "concierge-2")
    ]
    try:
        async with (
            running_worker(UpperAgent(), settings, worker_id="translator"),
            running_worker(EchoAgent(), settings, worker_id="echo"),
        ):
            await asyncio.gather(*(wait_online(client, f"concierge-{n}") for n in (1, 2)))
            sent = await client.send_message("concierge", "s-crash", "greet", user_code="ada")
            result = await final_result(client, sent.message_id)
    finally:
        codes = _stop(workers)
    assert codes.count(17) == 1, codes  # whichever worker took the task died, once
    assert result.content == answer, [output_of(w) for w in workers]
    parent = await client.get_task(sent.message_id)
    assert parent is not None
    children = [await client.get_task(child) for child in parent.children]
    assert len(children) == answer.count("=")  # nothing sent twice
    assert all(c is not None and c.delivery_count == 1 for c in children)

    store = session_service_from_url(session_url)
    session = await store.get_session(app_name="concierge", user_id="ada", session_id="s-crash")
    assert session is not None
    said = [
        (event.author, part.text)
        for event in live_events(session.events)
        for part in (event.content.parts if event.content else ())
        if part.text
    ]
    assert said == [("user", "greet"), ("concierge", answer)]
    await _close(store)


async def test_a_resume_cut_off_by_a_crash_gives_the_answer_again(
    client: GatewayClient,
    settings: Settings,
    session_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker dies while the agent takes the answer in; the re-run on another worker finds
    the question answered by that cut-off attempt, answers it again, and the agent finishes."""
    monkeypatch.setenv("ADK_TEST_CRASH_FILE", str(tmp_path / "crashed"))
    workers = [
        worker_process(settings, worker_id, "tests.adapters.adk.agents.CrashingApprovalWorker")
        for worker_id in ("payer-1", "payer-2")
    ]
    try:
        await asyncio.gather(*(wait_online(client, f"payer-{n}") for n in (1, 2)))
        sent = await client.send_message("payer", "s-cut", "pay the team dinner", user_code="ada")
        asked = await client.wait_for_result(sent.message_id, timeout=15)
        assert asked.status is AgentState.WAITING_USER
        await client.resume(sent.message_id, "s-cut", content={"approved": True, "by": "bob"})
        result = await final_result(client, sent.message_id)
    finally:
        codes = _stop(workers)
    assert codes.count(17) == 1, codes  # whichever worker took the answer in died, once
    assert result.status is AgentState.COMPLETED, [output_of(w) for w in workers]
    assert result.content == "Paid 500 EUR, approved by bob."


SERVE = """
from by_framework_adk import serve_agent
from tests.adapters.adk.agents import parrot_agent

serve_agent(
    parrot_agent(), "parrot", worker_id="parrot-1", session_url="memory://",
    heartbeat_interval=0.2, heartbeat_ttl=1.0,
)
"""


async def test_serve_agent_serves_until_sigterm(client: GatewayClient, settings: Settings) -> None:
    """``serve_agent`` gives the worker its options (``session_url``) and ``run_worker`` the
    rest (``worker_id``, settings), serves, and stops cleanly on SIGTERM."""
    env = process_env(settings)
    process = spawn([sys.executable, "-c", SERVE], ROOT, env)
    try:
        await wait_online(client, "parrot-1")
        sent = await client.send_message("parrot", "s-serve", "hi")
        result = await client.wait_for_result(sent.message_id, timeout=15)
    finally:
        code = _stop([process])
    assert result.content == "You said: hi"
    assert code == [0], output_of(process)
