"""The greeter: a fake model that follows its prompt, which a plugin provides. A task keeps the
config it started with for its whole run, and says which version that was."""

from typing import Any

from by_framework import AgentContext, GatewayWorker


class GreeterAgent(GatewayWorker):
    def get_agent_types(self) -> list[str]:
        return ["greeter"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        config = context.get_agent_config("greeter")
        if config is None:
            raise LookupError("no plugin configures the greeter: start with --plugin-dir plugins")
        greeting = config.prompts["greeting"].format(name=command.content)
        return {"status": "completed", "content": f"{greeting} (config v{context.config_version})"}
