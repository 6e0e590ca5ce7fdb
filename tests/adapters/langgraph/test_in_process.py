"""The LangGraph adapter with workers in the test's event loop (fast): streaming, interrupts,
remote agents as tools, cancel, threads. Worker processes and crashes: test_processes.py."""

import asyncio
from typing import Any

from by_framework_langgraph import LangGraphWorker, default_thread_id

from by_framework import (
    AgentState,
    AskUserEvent,
    GatewayClient,
    Settings,
    StateChangeEvent,
    StreamPartEvent,
)
from tests.adapters.langgraph import graphs
from tests.support import chunks, parts, running_worker, task_events


async def test_a_create_agent_graph_streams_its_tokens_and_answers_once(
    client: GatewayClient, settings: Settings
) -> None:
    worker = LangGraphWorker(graphs.build_chat, "lg-chat")
    async with running_worker(worker, settings):
        sent = await client.send_message("lg-chat", "s-chat", "hello there")
        result = await client.wait_for_result(sent.message_id, timeout=20)
        events = await task_events(client, "s-chat", sent.message_id)
    assert result.status is AgentState.COMPLETED
    assert result.content == "turn 1: you said hello there"
    tokens = chunks(events)
    assert tokens == ["turn", " 1:", " you", " said", " hello", " there"]
    states = [e.state for e in events if isinstance(e, StateChangeEvent)]
    assert "model" in states
    assert result.data == {"thread_id": "s-chat:lg-chat"}


async def test_interrupt_asks_the_user_and_the_resume_goes_on(
    client: GatewayClient, settings: Settings
) -> None:
    worker = LangGraphWorker(graphs.build_approval, "lg-approval")
    async with running_worker(worker, settings):
        sent = await client.send_message("lg-approval", "s-approve", {"topic": "launch"})
        asked = await client.wait_for_result(sent.message_id, timeout=20)
        assert asked.status is AgentState.WAITING_USER
        question = asked.data["ask_user"]
        assert question["prompt"] == "Publish 'a plan for launch'?"
        assert question["options"] == ["yes", "no"]
        (pending,) = question["data"]["interrupts"]
        assert pending["value"]["options"] == ["yes", "no"]
        await client.resume(sent.message_id, "s-approve", content="yes")
        result = await client.wait_for_result(sent.message_id, timeout=20)
        events = await task_events(client, "s-approve", sent.message_id)
    assert result.status is AgentState.COMPLETED, result.error
    assert result.content["outcome"] == "a plan for launch: yes"
    assert result.content["topic"] == "launch"
    assert parts(events, "custom") == [{"published": True}]  # a custom part, never a chunk
    assert chunks(events) == []
    assert any(isinstance(e, AskUserEvent) for e in events)


async def test_several_pending_interrupts_are_answered_by_their_ids(
    client: GatewayClient, settings: Settings
) -> None:
    worker = LangGraphWorker(graphs.build_pair, "lg-pair")
    async with running_worker(worker, settings):
        sent = await client.send_message("lg-pair", "s-pair", {"answers": {}})
        asked = await client.wait_for_result(sent.message_id, timeout=20)
        pending = {i["value"]: i["id"] for i in asked.data["ask_user"]["data"]["interrupts"]}
        assert set(pending) == {"Which color?", "Which size?"}
        # One answer for two questions is not clear: the task asks again.
        await client.resume(sent.message_id, "s-pair", content="blue")
        again = await client.wait_for_result(sent.message_id, timeout=20)
        assert again.status is AgentState.WAITING_USER
        assert again.data["ask_user"]["prompt"].startswith("Several questions are waiting")
        answers = {pending["Which color?"]: "blue", pending["Which size?"]: "XL"}
        await client.resume(sent.message_id, "s-pair", reply_data={"interrupts": answers})
        result = await client.wait_for_result(sent.message_id, timeout=20)
    assert result.status is AgentState.COMPLETED, result.error
    assert result.content == {"answers": {"color": "blue", "size": "XL"}}


