"""The ways plugins reach a worker: a list, a configurator, a directory, entry points.

Loading runs operator-chosen code only: the objects passed in, the modules in the directory the
operator named (nothing below it, nothing else), and installed packages that declare the
``by_framework.plugins`` entry-point group. Nothing is loaded from Redis.
"""

import importlib.metadata
import importlib.util
import inspect
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from by_framework.errors import ConfigurationError
from by_framework.plugins.base import Plugin
from by_framework.plugins.registry import PluginRegistry

log = logging.getLogger("by_framework.plugins")

ENTRY_POINT_GROUP = "by_framework.plugins"


async def collect_plugins(
    plugin_list: Sequence[Plugin] | None = None,
    plugin_configurator: Callable[[PluginRegistry], Any] | None = None,
    plugin_dir: str | Path | None = None,
    *,
    entry_points: bool = True,
) -> list[Plugin]:
    """Every plugin, in this order: the list, the configurator's, the directory's (modules by
    name), the entry points' (by name). ``ConfigurationError`` names what could not load."""
    registry = PluginRegistry()
    for plugin in plugin_list or ():
        registry.register_bundle(plugin)
    if plugin_configurator is not None:
        outcome = plugin_configurator(registry)
        if inspect.isawaitable(outcome):
            await outcome
    if plugin_dir is not None:
        for plugin in _from_directory(Path(plugin_dir)):
            registry.register_bundle(plugin)
    if entry_points:
        for plugin in _from_entry_points():
            registry.register_bundle(plugin)
    return registry.plugins


def _from_directory(directory: Path) -> list[Plugin]:
    if not directory.is_dir():
        raise ConfigurationError(f"plugin_dir {str(directory)!r} is not a directory")
    plugins: list[Plugin] = []
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue
        found = _plugins_of(_import_file(path))
        if not found:
            log.warning("plugin module %s defines no plugin", path)
        plugins += found
    return plugins


def _import_file(path: Path) -> ModuleType:
    name = f"by_framework_plugin_dir.{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"cannot load plugin module {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # so snapshots can bind its functions by module name
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise ConfigurationError(
            f"plugin module {path} failed to import: {type(exc).__name__}: {exc}"
        ) from exc
    return module


def _plugins_of(module: ModuleType) -> list[Plugin]:
    """A module's ``plugins`` list if it has one; else its Plugin instances; else the Plugin
    subclasses it defines, each made with no arguments."""
    declared = getattr(module, "plugins", None)
    if declared is not None:
        return [_as_plugin(item, module.__name__) for item in declared]
    instances = [value for value in vars(module).values() if isinstance(value, Plugin)]
    if instances:
        return instances
    classes = [
        value
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, Plugin)
        and value is not Plugin
        and value.__module__ == module.__name__
    ]
    return [_as_plugin(cls, module.__name__) for cls in classes]


def _as_plugin(item: Any, where: str) -> Plugin:
    if isinstance(item, Plugin):
        return item
    if callable(item):
        try:
            made = item()
        except Exception as exc:
            raise ConfigurationError(
                f"{where}: {getattr(item, '__name__', item)!r}() failed: {exc}"
            ) from exc
        if isinstance(made, Plugin):
            return made
    raise ConfigurationError(
        f"{where}: {item!r} is not a Plugin, a Plugin class or a function returning one"
    )


def _from_entry_points() -> list[Plugin]:
    plugins = []
    for entry in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=str):
        try:
            loaded = entry.load()
        except Exception as exc:
            raise ConfigurationError(
                f"entry point {entry.name} ({entry.value}) of group {ENTRY_POINT_GROUP} failed "
                f"to load: {type(exc).__name__}: {exc}"
            ) from exc
        plugins.append(_as_plugin(loaded, f"entry point {entry.name}"))
    return plugins
