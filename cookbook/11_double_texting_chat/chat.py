"""A ``chat`` agent that answers slowly: each run takes the session's turn as its message's
``multitask_strategy`` says, writes the message to the session's transcript, thinks for two
seconds, and answers with the transcript so far.

The transcript is kept in this worker's memory (one worker): a run that supersedes another with
``rollback`` removes that run's message from it first; ``interrupt`` keeps it.
"""

import asyncio
from collections import defaultdict
from typing import Any

from by_framework import AgentContext, GatewayWorker

THINKING_STEPS = 20
STEP_SECONDS = 0.1

transcripts: defaultdict[str, list[tuple[str, str]]] = defaultdict(list)
"""Per session: (message id, what the user said), in order."""


class ChatWorker(GatewayWorker):
    def get_agent_types(self) -> list[str]:
        return ["chat"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        async with context.session_turn(command.multitask_strategy) as turn:
            transcript = transcripts[context.session_id]
            if turn.superseded is not None and command.multitask_strategy == "rollback":
                transcript[:] = [said for said in transcript if said[0] != turn.superseded]
            transcript.append((context.message_id, str(command.content)))
            await context.emit_chunk(f"thinking about {command.content!r}")
            for _ in range(THINKING_STEPS):
                if context.cancelled:  # interrupted: end now (the task ends CANCELLED)
                    return {"status": "completed", "content": "stopped"}
                await asyncio.sleep(STEP_SECONDS)
            heard = " / ".join(said for _, said in transcript)
            return {"status": "completed", "content": f"heard: {heard}"}
