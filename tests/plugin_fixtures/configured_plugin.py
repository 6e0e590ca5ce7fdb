"""A plugin the process tests copy into a plugin directory (not imported from here).

It builds the agent config "configured" from files next to the copy: its prompt is the text of
prompt.txt (read at start and by ``reload``); a file named "broken" makes
``register_agent_configs`` raise; a prompt of "fail-reload" makes ``reload`` raise, one of
"fail-build" makes ``register_agent_configs`` raise. Its tools: ``shout`` (a method of the
plugin), ``stamp`` (a function of the module) and ``scratch`` (a lambda, which a snapshot cannot
name). The tests rewrite CODE_TAG to tell one version of this code from another.
"""

from pathlib import Path

from by_framework.plugins import AgentConfig, Plugin, PluginBuildContext, PluginManifest

HERE = Path(__file__).resolve().parent
CODE_TAG = "code-1"


def stamp(text: str) -> str:
    return f"{CODE_TAG}: {text}"


class ConfiguredPlugin(Plugin):
    def __init__(self) -> None:
        super().__init__(PluginManifest(plugin_id="configured-plugin", version="1.0"))
        self.prompt = self._read_prompt()

    @staticmethod
    def _read_prompt() -> str:
        return (HERE / "prompt.txt").read_text().strip()

    async def reload(self) -> None:
        prompt = self._read_prompt()
        if prompt == "fail-reload":
            raise ValueError("prompt.txt asks reload to fail")
        self.prompt = prompt

    async def register_agent_configs(self, ctx: PluginBuildContext) -> list[AgentConfig]:
        if (HERE / "broken").exists():
            raise RuntimeError("the broken flag is set")
        if self.prompt == "fail-build":
            raise RuntimeError("prompt.txt asks the build to fail")
        return [
            AgentConfig(
                agent_id="configured",
                prompts={"system": self.prompt},
                tools={"shout": self.shout, "stamp": stamp, "scratch": lambda text: text},
                skills=[{"name": "greet", "built_for": ctx.reason}],
            )
        ]

    async def shout(self, text: str) -> str:
        return f"{self.plugin_id} {CODE_TAG}: {text.upper()}"
