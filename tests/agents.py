"""Agents the tests run, in-process and in worker processes."""

import asyncio
import os
from typing import Any

from by_framework import AgentContext, ArtifactEvent, GatewayWorker


class EchoAgent(GatewayWorker):
    """Streams its input back; content {"sleep": s} makes it take s seconds first."""

    def get_agent_types(self) -> list[str]:
        return ["echo"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        content = command.content
        if isinstance(content, dict) and "sleep" in content:
            await asyncio.sleep(content["sleep"])
        await context.emit_chunk(f"echo: {content}")
        return {"status": "completed", "content": content, "data": {"pid": os.getpid()}}


class ShowcaseAgent(GatewayWorker):
    """Uses every part of the context: chunks, reasoning, states, artifacts, workspace."""

    def get_agent_types(self) -> list[str]:
        return ["showcase", "showcase-b"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        if isinstance(command.content, dict) and "sleep" in command.content:
            await asyncio.sleep(command.content["sleep"])
            return {"status": "completed", "content": command.content}
        if command.content == "fail":
            raise RuntimeError("asked to fail")
        if command.content == "unserializable":
            return {"status": "completed", "content": object()}
        await context.emit_state("analyzing", detail="step 1")
        await context.emit_chunk("thinking about it", kind="reasoning")
        notes = context.workspace / "notes.txt"
        notes.write_text("scratch")
        for part in ("a", "b", "c"):
            await context.emit_chunk(part)
        await context.emit_artifact(ArtifactEvent(url="https://example.com/out.json"))
        return {
            "status": "COMPLETED",
            "content": {"agent": context.current_agent_id, "workspace": str(context.workspace)},
        }


class CrashAgent(GatewayWorker):
    """Kills its own process on "crash" (a poison command); echoes anything else."""

    def get_agent_types(self) -> list[str]:
        return ["echo"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        if command.content == "crash":
            await context.emit_chunk("about to crash")
            os._exit(17)
        return {"status": "completed", "content": command.content}
