"""The JSON documents the dashboard's pages draw: built from the fleet's read models, the task
records and the dead letters, never from Redis directly."""

from typing import Any

from by_framework.fleet import TaskNode, minute_activity, status_of
from by_framework.ports import FleetSnapshot, FleetView
from by_framework.protocol.codec import ENTRY_FIELD
from by_framework.protocol.dead_letter import DeadLetter

STATUS_WINDOW = 300.0
"""Seconds back the fleet page counts ended tasks (as ``status`` does by default)."""
CHART_MINUTES = 15
"""Minutes the fleet page's chart of throughput and latency spans."""
HEAD_CHARS = 300
"""Characters of a dead letter's entry shown in the list."""


async def read_fleet(view: FleetView) -> dict[str, Any]:
    """The fleet page's document, read now."""
    return fleet_document(await view.snapshot())


def fleet_document(snapshot: FleetSnapshot) -> dict[str, Any]:
    """The ``status --json`` document, with the chart's minutes under ``activity``."""
    document = status_of(snapshot, STATUS_WINDOW).as_dict()
    document["activity"] = [m.as_dict() for m in minute_activity(snapshot, CHART_MINUTES)]
    return document


def tree_document(node: TaskNode) -> dict[str, Any]:
    """A task and its children, recursively: what the tree on the page needs of each."""
    record = node.record
    return {
        "message_id": node.message_id,
        "agent_type": record.agent_type if record is not None else None,
        "status": record.status.value if record is not None else None,
        "children": [tree_document(child) for child in node.children],
    }


def dead_letter_summary(letter: DeadLetter) -> dict[str, Any]:
    """One line of the dead-letter list: why, where from, and the head of the entry."""
    return {
        "id": letter.id,
        "at": letter.at,
        "reason": letter.reason,
        "stream": letter.stream,
        "session_id": letter.session_id,
        "message_id": letter.message_id,
        "head": entry_head(letter),
        "truncated": letter.truncated,
    }


def entry_head(letter: DeadLetter) -> str:
    """The start of the rejected entry: its envelope's text, else its fields."""
    envelope = letter.fields.get(ENTRY_FIELD)
    if envelope is not None:
        text = envelope.decode(errors="backslashreplace")
    else:
        text = " ".join(
            f"{name.decode(errors='backslashreplace')}={value.decode(errors='backslashreplace')}"
            for name, value in letter.fields.items()
        )
    return text if len(text) <= HEAD_CHARS else text[:HEAD_CHARS] + "…"
