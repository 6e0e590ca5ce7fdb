"""Config sets: the agent configs of all plugins at one version, built atomically, and their
snapshots as versioned JSON.

A snapshot stores data only: prompts, skills, sub-agents, and for each tool or callback a
reference to code (a method of a plugin, or a function of a plugin's module). Recovering binds
those references to the plugins loaded in this process; nothing is imported or executed from the
snapshot, and a reference whose code is gone is reported in ``missing_tools``, never invented.
"""

import hashlib
import inspect
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from by_framework.plugins.base import Plugin
from by_framework.plugins.model import AgentConfig, PluginBuildContext

SNAPSHOT_VERSION = 1


class PluginBuildError(Exception):
    """A plugin's configs could not be built; the message names the plugin."""


@dataclass(frozen=True, slots=True)
class ConfigSet:
    """Every agent config of one build, under one version number."""

    version: int
    configs: Mapping[str, AgentConfig] = field(default_factory=dict)
    plugins: Mapping[str, str] = field(default_factory=dict)
    """plugin id -> plugin version."""
    recovered: bool = False
    """Built from a snapshot because building from the plugins failed."""


async def build(plugins: Sequence[Plugin], ctx: PluginBuildContext) -> ConfigSet:
    """Every plugin's configs, checked; the set's version is 0 until the store numbers it."""
    configs: dict[str, AgentConfig] = {}
    owners: dict[str, str] = {}
    for plugin in plugins:
        try:
            made = await plugin.register_agent_configs(ctx)
        except Exception as exc:
            raise PluginBuildError(
                f"plugin {plugin.plugin_id}: register_agent_configs raised "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(made, list | tuple) or not all(isinstance(c, AgentConfig) for c in made):
            raise PluginBuildError(
                f"plugin {plugin.plugin_id}: register_agent_configs must return a list of "
                f"AgentConfig, got {made!r}"
            )
        for config in made:
            if config.agent_id in configs:
                raise PluginBuildError(
                    f"agent config {config.agent_id!r} is registered by both "
                    f"{owners[config.agent_id]} and {plugin.plugin_id}"
                )
            configs[config.agent_id] = config
            owners[config.agent_id] = plugin.plugin_id
    try:
        for config in configs.values():
            json.dumps(config.skills)
    except (TypeError, ValueError) as exc:
        raise PluginBuildError(f"agent config skills must be JSON data: {exc}") from exc
    plugin_versions = {plugin.plugin_id: plugin.manifest.version for plugin in plugins}
    return ConfigSet(0, configs, plugin_versions)


# Snapshots


def describe(configs: ConfigSet, plugins: Sequence[Plugin]) -> dict[str, Any]:
    """The config set as JSON data, without its version."""
    return {
        "plugins": dict(configs.plugins),
        "configs": {
            agent_id: {
                "tools": {name: _reference(fn, plugins) for name, fn in config.tools.items()},
                "callbacks": {
                    name: _reference(fn, plugins) for name, fn in config.callbacks.items()
                },
                "prompts": dict(config.prompts),
                "skills": config.skills,
                "sub_agents": list(config.sub_agents),
            }
            for agent_id, config in configs.configs.items()
        },
    }


def fingerprint(configs: ConfigSet, plugins: Sequence[Plugin]) -> str:
    """A hash of the config set's content: equal content, equal fingerprint, on any worker."""
    canonical = json.dumps(describe(configs, plugins), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def to_snapshot(configs: ConfigSet, plugins: Sequence[Plugin]) -> bytes:
    body = {
        "v": SNAPSHOT_VERSION,
        "version": configs.version,
        "saved_at": time.time(),
        **describe(configs, plugins),
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def from_snapshot(raw: bytes, plugins: Sequence[Plugin]) -> ConfigSet:
    """The config set a snapshot describes, bound to the loaded plugins' code.

    Raises ``ValueError`` for a snapshot that is not one (bad JSON, unknown version, wrong shape).
    """
    try:
        body = json.loads(raw)
        if body.get("v") != SNAPSHOT_VERSION:
            raise ValueError(f"snapshot format {body.get('v')!r}, this worker reads 1")
        configs = {}
        for agent_id, data in body["configs"].items():
            tools, missing = _bind_all(data["tools"], plugins)
            callbacks, missing_callbacks = _bind_all(data["callbacks"], plugins)
            configs[agent_id] = AgentConfig(
                agent_id=agent_id,
                tools=tools,
                prompts=data["prompts"],
                skills=data["skills"],
                callbacks=callbacks,
                sub_agents=data["sub_agents"],
                missing_tools=tuple(missing + missing_callbacks),
            )
        return ConfigSet(int(body["version"]), configs, dict(body["plugins"]), recovered=True)
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"unreadable config snapshot: {exc!r}") from None


def _reference(fn: Callable[..., Any], plugins: Sequence[Plugin]) -> dict[str, str]:
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, Plugin) and owner in plugins:
        return {"plugin": owner.plugin_id, "method": fn.__name__}
    return {"module": getattr(fn, "__module__", "") or "", "qualname": fn.__qualname__}


def _bind_all(
    references: dict[str, dict[str, str]], plugins: Sequence[Plugin]
) -> tuple[dict[str, Callable[..., Any]], list[str]]:
    bound, missing = {}, []
    for name, reference in references.items():
        fn = _bind(reference, plugins)
        if fn is None:
            missing.append(name)
        else:
            bound[name] = fn
    return bound, missing


def _bind(reference: dict[str, str], plugins: Sequence[Plugin]) -> Callable[..., Any] | None:
    """The loaded code a reference names, or None. A reference is a name looked up in a loaded
    plugin's own tools (see ``_own_methods`` and ``_own_functions``), never a path walked
    attribute by attribute: a snapshot rewritten in Redis to name ``os.system`` binds nothing."""
    if "method" in reference:
        for plugin in plugins:
            if plugin.plugin_id == reference["plugin"]:
                return _own_methods(plugin).get(reference["method"])
        return None
    module = reference.get("module")
    if module not in {type(plugin).__module__ for plugin in plugins}:
        return None
    return _own_functions(module).get(reference.get("qualname", ""))


def _own_methods(plugin: Plugin) -> dict[str, Callable[..., Any]]:
    """The methods the plugin's own classes define, bound: not Plugin's API (hooks,
    ``register_agent_configs``, ``reload``), not dunders, nothing inherited from elsewhere."""
    names = {
        name
        for cls in type(plugin).__mro__
        if issubclass(cls, Plugin) and cls is not Plugin
        for name, value in vars(cls).items()
        if inspect.isfunction(value) and not name.startswith("__") and not hasattr(Plugin, name)
    }
    return {name: getattr(plugin, name) for name in names}


def _own_functions(module_name: str) -> dict[str, Callable[..., Any]]:
    """The functions a plugin's module defines at its top level, by name; not what it imports."""
    module = sys.modules.get(module_name)
    if module is None:
        return {}
    return {
        name: value
        for name, value in vars(module).items()
        if inspect.isfunction(value)
        and value.__module__ == module_name
        and value.__qualname__ == name
    }
