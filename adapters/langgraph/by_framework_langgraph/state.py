"""A thread's state for clients on other machines (``client.get_state``, ``get_history``,
``update_state``): LangGraph's state snapshots as plain JSON, read and written by the worker
that holds the checkpointer."""

from typing import Any

from langgraph.types import StateSnapshot

from by_framework import QueryError
from by_framework.backends import GET_HISTORY, GET_STATE, UPDATE_STATE
from by_framework_langgraph.streaming import jsonable

HISTORY_PAGE_MAX = 200


def snapshot_json(snapshot: StateSnapshot) -> dict[str, Any]:
    """A checkpoint of a thread as a client reads it."""
    parent = snapshot.parent_config or {}
    return {
        "values": jsonable(snapshot.values),
        "next": list(snapshot.next),
        "checkpoint_id": snapshot.config["configurable"].get("checkpoint_id"),
        "parent_checkpoint_id": parent.get("configurable", {}).get("checkpoint_id"),
        "created_at": snapshot.created_at,
        "metadata": jsonable(dict(snapshot.metadata or {})),
        "interrupts": [
            {"id": interrupt.id, "value": jsonable(interrupt.value)}
            for interrupt in snapshot.interrupts
        ],
    }


async def answer(graph: Any, thread_id: str, name: str, args: dict[str, Any]) -> Any:
    """The answer to a client's question ``name`` about thread ``thread_id`` of ``graph``."""
    config: dict[str, Any] = {"configurable": {"thread_id": thread_id}}
    if name == GET_STATE:
        return {"thread_id": thread_id, **snapshot_json(await graph.aget_state(config))}
    if name == GET_HISTORY:
        limit = args.get("limit", 20)
        if not isinstance(limit, int) or not 0 < limit <= HISTORY_PAGE_MAX:
            raise QueryError(f"limit must be a whole number from 1 to {HISTORY_PAGE_MAX}")
        before = args.get("before")
        earlier = (
            None
            if before is None
            else {"configurable": {**config["configurable"], "checkpoint_id": before}}
        )
        return [
            snapshot_json(snapshot)
            async for snapshot in graph.aget_state_history(config, limit=limit, before=earlier)
        ]
    if name == UPDATE_STATE:
        values = args.get("values")
        if not isinstance(values, dict):
            raise QueryError("values must be an object: the state's keys and what to write")
        if args.get("checkpoint_id") is not None:  # a fork: on top of that checkpoint
            config["configurable"]["checkpoint_id"] = args["checkpoint_id"]
        written = await graph.aupdate_state(config, values, as_node=args.get("as_node"))
        return {"thread_id": thread_id, "checkpoint_id": written["configurable"]["checkpoint_id"]}
    raise QueryError(
        f"a LangGraph worker answers {GET_STATE}, {GET_HISTORY} and {UPDATE_STATE}, not {name!r}"
    )
