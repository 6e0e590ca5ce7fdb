"""Plugins: agent configs and lifecycle hooks that extend workers without touching them."""

from by_framework.plugins.base import Plugin
from by_framework.plugins.loading import collect_plugins
from by_framework.plugins.model import AgentConfig, PluginBuildContext, PluginManifest
from by_framework.plugins.registry import PluginRegistry

__all__ = [
    "AgentConfig",
    "Plugin",
    "PluginBuildContext",
    "PluginManifest",
    "PluginRegistry",
    "collect_plugins",
]
