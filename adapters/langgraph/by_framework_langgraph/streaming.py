"""A graph run's stream, as the session's events: tokens become text chunks, tool calls and tool
results reasoning chunks, node starts states; the parts of the other stream modes a message asks
for (``stream_mode``) become ``StreamPartEvent``s of their mode, custom writes in the default
too (never text: a client joining the text chunks gets the answer alone)."""

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langgraph.types import Interrupt

from by_framework import AgentContext, StreamPartEvent

DEFAULT_MODES = ("messages", "custom")
"""What a run streams when its message does not choose (``stream_mode`` None)."""
STREAM_MODE_METADATA = "by_framework_stream_mode"
"""Checkpoint metadata key: the task's ``stream_mode`` as a JSON string (LangGraph keeps only
scalar metadata values), read back by its resumed runs, whose command carries none."""
TOOL_RESULT_CHARS = 2_000
"""Longer tool results are cut in their reasoning chunk (the model still gets them whole)."""


def graph_modes(stream_mode: Sequence[str] | None) -> list[str]:
    """The modes to ask LangGraph for: those chosen, "tasks" for the node starts, and "updates"
    for the reasoning lines that come with "messages"."""
    modes = {"tasks", *(DEFAULT_MODES if stream_mode is None else stream_mode)}
    if "messages" in modes:
        modes.add("updates")
    return sorted(modes)


def stored_stream_mode(metadata: Mapping[str, Any]) -> list[str] | None:
    """The ``stream_mode`` of the task whose run wrote a checkpoint with this metadata."""
    stream_mode: list[str] | None = json.loads(metadata.get(STREAM_MODE_METADATA) or "null")
    return stream_mode


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


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON: messages as {type, content, ...}, interrupts as {id, value},
    anything else that is not JSON as its text."""
    if isinstance(value, BaseMessage):
        return message_json(value)
    if isinstance(value, Interrupt):
        return {"id": value.id, "value": jsonable(value.value)}
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return to_text(value)


def message_json(message: BaseMessage) -> dict[str, Any]:
    """A message as {type, content}, with its id, an AI message's tool calls and a tool
    message's call id and name when it has them."""
    out: dict[str, Any] = {"type": message.type, "content": jsonable(message.content)}
    if message.id is not None:
        out["id"] = message.id
    if isinstance(message, AIMessage) and message.tool_calls:
        out["tool_calls"] = [
            {"id": call["id"], "name": call["name"], "args": jsonable(call["args"])}
            for call in message.tool_calls
        ]
    if isinstance(message, ToolMessage):
        out["tool_call_id"] = message.tool_call_id
        out["name"] = message.name
    return out


class StreamMapper:
    """Turns ``astream(..., stream_mode=graph_modes(stream_mode), version="v2",
    subgraphs=True)`` parts into the task's events. One per graph run.

    ``stream_mode`` None: text and reasoning chunks, and custom parts. A list: chunks only if
    it has "messages", parts of each other mode it names. Node starts always."""

    def __init__(self, context: AgentContext, stream_mode: Sequence[str] | None) -> None:
        self.context = context
        chosen = set(DEFAULT_MODES if stream_mode is None else stream_mode)
        self._chunks = "messages" in chosen
        self._parts = chosen - {"messages"}
        self._state: str | None = None
        self._seen: set[str] = set()  # messages already told (a subgraph's and its parent's)

    async def handle(self, part: dict[str, Any]) -> None:
        kind, data = part["type"], part["data"]
        if kind == "tasks":
            if not part.get("ns") and "input" in data and data["name"] != self._state:
                self._state = data["name"]  # a node starts
                await self.context.emit_state(data["name"], detail="langgraph node")
            return
        if kind in self._parts:
            namespace = list(part.get("ns") or ())
            await self.context.emit(
                StreamPartEvent(mode=kind, data=jsonable(data), namespace=namespace)
            )
        if not self._chunks:
            return
        if kind == "messages":
            message, _metadata = data
            if isinstance(message, AIMessage) and (text := message_text(message)):
                await self.context.emit_chunk(text)
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
