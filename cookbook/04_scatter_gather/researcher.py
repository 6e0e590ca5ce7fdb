"""A researcher: looks one topic up in its offline notes (a stand-in for a model with a search
tool) and answers with what it found. A topic it has no notes on fails its task."""

from typing import Any

from by_framework import AgentContext, GatewayWorker

NOTES = {
    "redis streams": "append-only logs; an entry stays pending until it is acknowledged",
    "consumer groups": "each entry goes to one consumer of the group: replicas share the load",
    "lua scripts": "run atomically on the server, so a state change and its ack cannot split",
}


class ResearcherAgent(GatewayWorker):
    def get_agent_types(self) -> list[str]:
        return ["researcher"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        topic = str(command.content).strip().lower()
        await context.emit_chunk(f"looking up {topic!r}", kind="reasoning")
        note = NOTES.get(topic)
        if note is None:
            raise LookupError(f"no sources on {topic!r}")
        return {"status": "completed", "content": note}
