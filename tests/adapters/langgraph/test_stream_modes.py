"""The stream modes a message chooses (``stream_mode``), each as its own event kind: a node that
writes its progress and a model that answers in text (graphs.build_reporter), served in the
test's event loop, then by real worker processes (the ``workers`` fixture: PostgreSQL
checkpointer), where a resumed run streams as its task's message chose."""

from typing import Any

from by_framework_langgraph import LangGraphWorker

from by_framework import (
    AgentState,
    AgentTaskResult,
    GatewayClient,
    Settings,
    StateChangeEvent,
    StreamChunkEvent,
    StreamMode,
    StreamPartEvent,
)
from tests.adapters.langgraph import graphs
from tests.support import chunks, parts, running_worker, task_events

ANSWER = "a report on the harbour from two sources"
PROGRESS = [{"progress": "searching"}, {"progress": "reading"}]


async def report(
    client: GatewayClient, settings: Settings, session_id: str, stream_mode: list[StreamMode] | None
) -> tuple[AgentTaskResult, list[Any]]:
    """The reporter's result and events for one question asked with ``stream_mode``."""
    async with running_worker(LangGraphWorker(graphs.build_reporter, "lg-reporter"), settings):
        sent = await client.send_message(
            "lg-reporter", session_id, "the harbour", stream_mode=stream_mode
        )
        result = await client.wait_for_result(sent.message_id, timeout=20)
        events = await task_events(client, session_id, sent.message_id)
    assert result.status is AgentState.COMPLETED, result.error
    assert result.content == ANSWER
    nodes = [e.state for e in events if isinstance(e, StateChangeEvent)]
    assert nodes[nodes.index("gather") :][:2] == ["gather", "answer"]  # node starts, always
    return result, events


def modes_of(events: list[Any]) -> list[str]:
    return [e.mode for e in events if isinstance(e, StreamPartEvent)]


async def test_by_default_tokens_are_the_answer_and_custom_writes_are_parts(
    client: GatewayClient, settings: Settings
) -> None:
    _, events = await report(client, settings, "s-default", None)
    assert "".join(chunks(events)) == ANSWER  # no progress JSON inside the answer
    assert len(chunks(events)) == len(ANSWER.split(" "))  # token by token
    assert parts(events, "custom") == PROGRESS
    assert modes_of(events) == ["custom", "custom"]
    assert all(e.namespace == [] for e in events if isinstance(e, StreamPartEvent))


async def test_messages_alone_streams_tokens_and_no_part(
    client: GatewayClient, settings: Settings
) -> None:
    _, events = await report(client, settings, "s-messages", ["messages"])
    assert "".join(chunks(events)) == ANSWER
    assert modes_of(events) == []


async def test_updates_are_what_each_node_wrote_as_plain_json(
    client: GatewayClient, settings: Settings
) -> None:
    _, events = await report(client, settings, "s-updates", ["updates"])
    assert not any(isinstance(e, StreamChunkEvent) for e in events)
    gathered, answered = parts(events, "updates")
    assert gathered == {"gather": {"sources": 2}}
    (message,) = answered["answer"]["messages"]
    assert message["type"] == "ai" and message["content"] == ANSWER
    assert modes_of(events) == ["updates", "updates"]


async def test_values_are_the_whole_state_after_each_step(
    client: GatewayClient, settings: Settings
) -> None:
    _, events = await report(client, settings, "s-values", ["values"])
    assert chunks(events) == []
    values = parts(events, "values")
    assert [[m["type"] for m in v["messages"]] for v in values] == [
        ["human"],
        ["human"],
        ["human", "ai"],
    ]
    assert [v.get("sources") for v in values] == [None, 2, 2]
    assert values[-1]["messages"][0]["content"] == "the harbour"
    assert values[-1]["messages"][1]["content"] == ANSWER


async def test_debug_parts_are_langgraphs_checkpoints_and_tasks(
    client: GatewayClient, settings: Settings
) -> None:
    _, events = await report(client, settings, "s-debug", ["debug", "custom"])
    assert chunks(events) == []
    debug = parts(events, "debug")
    assert {d["type"] for d in debug} == {"checkpoint", "task", "task_result"}
    tasks = [(d["type"], d["payload"]["name"]) for d in debug if d["type"] != "checkpoint"]
    assert tasks == [
        ("task", "gather"),
        ("task_result", "gather"),
        ("task", "answer"),
        ("task_result", "answer"),
    ]
    assert parts(events, "custom") == PROGRESS


async def test_a_subgraphs_parts_carry_its_namespace(
    client: GatewayClient, settings: Settings
) -> None:
    async with running_worker(LangGraphWorker(graphs.build_desk, "lg-desk"), settings):
        sent = await client.send_message("lg-desk", "s-desk", "the harbour")
        result = await client.wait_for_result(sent.message_id, timeout=20)
        events = await task_events(client, "s-desk", sent.message_id)
    assert result.content == ANSWER
    assert "".join(chunks(events)) == ANSWER  # the subgraph's tokens
    custom = [e for e in events if isinstance(e, StreamPartEvent)]
    assert [e.data for e in custom] == PROGRESS
    assert all(len(e.namespace) == 1 and e.namespace[0].startswith("reporter:") for e in custom)


