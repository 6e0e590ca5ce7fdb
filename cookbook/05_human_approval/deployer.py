"""A deployer that asks a human before it deploys.

The first run plans and asks (``ask_user``): the task is suspended, holding no worker and no
slot, for as long as the human takes. The answer comes back as a ``ResumeCommand``, on any worker
of this agent type; the resumed run finds the release it was asked for in the session history.
"""

from typing import Any

from by_framework import AgentContext, AgentTaskResult, AskUserEvent, GatewayWorker, ResumeCommand

SERVERS = ("web-1", "web-2", "web-3")


class DeployerAgent(GatewayWorker):
    def get_agent_types(self) -> list[str]:
        return ["deployer"]

    async def process_command(
        self, command: Any, context: AgentContext
    ) -> AgentTaskResult | dict[str, Any]:
        if isinstance(command, ResumeCommand):
            return await self._answered(command, context)
        release = str(command.content)
        await context.emit_chunk(f"plan: roll {release} out to {', '.join(SERVERS)}")
        return await context.ask_user(
            AskUserEvent(prompt=f"Deploy {release} to production?", options=["yes", "no"])
        )

    async def _answered(self, command: ResumeCommand, context: AgentContext) -> dict[str, Any]:
        release = await self._release_asked_for(context)
        approver = command.reply_data.get("approver", "someone")
        if str(command.content).strip().lower() not in {"y", "yes"}:
            return {"status": "completed", "content": f"{release} not deployed: {approver} said no"}
        for server in SERVERS:
            await context.emit_chunk(f"{server}: {release} up")
        return {"status": "completed", "content": f"{release} deployed, approved by {approver}"}

    @staticmethod
    async def _release_asked_for(context: AgentContext) -> str:
        """The content of this task's first message, as the worker recorded it in the history."""
        async for turn in context.history:
            if turn.metadata.get("message_id") == context.message_id and (
                turn.metadata.get("kind") == "message"
            ):
                return str(turn.content)
        raise LookupError(
            "the request is not in this worker's history: with several workers, give them a "
            "shared history store (BYF_HISTORY_URL=postgresql://...)"
        )
