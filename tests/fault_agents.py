"""Agents for the orchestration fault tests, run in real worker processes (through the CLI)."""

import asyncio
import os
import time
from typing import Any

from by_framework import AgentContext, GatewayWorker


class FanoutParent(GatewayWorker):
    """Fans out "n" children round-robin over the "targets" agent types, each child's content
    {"i": index, "sleep": "child_sleep"}; returns the group's ids and results and its pid."""

    def get_agent_types(self) -> list[str]:
        return ["fault-fanout"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        content = command.content
        targets = content["targets"]
        calls = [
            {
                "target_agent_type": targets[i % len(targets)],
                "content": {"i": i, "sleep": content.get("child_sleep", 0)},
            }
            for i in range(content["n"])
        ]
        group = await context.dispatch_group(calls)
        results = await context.collect_group_results(group["task_group_id"])
        return {
            "content": {"ids": group["message_ids"], "results": results},
            "data": {"pid": os.getpid()},
        }


class SlowChild(GatewayWorker):
    """Sleeps content["sleep"] seconds, then answers with its index, its agent type and pid."""

    def get_agent_types(self) -> list[str]:
        return ["fault-child-a", "fault-child-b"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        content = command.content
        await asyncio.sleep(content.get("sleep", 0))
        return {
            "content": {"i": content["i"], "agent": context.current_agent_id},
            "data": {"pid": os.getpid()},
        }


class Stubborn(GatewayWorker):
    """Ignores every cancel: catches CancelledError and keeps running, "echo" content answers at
    once (to show the worker still takes tasks)."""

    def get_agent_types(self) -> list[str]:
        return ["fault-stubborn", "fault-quick"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        if context.current_agent_id == "fault-quick":
            return {"content": "quick"}
        while True:
            try:
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                pass


class LoopBlocker(GatewayWorker):
    """Blocks its event loop with time.sleep(content["block"]), then answers with its pid."""

    def get_agent_types(self) -> list[str]:
        return ["fault-blocker"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        time.sleep(command.content["block"])  # noqa: ASYNC251 (the fault under test)
        return {"content": "unblocked", "data": {"pid": os.getpid()}}


class TurnBlocker(GatewayWorker):
    """Takes its session's turn, then blocks its event loop with time.sleep(content["block"]);
    answers with when it held the turn."""

    def get_agent_types(self) -> list[str]:
        return ["fault-turn-blocker"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        async with context.session_turn():
            took = time.time()
            time.sleep(command.content["block"])  # noqa: ASYNC251 (the fault under test)
            return {"data": {"held": [took, time.time()]}}


class Chatterbox(GatewayWorker):
    """Emits content["chunks"] chunks "0", "1", ... as fast as it can, then ends."""

    def get_agent_types(self) -> list[str]:
        return ["fault-chatter"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        for i in range(command.content["chunks"]):
            await context.emit_chunk(str(i))
        return {"content": "done"}
