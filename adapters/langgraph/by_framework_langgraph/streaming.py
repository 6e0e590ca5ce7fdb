"""A graph run's stream, as the session's events: tokens and custom writes become chunks, node
starts become states, tool calls and tool results become reasoning chunks."""

import json
from collections.abc import Iterator
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from by_framework import AgentContext

STREAM_MODES = ["messages", "updates", "custom", "tasks"]
TOOL_RESULT_CHARS = 2_000
"""Longer tool results are cut in their reasoning chunk (the model still gets them whole)."""


def to_text(value: Any) -> str:
    """A chunk's text: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def message_text(message: BaseMessage) -> str:
    """The text of a message (its text blocks, without tool calls or reasoning blocks)."""
    return str(message.text)


def messages_in(update: Any) -> Iterator[BaseMessage]:
    """The messages a node's update writes, whatever the state's shape."""
    if isinstance(update, BaseMessage):
        yield update
    elif isinstance(update, dict):
        for value in update.values():
            yield from messages_in(value)
    elif isinstance(update, list | tuple):
        for item in update:
            yield from messages_in(item)


class StreamMapper:
    """Turns ``astream(..., stream_mode=STREAM_MODES, version="v2", subgraphs=True)`` parts into
    the task's events. One per graph run."""

    def __init__(self, context: AgentContext) -> None:
        self.context = context
        self._state: str | None = None
        self._seen: set[str] = set()  # messages already told (a subgraph's and its parent's)

    async def handle(self, part: dict[str, Any]) -> None:
        kind, data = part["type"], part["data"]
        if kind == "messages":
            message, _metadata = data
            if isinstance(message, AIMessage) and (text := message_text(message)):
                await self.context.emit_chunk(text)
        elif kind == "custom":
            await self.context.emit_chunk(to_text(data))
        elif kind == "tasks":
            if not part.get("ns") and "input" in data and data["name"] != self._state:
                self._state = data["name"]  # a node starts
                await self.context.emit_state(data["name"], detail="langgraph node")
        elif kind == "updates":
            for node, update in data.items():
                if node.startswith("__"):  # __interrupt__: handled when the run ends
                    continue
                for message in messages_in(update):
                    await self._tell(message)

    async def _tell(self, message: BaseMessage) -> None:
        if message.id is not None:
            if message.id in self._seen:
                return
            self._seen.add(message.id)
        if isinstance(message, AIMessage):
            for call in message.tool_calls:
                await self.context.emit_chunk(
                    f"calling {call['name']}({to_text(call['args'])})", kind="reasoning"
                )
        elif isinstance(message, ToolMessage):
            text = to_text(message.content)
            if len(text) > TOOL_RESULT_CHARS:
                text = text[:TOOL_RESULT_CHARS] + "…"
            status = " (error)" if message.status == "error" else ""
            await self.context.emit_chunk(f"{message.name}{status} -> {text}", kind="reasoning")
