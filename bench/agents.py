"""The agent the benchmark runs in real worker processes."""

from typing import Any

from by_framework import AgentContext, GatewayWorker


class NoopAgent(GatewayWorker):
    """Streams one chunk and completes: what is measured is the engine around it."""

    def get_agent_types(self) -> list[str]:
        return ["bench-noop"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        await context.emit_chunk("x")
        return {"status": "completed"}
