"""Plugins the plugin tests load: the spec's example, and hooks that record or misbehave."""

import asyncio
from typing import Any

from by_framework import (
    AgentConfig,
    AgentContext,
    GatewayWorker,
    Plugin,
    PluginBuildContext,
    PluginManifest,
)


class WeatherPlugin(Plugin):
    """The spec's example, verbatim but for the hooks recording their calls."""

    def __init__(self):
        super().__init__(PluginManifest(plugin_id="weather", version="1.0.0"))
        self.calls: list[tuple[Any, ...]] = []

    async def register_agent_configs(self, ctx: PluginBuildContext) -> list[AgentConfig]:
        return [
            AgentConfig(
                agent_id="weather_agent",
                tools={
                    "get_weather": self._get_weather,
                },
                prompts={"system": "You are a weather assistant."},
            )
        ]

    async def _get_weather(self, city: str) -> dict:
        return {"city": city, "temp": 22, "condition": "sunny"}

    # Lifecycle hooks
    async def on_task_start(self, context: AgentContext):
        self.calls.append(("on_task_start", context.message_id))

    async def on_task_complete(self, context: AgentContext, result):
        self.calls.append(("on_task_complete", context.message_id, result.status.value))

    async def on_task_error(self, context: AgentContext, error: Exception):
        self.calls.append(("on_task_error", context.message_id, repr(error)))

    async def on_task_cancel(self, context: AgentContext, reason: str):
        self.calls.append(("on_task_cancel", context.message_id, reason))

    async def on_call_agent_start(self, context: AgentContext, target: str, content):
        self.calls.append(("on_call_agent_start", context.message_id, target, content))

    async def on_call_agent_complete(self, context: AgentContext, target: str, result):
        self.calls.append(("on_call_agent_complete", context.message_id, target, result.content))

    async def on_worker_startup(self):
        self.calls.append(("on_worker_startup",))

    async def on_worker_shutdown(self):
        self.calls.append(("on_worker_shutdown",))


class WeatherAgent(GatewayWorker):
    """Uses its config's tool and prompt; "ask <type>" calls that agent type first; "fail"
    raises; {"sleep": s} waits (to be cancelled)."""

    def get_agent_types(self) -> list[str]:
        return ["weather_agent", "forecaster"]

    async def process_command(self, command: Any, context: AgentContext) -> Any:
        content = command.content
        if isinstance(content, dict) and "sleep" in content:
            await asyncio.sleep(content["sleep"])
        if content == "fail":
            raise RuntimeError("no weather today")
        if isinstance(content, str) and content.startswith("ask "):
            reply = await context.call_agent(content.removeprefix("ask "), "Paris")
            return {"content": {"forecast": reply.content}}
        config = context.get_agent_config("weather_agent")
        assert config is not None
        weather = await config.tools["get_weather"](str(content))
        return {
            "content": {
                "weather": weather,
                "prompt": config.prompts["system"],
                "version": context.config_version,
                "unknown": context.get_agent_config("nobody"),
            }
        }


class SlowHookPlugin(Plugin):
    def __init__(self) -> None:
        super().__init__(PluginManifest(plugin_id="slow", version="1"))

    async def on_task_start(self, context: AgentContext) -> None:
        await asyncio.sleep(30)


class RaisingHookPlugin(Plugin):
    def __init__(self) -> None:
        super().__init__(PluginManifest(plugin_id="raising", version="1"))

    async def on_task_complete(self, context: AgentContext, result: Any) -> None:
        raise ValueError("hook bug")
