"""Plugin: the class users subclass to add agent configs and lifecycle hooks to workers."""

from typing import Any

from by_framework.plugins.model import AgentConfig, PluginBuildContext, PluginManifest

HOOKS = (
    "on_task_start",
    "on_task_complete",
    "on_task_error",
    "on_task_cancel",
    "on_call_agent_start",
    "on_call_agent_complete",
    "on_worker_startup",
    "on_worker_shutdown",
)


class Plugin:
    """Override what you need; every hook defaults to doing nothing (and is then never called).

    Hooks run under ``plugin_hook_timeout_seconds``: one that raises or times out is logged and
    counted and never fails the task. Keep hooks async all the way down: a hook blocking the
    event loop blocks the worker, and no timeout can interrupt it.
    """

    def __init__(self, manifest: PluginManifest) -> None:
        if not isinstance(manifest, PluginManifest):
            raise TypeError(f"Plugin takes a PluginManifest, not {type(manifest).__name__}")
        self.manifest = manifest

    @property
    def plugin_id(self) -> str:
        return self.manifest.plugin_id

    async def register_agent_configs(self, ctx: PluginBuildContext) -> list[AgentConfig]:
        """The agent configs this plugin provides; called at start-up and after each reload."""
        return []

    async def reload(self) -> None:
        """Refresh whatever the plugin reads (files, settings) before its configs are rebuilt."""

    async def on_task_start(self, context: Any) -> None: ...

    async def on_task_complete(self, context: Any, result: Any) -> None: ...

    async def on_task_error(self, context: Any, error: BaseException) -> None: ...

    async def on_task_cancel(self, context: Any, reason: str) -> None: ...

    async def on_call_agent_start(self, context: Any, target: str, content: Any) -> None: ...

    async def on_call_agent_complete(self, context: Any, target: str, result: Any) -> None: ...

    async def on_worker_startup(self) -> None: ...

    async def on_worker_shutdown(self) -> None: ...
