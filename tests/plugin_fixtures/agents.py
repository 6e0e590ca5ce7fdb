"""A worker whose tasks report the plugin config they run with."""

import asyncio
import inspect
import time
from pathlib import Path
from typing import Any

from by_framework import AgentContext, GatewayWorker

GATE_LIMIT_S = 20.0  # a gate never opened (a failed test) must not hold its worker for ever


class ConfiguredAgent(GatewayWorker):
    """Serves "configured". Content (a dict, every key optional):

    - "sleep": seconds to sleep first; "wait_for": a path to wait for (a gate the test opens);
    - "call": tool name -> argument: calls those tools of the config and returns their output.

    The config is read after the wait, so a task that waited through a reload shows which
    configs it kept. Returns the worker id, the config version, the prompt, the tool names,
    the missing tools and the tools' outputs.
    """

    def get_agent_types(self) -> list[str]:
        return ["configured"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        content = command.content if isinstance(command.content, dict) else {}
        await context.emit_chunk("started")
        if "sleep" in content:
            await asyncio.sleep(content["sleep"])
        if "wait_for" in content:
            gate, deadline = Path(content["wait_for"]), time.monotonic() + GATE_LIMIT_S
            while not gate.exists() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        config = context.get_agent_config(content.get("agent", "configured"))
        answer: dict[str, Any] = {
            "worker": context.worker_id,
            "version": context.config_version,
            "prompt": None,
        }
        if config is not None:
            calls = {}
            for name, argument in content.get("call", {}).items():
                output = config.tools[name](argument)
                calls[name] = await output if inspect.isawaitable(output) else output
            answer.update(
                prompt=config.prompts.get("system"),
                tools=sorted(config.tools),
                missing=list(config.missing_tools),
                skills=config.skills,
                calls=calls,
            )
        return {"status": "completed", "content": answer}
