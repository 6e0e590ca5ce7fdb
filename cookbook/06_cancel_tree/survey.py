"""A tree of tasks that runs until stopped: a ``survey`` calls one ``region`` per region, each
region calls one ``probe`` per probe, and every probe streams readings for up to an hour.

One worker class serves the three agent types. Waiting parents hold no slot, so one worker runs
the whole tree.
"""

import asyncio
from typing import Any

from by_framework import AgentContext, AgentState, AgentTaskResult, GatewayWorker

READING_INTERVAL = 0.2
READINGS = 18_000  # an hour's worth


class SurveyWorker(GatewayWorker):
    def get_agent_types(self) -> list[str]:
        return ["survey", "region", "probe"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        content = command.content
        if context.current_agent_id == "survey":  # {region: [probe, ...]}
            return await call_all(context, [("region", probes) for probes in content.values()])
        if context.current_agent_id == "region":  # [probe, ...]
            return await call_all(context, [("probe", name) for name in content])
        return await probe(str(content), context)


async def call_all(context: AgentContext, calls: list[tuple[str, Any]]) -> dict[str, Any]:
    """Call the children together and wait for all of them. Once this task is cancelled, the
    waits end with ``TaskCancelledError``: the task returns, and ends CANCELLED."""
    replies = await asyncio.gather(
        *(context.call_agent(agent_type, content) for agent_type, content in calls),
        return_exceptions=True,
    )
    answered = sum(
        isinstance(reply, AgentTaskResult) and reply.status is AgentState.COMPLETED
        for reply in replies
    )
    return {"status": "completed", "content": f"{answered} of {len(calls)} calls answered"}


async def probe(name: str, context: AgentContext) -> dict[str, Any]:
    """Stream readings until cancelled: ``context.cancelled`` turns true on a graceful cancel."""
    for reading in range(1, READINGS + 1):
        if context.cancelled:
            return {"status": "completed", "content": f"{name}: stopped after {reading - 1}"}
        await context.emit_chunk(f"{name}: reading {reading}")
        await asyncio.sleep(READING_INTERVAL)
    return {"status": "completed", "content": f"{name}: {READINGS} readings"}