async def test_remote_agents_of_one_turn_run_as_one_group_and_reply_to_their_calls(
    client: GatewayClient, settings: Settings
) -> None:
    worker = LangGraphWorker(graphs.build_researcher, "lg-researcher")
    async with (
        running_worker(graphs.HelperAgents(), settings, worker_id="helpers"),
        running_worker(worker, settings, worker_id="researcher"),
    ):
        sent = await client.send_message("lg-researcher", "s-research", "bonjour")
        result = await client.wait_for_result(sent.message_id, timeout=20)
        events = await task_events(client, "s-research", sent.message_id)
        parent = await client.get_task(sent.message_id)
        assert parent is not None
        children = [await client.get_task(child) for child in parent.children]
    assert result.status is AgentState.COMPLETED, result.error
    assert result.content == "translation: translator(bonjour) | summary: summarizer(bonjour)"
    assert [c.agent_type for c in children] == ["translator", "translator", "summarizer"]
    assert children[0].task_group_id != children[1].task_group_id  # its own turn
    assert children[1].task_group_id == children[2].task_group_id  # one turn, one group
    reasoning = chunks(events, "reasoning")
    assert 'calling translator({"request": "bonjour"})' in reasoning
    assert "summarizer -> summarizer(bonjour)" in reasoning


async def test_a_failed_remote_agent_is_an_error_message_for_the_model(
    client: GatewayClient, settings: Settings
) -> None:
    worker = LangGraphWorker(graphs.build_waiter, "lg-waiter")
    async with (
        running_worker(graphs.HelperAgents(), settings, worker_id="helpers"),
        running_worker(worker, settings, worker_id="waiter"),
    ):
        sent = await client.send_message("lg-waiter", "s-fail", "fail")
        result = await client.wait_for_result(sent.message_id, timeout=20)
    assert result.status is AgentState.COMPLETED, result.error
    assert result.content == "got agent 'translator' failed: RuntimeError: cannot do that"


async def test_a_graceful_cancel_stops_the_running_graph(
    client: GatewayClient, settings: Settings
) -> None:
    worker = LangGraphWorker(graphs.build_ticker, "lg-ticker")
    async with running_worker(worker, settings):
        sent = await client.send_message("lg-ticker", "s-tick", {"ticks": 0})
        seen: list[str] = []
        async for item in client.events("s-tick", timeout=20):
            if isinstance(item.event, StreamPartEvent):
                seen.append(item.event.data)
                if len(seen) == 3:
                    break
        await client.cancel_task(sent.message_id, "s-tick", reason="enough")
        started = asyncio.get_running_loop().time()
        result = await client.wait_for_result(sent.message_id, timeout=20)
        stopped_in = asyncio.get_running_loop().time() - started
        events = await task_events(client, "s-tick", sent.message_id)
        await asyncio.sleep(0.3)
        after = await task_events(client, "s-tick", sent.message_id)
    print(f"cancel: stopped in {stopped_in:.2f}s after {len(parts(events, 'custom'))} ticks")
    assert result.status is AgentState.CANCELLED
    assert result.error == "enough"
    assert stopped_in < 2  # the graph stopped, not the core's grace period (10 s) running out
    assert parts(after, "custom") == parts(events, "custom")  # no tick after the end


async def test_a_cancel_reaches_the_remote_child_the_graph_waits_for(
    client: GatewayClient, settings: Settings, monkeypatch: Any
) -> None:
    monkeypatch.setenv("HELPER_SLEEP", "30")
    worker = LangGraphWorker(graphs.build_waiter, "lg-waiter")
    async with (
        running_worker(
            graphs.HelperAgents(), settings, worker_id="helpers", cancel_grace_seconds=0.2
        ),
        running_worker(worker, settings, worker_id="waiter"),
    ):
        sent = await client.send_message("lg-waiter", "s-cancel-child", "slowly")
        for _ in range(200):
            parent = await client.get_task(sent.message_id)
            if parent is not None and parent.status is AgentState.WAITING_REPLY:
                break
            await asyncio.sleep(0.05)
        assert parent is not None and parent.children
        await client.cancel_task(sent.message_id, "s-cancel-child", reason="stop")
        result = await client.wait_for_result(sent.message_id, timeout=10)
        child = await client.wait_for_result(parent.children[0], timeout=10)
    assert result.status is AgentState.CANCELLED
    assert child.status is AgentState.CANCELLED


