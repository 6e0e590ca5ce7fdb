"""PluginHost: a worker's plugins, their hooks, and the config set tasks run with."""

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace

from by_framework.errors import ConfigurationError
from by_framework.plugins.base import Plugin
from by_framework.plugins.configs import (
    ConfigSet,
    PluginBuildError,
    build,
    fingerprint,
    from_snapshot,
    to_snapshot,
)
from by_framework.plugins.hooks import HookRunner
from by_framework.plugins.model import PluginBuildContext
from by_framework.ports import PluginStore, ReloadAck

log = logging.getLogger("by_framework.plugins")


class PluginHost:
    """Builds the config set at start-up (or recovers the last snapshot when the build fails),
    rebuilds it on reload, and swaps it in one assignment: a task keeps the set it started
    with, tasks started later see the new one."""

    def __init__(
        self,
        plugins: Sequence[Plugin],
        store: PluginStore,
        *,
        worker_id: str,
        agent_types: Sequence[str],
        hook_timeout: float,
    ) -> None:
        self.plugins = list(plugins)
        self.hooks = HookRunner(self.plugins, hook_timeout)
        self.current = ConfigSet(0)
        self._store = store
        self._worker_id = worker_id
        self._agent_types = tuple(agent_types)
        self._snapshot_key = ",".join(sorted(agent_types))
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        if not self.plugins:
            return
        try:
            built = await build(self.plugins, self._context("startup"))
        except PluginBuildError as exc:
            snapshot = await self._store.load_snapshot(self._snapshot_key)
            self.current = self._recover(snapshot, exc)
            return
        await self._adopt(built)

    async def reload(self, reload_id: str, reason: str) -> ReloadAck:
        """Reload every plugin and rebuild; on any failure keep the configs in use."""
        async with self._lock:
            before = self.current.version
            try:
                for plugin in self.plugins:
                    try:
                        await plugin.reload()
                    except Exception as exc:
                        raise PluginBuildError(
                            f"plugin {plugin.plugin_id}: reload raised {type(exc).__name__}: {exc}"
                        ) from exc
                built = await build(self.plugins, self._context(f"reload: {reason}"))
                after = await self._adopt(built)
            except PluginBuildError as exc:
                log.error("reload %s failed, configs v%d stay: %s", reload_id, before, exc)
                return ReloadAck(reload_id, self._worker_id, "failed", before, before, str(exc))
            log.info("reload %s: configs v%d -> v%d", reload_id, before, after)
            return ReloadAck(reload_id, self._worker_id, "ok", before, after)

    def _context(self, reason: str) -> PluginBuildContext:
        return PluginBuildContext(self._worker_id, self._agent_types, reason)

    async def _adopt(self, built: ConfigSet) -> int:
        """Number the set (same content, same number, across the kind's workers), save it as
        the last known-good snapshot, and make it the one new tasks get; its version."""
        key, content = self._snapshot_key, fingerprint(built, self.plugins)
        numbered = replace(built, version=await self._store.version_for(key, content))
        await self._store.save_snapshot(key, to_snapshot(numbered, self.plugins))
        self.current = numbered
        return numbered.version

    def _recover(self, snapshot: bytes | None, error: PluginBuildError) -> ConfigSet:
        if snapshot is None:
            raise ConfigurationError(f"{error}; and no config snapshot to fall back on") from error
        try:
            recovered = from_snapshot(snapshot, self.plugins)
        except ValueError as exc:
            raise ConfigurationError(f"{error}; and {exc}") from error
        log.error("%s; serving the last known-good configs (v%d)", error, recovered.version)
        for config in recovered.configs.values():
            if config.missing_tools:
                log.error(
                    "agent config %s: the code of %s is gone; those tools are left out",
                    config.agent_id,
                    ", ".join(config.missing_tools),
                )
        return recovered