async def test_tool_calls_are_reasoning_chunks_with_messages_and_json_in_updates(
    client: GatewayClient, settings: Settings
) -> None:
    worker = LangGraphWorker(graphs.build_waiter, "lg-waiter")
    async with (
        running_worker(graphs.HelperAgents(), settings, worker_id="helpers"),
        running_worker(worker, settings, worker_id="waiter"),
    ):
        chosen: dict[str, list[StreamMode]] = {
            "s-tools-msg": ["messages"],
            "s-tools-upd": ["updates"],
        }
        events = {}
        for session, mode in chosen.items():
            sent = await client.send_message("lg-waiter", session, "hi", stream_mode=mode)
            result = await client.wait_for_result(sent.message_id, timeout=20)
            assert result.content == "got translator(hi)", result.error
            events[session] = await task_events(client, session, sent.message_id)
    assert chunks(events["s-tools-msg"], "reasoning") == [
        'calling translator({"request": "hi"})',
        "translator -> translator(hi)",
    ]
    assert modes_of(events["s-tools-msg"]) == []
    with_updates = events["s-tools-upd"]
    assert chunks(with_updates, "reasoning") == [] and chunks(with_updates) == []
    messages = [
        m for u in parts(with_updates, "updates") for v in u.values() for m in v["messages"]
    ]
    call, reply, answer = messages
    assert call["type"] == "ai"
    assert call["tool_calls"] == [{"id": "wait-0", "name": "translator", "args": {"request": "hi"}}]
    assert (reply["type"], reply["tool_call_id"], reply["name"]) == ("tool", "wait-0", "translator")
    assert reply["content"] == "translator(hi)"
    assert (answer["type"], answer["content"]) == ("ai", "got translator(hi)")


async def test_worker_processes_stream_what_each_message_chose(
    client: GatewayClient, workers: Any
) -> None:
    await workers(reporter="ReporterWorker")
    chosen: dict[str, list[StreamMode] | None] = {
        "s-proc-default": None,
        "s-proc-state": ["updates", "values"],
        "s-proc-custom": ["custom"],
    }
    sends = {
        session: await client.send_message("lg-reporter", session, "the harbour", stream_mode=mode)
        for session, mode in chosen.items()
    }
    events = {}
    for session, sent in sends.items():
        result = await client.wait_for_result(sent.message_id, timeout=30)
        assert result.status is AgentState.COMPLETED, result.error
        assert result.content == ANSWER
        events[session] = await task_events(client, session, sent.message_id)

    default = events["s-proc-default"]
    assert "".join(chunks(default)) == ANSWER  # the answer alone
    assert modes_of(default) == ["custom", "custom"]
    assert parts(default, "custom") == PROGRESS

    state = events["s-proc-state"]
    assert not any(isinstance(e, StreamChunkEvent) for e in state)
    assert modes_of(state) == ["values", "updates", "values", "updates", "values"]
    assert parts(state, "updates")[0] == {"gather": {"sources": 2}}
    assert parts(state, "values")[-1]["messages"][-1]["content"] == ANSWER

    custom = events["s-proc-custom"]
    assert not any(isinstance(e, StreamChunkEvent) for e in custom)
    assert modes_of(custom) == ["custom", "custom"]
    assert parts(custom, "custom") == PROGRESS


async def test_a_resumed_run_streams_as_its_tasks_message_chose(
    client: GatewayClient, workers: Any
) -> None:
    await workers(confirm="ConfirmingReporterWorker")
    chosen: dict[str, list[StreamMode] | None] = {"s-resume-custom": ["custom"], "s-resume": None}
    sends = {
        session: await client.send_message(
            "lg-confirming-reporter", session, "the harbour", stream_mode=mode
        )
        for session, mode in chosen.items()
    }
    events = {}
    for session, sent in sends.items():
        asked = await client.wait_for_result(sent.message_id, timeout=30)
        assert asked.status is AgentState.WAITING_USER, asked.error
        await client.resume(sent.message_id, session, content="yes")  # no stream_mode in it
        result = await client.wait_for_result(sent.message_id, timeout=30)
        assert result.status is AgentState.COMPLETED, result.error
        assert result.content == ANSWER
        events[session] = await task_events(client, session, sent.message_id)
    for session in chosen:
        assert parts(events[session], "custom") == [*PROGRESS, {"progress": "confirmed: yes"}]
    assert chunks(events["s-resume-custom"]) == []  # the resumed run too: custom only
    assert "".join(chunks(events["s-resume"])) == ANSWER  # the default, after the resume too
