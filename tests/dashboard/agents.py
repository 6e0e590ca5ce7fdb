"""Agents the dashboard tests run in worker processes."""

import asyncio
from typing import Any

from by_framework import (
    AgentContext,
    AskUserEvent,
    GatewayWorker,
    ResumeCommand,
    StreamPartEvent,
)


class GuideAgent(GatewayWorker):
    """Serves "guide". Content ``{"steps": n, "delay": s}``: has a helper (a "guide" sub-task
    with ``{"steps": 0}``) look the way up, streams "step 0", " step 1", ... s seconds apart and
    a custom part ``{"steps": n}``, then asks for the traveller's name and greets them by it."""

    def get_agent_types(self) -> list[str]:
        return ["guide"]

    async def process_command(self, command: Any, context: AgentContext) -> Any:
        if isinstance(command, ResumeCommand):
            for word in ("Hello,", f" {command.content}!"):
                await context.emit_chunk(word)
            return {"status": "completed", "content": f"Hello, {command.content}!"}
        steps, delay = command.content["steps"], command.content.get("delay", 0)
        if steps == 0:
            await context.emit_chunk("the way is clear")
            return {"status": "completed", "content": "clear"}
        await context.call_agent("guide", {"steps": 0})
        for step in range(steps):
            await context.emit_chunk(f"{' ' if step else ''}step {step}")
            await asyncio.sleep(delay)
        await context.emit(StreamPartEvent(mode="custom", data={"steps": steps}))
        return await context.ask_user(AskUserEvent(prompt="What is your name?"))
