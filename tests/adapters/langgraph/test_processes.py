"""LangGraph graphs served by real worker processes (started through the CLI) sharing a
PostgreSQL checkpointer (a schema of the test's own): scale-out with streaming, interrupt on one
worker and resume on another, SIGKILL of a graph's worker while its remote children run."""

import asyncio
import collections
import time
from typing import Any

from by_framework import (
    AgentState,
    GatewayClient,
    StateChangeEvent,
    StreamChunkEvent,
    TaskEndEvent,
    TaskRecord,
    TaskResultEvent,
)
from tests.support import output_of


async def task_events(client: GatewayClient, session_id: str) -> dict[str, list[Any]]:
    """Every event of the session so far, per task."""
    events: dict[str, list[Any]] = collections.defaultdict(list)
    last = await client.last_event_id(session_id)
    async for item in client.events(session_id, timeout=10):
        events[item.message_id].append(item.event)
        if item.stream_id == last:
            break
    return events


async def test_two_workers_serve_an_unchanged_create_agent_graph_and_stream_its_tokens(
    client: GatewayClient, workers: Any
) -> None:
    processes = await workers(
        ("--max-concurrency", "2"), **{"chat-a": "ChatWorker", "chat-b": "ChatWorker"}
    )
    sessions = [f"s-chat-{i}" for i in range(6)]
    sends = [await client.send_message("lg-chat", s, f"question {s}") for s in sessions]
    # Two tasks in one conversation, sent at once: they take turns on its thread.
    sends += [await client.send_message("lg-chat", "s-chat-0", "and another one")]
    results = [await client.wait_for_result(s.message_id, timeout=30) for s in sends]
    records = [await client.get_task(s.message_id) for s in sends]
    served = collections.Counter(r.worker_id for r in records if r is not None)
    print("tasks per worker:", dict(served))
    assert all(r.status is AgentState.COMPLETED for r in results), results
    assert set(served) == set(processes)  # both workers took tasks
    for sent, result in zip(sends, results, strict=True):
        events = (await task_events(client, sent.session_id))[sent.message_id]
        tokens = [e.content for e in events if isinstance(e, StreamChunkEvent)]
        assert "".join(tokens) == result.content  # every token, in order
        assert len(tokens) == len(result.content.split(" "))
        answers = [e for e in events if isinstance(e, TaskResultEvent)]
        assert [a.result.content for a in answers] == [result.content]  # the answer, once
    first, second = results[0].content, results[-1].content
    assert sorted([first[:7], second[:7]]) == ["turn 1:", "turn 2:"]  # one after the other
    for result, session in zip(results[1:6], sessions[1:], strict=True):
        assert result.content == f"turn 1: you said question {session}"


async def test_an_interrupt_is_answered_on_the_other_worker_with_its_state_intact(
    client: GatewayClient, workers: Any
) -> None:
    processes = await workers(**{"approve-a": "ApprovalWorker", "approve-b": "ApprovalWorker"})
    sent = await client.send_message("lg-approval", "s-approval", {"topic": "the launch"})
    asked = await client.wait_for_result(sent.message_id, timeout=30)
    assert asked.status is AgentState.WAITING_USER
    assert asked.content == "Publish 'a plan for the launch'?"
    record = await client.get_task(sent.message_id)
    assert record is not None
    asker = record.worker_id
    other = ({"approve-a", "approve-b"} - {asker}).pop()
    processes[asker].terminate()  # the asking worker is gone: the answer must go elsewhere
    assert processes[asker].wait(timeout=20) == 0, output_of(processes[asker])
    await client.resume(sent.message_id, "s-approval", content="yes")
    result = await client.wait_for_result(sent.message_id, timeout=30)
    assert result.status is AgentState.COMPLETED, result.error
    state = result.content
    assert state["outcome"] == "a plan for the launch: yes"
    assert state["drafted_by"] == processes[asker].pid  # written before the question...
    assert state["decided_by"] == processes[other].pid  # ...read back by the other worker
    final = await client.get_task(sent.message_id)
    assert final is not None and final.worker_id == other and final.run == 1


async def _record(client: GatewayClient, message_id: str) -> TaskRecord:
    task = await client.get_task(message_id)
    assert task is not None
    return task


async def test_sigkill_while_two_remote_agents_run_in_parallel_runs_neither_twice(
    client: GatewayClient, workers: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("HELPER_SLEEP", "1.5")
    await workers(
        **{"research-a": "ResearcherWorker", "research-b": "ResearcherWorker"},
        helpers="HelperAgents",
    )
    sent = await client.send_message("lg-researcher", "s-kill", "bonjour")
    deadline = time.monotonic() + 30
    while True:  # the second turn: two children dispatched, running
        parent = await _record(client, sent.message_id)
        if len(parent.children) == 3:
            kids = [await _record(client, c) for c in parent.children[1:]]
            if all(k.status is AgentState.RUNNING for k in kids):
                break
        assert time.monotonic() < deadline, "the second turn never started"
        await asyncio.sleep(0.05)
    victim = parent.worker_id
    assert victim in {"research-a", "research-b"}
    workers.kill(victim)
    result = await client.wait_for_result(sent.message_id, timeout=30)
    assert result.status is AgentState.COMPLETED, result.error
    assert result.content == "translation: translator(bonjour) | summary: summarizer(bonjour)"

    parent = await _record(client, sent.message_id)
    children = [await _record(client, c) for c in parent.children]
    events = await task_events(client, "s-kill")
    runs = {
        c.message_id: sum(1 for e in events[c.message_id] if e == StateChangeEvent(state="running"))
        for c in children
    }
    ends = {c.message_id: sum(isinstance(e, TaskEndEvent) for e in events[c.message_id])
            for c in children}  # fmt: skip
    parent_runs = sum(1 for e in events[sent.message_id] if e == StateChangeEvent(state="running"))
    print(
        "sigkill tally:",
        {"children": len(children), "child runs": sum(runs.values()),
         "child ends": sum(ends.values()), "parent runs": parent_runs,
         "parent ended on": parent.worker_id, "killed": victim},
    )  # fmt: skip
    assert parent.worker_id != victim and parent_runs == 2  # re-run once, on the other worker
    assert [c.agent_type for c in children] == ["translator", "translator", "summarizer"]
    assert all(n == 1 for n in runs.values()), runs  # no child ran twice...
    assert all(n == 1 for n in ends.values()), ends  # ...or ended twice
    assert len(parent.children) == 3  # ...or was dispatched again
    pair = children[1:]
    assert pair[0].task_group_id is not None
    assert pair[0].task_group_id == pair[1].task_group_id  # one group for the turn
    assert pair[0].started_at < pair[1].finished_at and pair[1].started_at < pair[0].finished_at
