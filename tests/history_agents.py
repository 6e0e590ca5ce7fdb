"""Agents of the history tests: they report the session history their task saw."""

import os
from pathlib import Path
from typing import Any

from by_framework import (
    AgentContext,
    AgentTaskResult,
    AskUserEvent,
    GatewayWorker,
    ResumeCommand,
)


async def seen(context: AgentContext) -> list[list[Any]]:
    """The session's history as this task sees it: [role, kind, message id] per turn."""
    return [
        [m.role, m.metadata.get("kind"), m.metadata.get("message_id")]
        for m in await context.history.list()
    ]


class HistoryAgent(GatewayWorker):
    """Agent type "historian". Content "ask" asks the user; "fail" raises; {"call": x} calls a
    historian with x; {"crash_once": path} kills its process the first time (path marks it);
    anything else is answered. Every answer carries the history the task saw."""

    def get_agent_types(self) -> list[str]:
        return ["historian"]

    async def process_command(self, command: Any, context: AgentContext) -> Any:
        if isinstance(command, ResumeCommand):
            return {"content": {"answer": command.content, "seen": await seen(context)}}
        content = command.content
        if content == "ask":
            return await context.ask_user(
                AskUserEvent(prompt="Favourite colour?", options=["red", "blue"])
            )
        if content == "fail":
            raise RuntimeError("asked to fail")
        if isinstance(content, dict) and "call" in content:
            reply = await context.call_agent("historian", content["call"])
            assert isinstance(reply, AgentTaskResult)
            return {"content": {"reply": reply.content, "seen": await seen(context)}}
        if isinstance(content, dict) and "crash_once" in content:
            marker = Path(content["crash_once"])
            if not marker.exists():
                marker.touch()
                os._exit(17)
        return {"content": {"seen": await seen(context), "pid": os.getpid()}}
