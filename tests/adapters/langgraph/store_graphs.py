"""A graph that remembers facts about a user in the long-term store (``get_store()``) and
recalls them in any thread: served with ``BYAI_LANGGRAPH_STORE_URL`` by ``test_store``."""

from typing import Any, TypedDict

from by_framework_langgraph import langgraph_worker
from langgraph.config import get_store
from langgraph.graph import END, START, StateGraph


class Memo(TypedDict, total=False):
    user: str
    remember: str
    recalled: list[str]
    fetched: str | None


async def memo(state: Memo) -> Memo:
    """With ``remember``: stores it under the user; always: every fact the user has, by search,
    and the one stored as "favourite" by key."""
    store = get_store()
    namespace = ("memories", state["user"])
    if state.get("remember"):
        await store.aput(namespace, "favourite", {"fact": state["remember"]})
    items = await store.asearch(namespace)
    item = await store.aget(namespace, "favourite")
    return {
        "recalled": [found.value["fact"] for found in items],
        "fetched": item.value["fact"] if item is not None else None,
    }


def build_memo(checkpointer: Any) -> Any:
    builder = StateGraph(Memo)
    builder.add_node("memo", memo)
    builder.add_edge(START, "memo")
    builder.add_edge("memo", END)
    return builder.compile(checkpointer=checkpointer)


MemoWorker = langgraph_worker(build_memo, agent_type="lg-memo")
