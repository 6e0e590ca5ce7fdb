"""The agent behind the web chat: it streams its answer word by word, as a model streams tokens,
and asks the user a question when a message starts with ``/ask``.

- ``hello there`` → streams ``You said: hello there``, one chunk per word, a little apart (long
  enough to reload the page in the middle of the answer and watch it carry on);
- ``/ask What is your name?`` → asks the user that question (``ask_user``): the task is suspended,
  holding no worker; the page shows the question and posts the answer to ``/resume``, and the
  resumed run streams ``You answered: <answer>``.
"""

import asyncio
from typing import Any

from by_framework import (
    AgentContext,
    AgentTaskResult,
    AskUserEvent,
    GatewayWorker,
    ResumeCommand,
)

WORD_DELAY = 0.15
"""Seconds between two chunks of an answer."""


class ChatAgent(GatewayWorker):
    def get_agent_types(self) -> list[str]:
        return ["chat"]

    async def process_command(
        self, command: Any, context: AgentContext
    ) -> AgentTaskResult | dict[str, Any]:
        text = str(command.content).strip()
        if isinstance(command, ResumeCommand):
            return await self._stream(context, f"You answered: {text}")
        if text.startswith("/ask "):
            return await context.ask_user(AskUserEvent(prompt=text.removeprefix("/ask ").strip()))
        return await self._stream(context, f"You said: {text}")

    @staticmethod
    async def _stream(context: AgentContext, answer: str) -> dict[str, Any]:
        first, *rest = answer.split(" ")
        await context.emit_chunk(first)
        for word in rest:
            await asyncio.sleep(WORD_DELAY)
            await context.emit_chunk(f" {word}")
        return {"status": "completed", "content": answer}
