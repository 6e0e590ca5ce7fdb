"""A photo resizer (it only pretends): many replicas of this one agent type share the work."""

import asyncio
from typing import Any

from by_framework import AgentContext, GatewayWorker


class ResizerAgent(GatewayWorker):
    def get_agent_types(self) -> list[str]:
        return ["resizer"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        photo = str(command.content)
        await context.emit_chunk(f"{context.worker_id} resizing {photo}")
        await asyncio.sleep(0.2)  # the work
        return {"status": "completed", "content": {"photo": photo, "worker": context.worker_id}}
