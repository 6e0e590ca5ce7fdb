"""A stand-in for your chat model (``ChatOpenAI(...)``, ``ChatAnthropic(...)``), so that the recipe
runs offline: it reads the conversation and does what a model would — look the weather up, book,
answer — and streams its answer word by word. It decides from the messages alone, so any worker
that picks the conversation up says the same thing."""

import json
from collections.abc import AsyncIterator
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult


class OfflineModel(BaseChatModel):
    @property
    def _llm_type(self) -> str:
        return "offline"

    def bind_tools(self, tools: Any, **kwargs: Any) -> "OfflineModel":
        return self

    def reply(self, messages: list[BaseMessage]) -> AIMessage:
        asked = next(m for m in reversed(messages) if isinstance(m, HumanMessage))
        city = str(asked.content).rstrip(".!?").split()[-1]
        done = {m.name: str(m.content) for m in messages if isinstance(m, ToolMessage)}
        for tool in ("lookup_weather", "book_trip"):
            if tool not in done:
                call = {
                    "name": tool,
                    "args": {"city": city},
                    "id": f"{tool}-1",
                    "type": "tool_call",
                }
                return AIMessage("", tool_calls=[call])
        return AIMessage(
            f"{city} will be {done['lookup_weather']} this weekend: {done['book_trip']}."
        )

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self.reply(messages))])

    async def _astream(
        self, messages: list[BaseMessage], *args: Any, **kwargs: Any
    ) -> AsyncIterator[ChatGenerationChunk]:
        reply = self.reply(messages)
        if reply.tool_calls:
            chunks = [
                {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i}
                for i, c in enumerate(reply.tool_calls)
            ]
            yield ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=chunks))
            return
        for index, word in enumerate(str(reply.content).split(" ")):
            token = word if index == 0 else f" {word}"
            yield ChatGenerationChunk(message=AIMessageChunk(content=token))
