"""PluginRegistry: where a worker's plugins are collected before it starts."""

from by_framework.plugins.base import Plugin


class PluginRegistry:
    def __init__(self) -> None:
        self._plugins: dict[str, Plugin] = {}

    def register_bundle(self, plugin: Plugin) -> None:
        """Add a plugin; a second plugin with the same id is an error."""
        if not isinstance(plugin, Plugin):
            raise TypeError(f"register_bundle takes a Plugin, not {type(plugin).__name__}")
        if plugin.plugin_id in self._plugins:
            raise ValueError(f"plugin id {plugin.plugin_id!r} is registered twice")
        self._plugins[plugin.plugin_id] = plugin

    @property
    def plugins(self) -> list[Plugin]:
        return list(self._plugins.values())
