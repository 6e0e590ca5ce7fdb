"""Agents the gateway tests run in worker processes."""

import asyncio
from typing import Any

from by_framework import AgentContext, GatewayWorker


class SlowStreamAgent(GatewayWorker):
    """Streams chunks "0", "1", ... ``{"chunks": n, "delay": s}``: s seconds before each."""

    def get_agent_types(self) -> list[str]:
        return ["slow"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        count, delay = command.content["chunks"], command.content["delay"]
        for i in range(count):
            if context.cancelled:
                return {"status": "cancelled"}
            await asyncio.sleep(delay)
            await context.emit_chunk(str(i))
        return {"status": "completed", "content": count}