async def test_tasks_of_one_conversation_take_turns_and_sub_calls_get_threads_of_their_own(
    client: GatewayClient, settings: Settings
) -> None:
    worker = LangGraphWorker(graphs.build_chat, "lg-chat")
    async with running_worker(worker, settings, max_concurrency=4):
        first = await client.send_message("lg-chat", "s-turns", "one")
        second = await client.send_message("lg-chat", "s-turns", "two")
        results = [await client.wait_for_result(s.message_id, timeout=20) for s in (first, second)]
        state = await worker.graph.aget_state({"configurable": {"thread_id": "s-turns:lg-chat"}})
    contents = sorted(r.content for r in results)
    assert contents[0].startswith("turn 1: ") and contents[1].startswith("turn 2: ")
    assert [m.type for m in state.values["messages"]] == ["human", "ai", "human", "ai"]

    class Header:
        session_id, current_agent_id, message_id, parent_message_id = "s", "lg-chat", "m", "p"

    assert default_thread_id(Header()) == "s:lg-chat:m"  # type: ignore[arg-type]


async def test_the_model_asks_the_user_through_a_tool_and_its_remote_call_is_sent_once(
    client: GatewayClient, settings: Settings
) -> None:
    worker = LangGraphWorker(graphs.build_asker, "lg-asker")
    async with (
        running_worker(graphs.HelperAgents(), settings, worker_id="helpers"),
        running_worker(worker, settings, worker_id="asker"),
    ):
        sent = await client.send_message("lg-asker", "s-ask-tool", "bonjour")
        asked = await client.wait_for_result(sent.message_id, timeout=20)
        assert asked.status is AgentState.WAITING_USER, asked.error
        assert asked.content == "Formal or casual?"
        assert asked.data["ask_user"]["options"] == ["formal", "casual"]
        await client.resume(sent.message_id, "s-ask-tool", content="formal")
        result = await client.wait_for_result(sent.message_id, timeout=20)
        parent = await client.get_task(sent.message_id)
    assert result.status is AgentState.COMPLETED, result.error
    assert result.content == "translator(bonjour), in a formal tone"
    assert parent is not None and len(parent.children) == 1  # the resumed run collected its reply


async def test_mappers_and_a_thread_per_user_replace_the_defaults(
    client: GatewayClient, settings: Settings, caplog: Any
) -> None:
    worker = LangGraphWorker(
        graphs.build_chat,
        "lg-chat",
        thread_id=lambda context: f"user:{context.user_code}",
        input_mapper=lambda command, context: {"messages": [("user", command.content["text"])]},
        output_mapper=lambda values, context: {
            "reply": values["messages"][-1].content,
            "messages": len(values["messages"]),
        },
    )
    async with running_worker(worker, settings):
        # Two sessions of one user: one conversation.
        first = await client.send_message("lg-chat", "s-map-1", {"text": "hi"}, user_code="ann")
        one = await client.wait_for_result(first.message_id, timeout=20)
        second = await client.send_message("lg-chat", "s-map-2", {"text": "yo"}, user_code="ann")
        two = await client.wait_for_result(second.message_id, timeout=20)
    assert one.content == {"reply": "turn 1: you said hi", "messages": 2}
    assert two.content == {"reply": "turn 2: you said yo", "messages": 4}
    assert two.data == {"thread_id": "user:ann"}
    assert "keeps its graph state in memory: run a single worker" in caplog.text
