"""A long-term store shared by replicas (``store_url``): a fact one worker process stores in one
thread is recalled by another worker process in another thread."""

from typing import Any

from by_framework_langgraph import LangGraphWorker
from by_framework_langgraph.worker import CHECKPOINTER_URL_ENV, STORE_URL_ENV
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from by_framework import AgentState, GatewayClient
from tests.adapters.langgraph.store_graphs import build_memo

MEMO = "tests.adapters.langgraph.store_graphs.MemoWorker"


async def test_a_fact_stored_on_one_worker_is_recalled_on_another_in_another_thread(
    client: GatewayClient, workers: Any, checkpointer_url: str, monkeypatch: Any
) -> None:
    monkeypatch.setenv(STORE_URL_ENV, checkpointer_url)  # the test's schema holds both
    await workers(**{"memo-a": MEMO, "memo-b": MEMO})
    told = await client.send_message(
        "lg-memo", "s-memo-1", {"user": "ann", "remember": "tea"}, target_worker_id="memo-a"
    )
    first = await client.wait_for_result(told.message_id, timeout=30)
    assert first.status is AgentState.COMPLETED, first.error
    assert first.content["recalled"] == ["tea"]
    asked = await client.send_message(
        "lg-memo", "s-memo-2", {"user": "ann"}, target_worker_id="memo-b"
    )
    second = await client.wait_for_result(asked.message_id, timeout=30)
    assert second.status is AgentState.COMPLETED, second.error
    assert second.content == {"user": "ann", "recalled": ["tea"], "fetched": "tea"}
    assert second.data["thread_id"] != first.data["thread_id"]  # another thread
    records = [await client.get_task(sent.message_id) for sent in (told, asked)]
    assert [r.worker_id for r in records if r is not None] == ["memo-a", "memo-b"]
    other = await client.send_message("lg-memo", "s-memo-3", {"user": "bob"})
    stranger = await client.wait_for_result(other.message_id, timeout=30)
    assert stranger.content == {"user": "bob", "recalled": [], "fetched": None}


async def test_a_graph_keeps_its_own_store_unless_the_worker_is_given_one(
    monkeypatch: Any,
) -> None:
    monkeypatch.delenv(STORE_URL_ENV, raising=False)
    monkeypatch.delenv(CHECKPOINTER_URL_ENV, raising=False)
    own, given = InMemoryStore(), InMemoryStore()
    compiled = build_memo(InMemorySaver()).copy(update={"store": own})
    kept = LangGraphWorker(compiled, "lg-memo")
    replaced = LangGraphWorker(compiled, "lg-memo", store=given)
    built = LangGraphWorker(build_memo, "lg-memo", store=given)
    none = LangGraphWorker(build_memo, "lg-memo")
    for worker in (kept, replaced, built, none):
        await worker.on_startup()
        await worker.on_shutdown()
    assert kept.graph.store is own
    assert replaced.graph.store is given
    assert built.graph.store is given  # a builder's graph gets the store attached
    assert none.graph.store is None  # no store is made up
