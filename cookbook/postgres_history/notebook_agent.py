"""A worker that remembers what a session told it: it reads the session's earlier turns from
``context.history``. Where that history lives is configuration, not code: ``BYF_HISTORY_URL``."""

from typing import Any

from by_framework import AgentContext, GatewayWorker, run_worker


class NotebookAgent(GatewayWorker):
    def get_agent_types(self) -> list[str]:
        return ["notebook"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        earlier = [
            message.content
            async for message in context.history
            if message.role == "user" and message.metadata.get("message_id") != context.message_id
        ]
        reply = f"noted {command.content!r}; before that you told me {earlier}"
        await context.emit_chunk(reply)
        return {"status": "completed", "content": reply}


if __name__ == "__main__":
    # Worker id, Redis and history all come from the environment:
    # BYAI_WORKER_ID, REDIS_URL, BYF_HISTORY_URL (default memory://).
    run_worker(NotebookAgent)
