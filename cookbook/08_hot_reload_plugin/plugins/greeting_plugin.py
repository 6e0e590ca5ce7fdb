"""A plugin that gives the greeter its prompt: the text of ``greeting.txt`` next to this file,
read at start-up and again on every hot reload."""

from pathlib import Path

from by_framework import AgentConfig, Plugin, PluginBuildContext, PluginManifest

PROMPT_FILE = Path(__file__).resolve().parent / "greeting.txt"


class GreetingPlugin(Plugin):
    def __init__(self) -> None:
        super().__init__(PluginManifest(plugin_id="greeting", version="1.0.0"))
        self.greeting = PROMPT_FILE.read_text().strip()

    async def reload(self) -> None:
        """Runs first on a reload: re-read the file (if this raises, the old config stays)."""
        self.greeting = PROMPT_FILE.read_text().strip()

    async def register_agent_configs(self, ctx: PluginBuildContext) -> list[AgentConfig]:
        return [AgentConfig(agent_id="greeter", prompts={"greeting": self.greeting})]
