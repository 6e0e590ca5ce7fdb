"""Agents for the orchestration fault tests, run in real worker processes (through the CLI)."""

import asyncio
import os
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
