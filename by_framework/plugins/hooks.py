"""Running plugin hooks: bounded by a timeout, failures logged and counted, never raised."""

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from by_framework.plugins.base import HOOKS, Plugin

log = logging.getLogger("by_framework.plugins")


class HookRunner:
    """Calls each hook on the plugins that override it, in registration order."""

    def __init__(self, plugins: Sequence[Plugin], timeout: float) -> None:
        self._timeout = timeout
        self._by_hook = {
            hook: [p for p in plugins if getattr(type(p), hook) is not getattr(Plugin, hook)]
            for hook in HOOKS
        }
        self.stats: Counter[tuple[str, str, str]] = Counter()
        """(plugin id, hook, "success" | "failure" | "timeout") -> count."""

    async def run(self, hook: str, *args: Any) -> None:
        for plugin in self._by_hook[hook]:
            try:
                async with asyncio.timeout(self._timeout):
                    await getattr(plugin, hook)(*args)
            except TimeoutError:
                self.stats[plugin.plugin_id, hook, "timeout"] += 1
                log.warning(
                    "plugin %s: %s took longer than %gs; abandoned",
                    plugin.plugin_id,
                    hook,
                    self._timeout,
                )
            except Exception:
                self.stats[plugin.plugin_id, hook, "failure"] += 1
                log.exception("plugin %s: %s raised; ignored", plugin.plugin_id, hook)
            else:
                self.stats[plugin.plugin_id, hook, "success"] += 1

    def summary(self) -> list[str]:
        """One line per plugin and hook that ran: its success / failure / timeout counts."""
        pairs = sorted({(plugin, hook) for plugin, hook, _ in self.stats})
        return [
            f"plugin {plugin} {hook}: success {self.stats[plugin, hook, 'success']}, "
            f"failure {self.stats[plugin, hook, 'failure']}, "
            f"timeout {self.stats[plugin, hook, 'timeout']}"
            for plugin, hook in pairs
        ]
