"""A task and the tree of its sub-tasks, from the execution records of its session."""

from dataclasses import dataclass, field

from by_framework.ports import TaskStore
from by_framework.protocol.records import TaskRecord


@dataclass(slots=True)
class TaskNode:
    message_id: str
    record: TaskRecord | None
    """None for a child whose record expired (``record_ttl``)."""
    children: list["TaskNode"] = field(default_factory=list)


async def task_tree(store: TaskStore, message_id: str) -> TaskNode | None:
    """The task with its children, recursively, in dispatch order; None if it has no record."""
    record = await store.get(message_id)
    if record is None:
        return None
    records = {r.message_id: r for r in await store.list_session(record.session_id)}
    records[message_id] = record
    root = TaskNode(message_id, record)
    seen = {message_id}
    stack = [root]
    while stack:  # a children list never loops back, but a damaged record must not hang this
        node = stack.pop()
        for child_id in node.record.children if node.record is not None else ():
            if child_id in seen:
                continue
            seen.add(child_id)
            child = TaskNode(child_id, records.get(child_id))
            node.children.append(child)
            stack.append(child)
    return root
