"""A thread's state read, paged and changed from a process that has no checkpointer (this test
holds only Redis): the LangGraph workers answer from their PostgreSQL checkpointer."""

from typing import Any

import pytest

from by_framework import GatewayClient, QueryError

AGENT = "lg-chat"
SESSION = "s-state"


async def say(client: GatewayClient, text: str) -> str:
    sent = await client.send_message(AGENT, SESSION, text)
    result = await client.wait_for_result(sent.message_id, timeout=30)
    answer: str = result.content
    return answer


async def test_state_history_update_and_fork_from_a_process_without_a_checkpointer(
    client: GatewayClient, workers: Any
) -> None:
    await workers(**{"chat-a": "ChatWorker", "chat-b": "ChatWorker"})
    assert await say(client, "hello") == "turn 1: you said hello"
    assert await say(client, "again") == "turn 2: you said again"

    state = await client.get_state(SESSION, AGENT)
    assert state["thread_id"] == f"{SESSION}:{AGENT}"
    assert state["next"] == []
    texts = [m["content"] for m in state["values"]["messages"]]
    assert texts == ["hello", "turn 1: you said hello", "again", "turn 2: you said again"]

    first = await client.get_history(SESSION, AGENT, limit=3)
    assert first[0]["checkpoint_id"] == state["checkpoint_id"]  # newest first
    rest = await client.get_history(SESSION, AGENT, limit=50, before=first[-1]["checkpoint_id"])
    every = first + rest
    assert len({c["checkpoint_id"] for c in every}) == len(every)  # pages do not overlap
    assert every[-1]["parent_checkpoint_id"] is None  # down to the thread's first

    # Fork at the end of the first turn: the next message continues from there.
    after_turn_1 = next(
        c for c in every if c["next"] == [] and len(c["values"].get("messages", [])) == 2
    )
    fork = await client.update_state(
        SESSION, AGENT, {"messages": []}, checkpoint_id=after_turn_1["checkpoint_id"]
    )
    assert fork["checkpoint_id"] != state["checkpoint_id"]
    assert await say(client, "instead") == "turn 2: you said instead"

    # An update through the state's reducer, as a node would write it.
    await client.update_state(
        SESSION, AGENT, {"messages": [{"role": "user", "content": "noted"}]}, as_node="model"
    )
    texts = [m["content"] for m in (await client.get_state(SESSION, AGENT))["values"]["messages"]]
    assert texts[-1] == "noted"
    with pytest.raises(QueryError, match="limit must be a whole number"):
        await client.get_history(SESSION, AGENT, limit=0)
