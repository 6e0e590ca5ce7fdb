"""DiscoveryClient: cached look-ups of a service's healthy nodes, round-robin over them."""

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import TypeGuard

from by_framework.discovery.errors import InvalidServiceError, NoHealthyNodeError
from by_framework.discovery.model import ServiceInstance, ServiceLookup, check_name

log = logging.getLogger("by_framework.discovery")

DEFAULT_CACHE_TTL = 5.0


@dataclass(frozen=True, slots=True)
class _Entry:
    nodes: tuple[ServiceInstance, ...]
    fetched_at: float


class DiscoveryClient:
    """Finds the healthy nodes of a service and spreads calls over them.

    A service's node list is read from ``registry`` (a ``ServiceRegistry``) at most once per
    ``cache_ttl`` seconds (0: on every call); concurrent callers share one read. An empty list is
    not cached, so a service that starts is found at once. When a read fails and an earlier list
    is cached, that list is served (with a warning) for another ``cache_ttl``: a registry outage
    does not stop calls between services.
    """

    def __init__(self, registry: ServiceLookup, *, cache_ttl: float = DEFAULT_CACHE_TTL) -> None:
        if (
            isinstance(cache_ttl, bool)
            or not isinstance(cache_ttl, int | float)
            or not math.isfinite(cache_ttl)
            or cache_ttl < 0
        ):
            raise InvalidServiceError(
                f"bad cache_ttl {cache_ttl!r}: give a number of seconds, 0 or more"
            )
        self.registry = registry
        self.cache_ttl = float(cache_ttl)
        self._cache: dict[str, _Entry] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._turns: dict[str, int] = {}

    def _fresh(self, entry: _Entry | None) -> TypeGuard[_Entry]:
        return (
            entry is not None
            and bool(entry.nodes)
            and time.monotonic() - entry.fetched_at < self.cache_ttl
        )

    async def nodes(self, service: str, *, refresh: bool = False) -> list[ServiceInstance]:
        """The healthy nodes of ``service``, ordered by node id; from the cache while it is
        fresh, unless ``refresh``. Empty when none is registered."""
        check_name(service, "service name")
        if not refresh and self._fresh(self._cache.get(service)):
            return list(self._cache[service].nodes)
        asked_at = time.monotonic()
        lock = self._locks.setdefault(service, asyncio.Lock())
        async with lock:
            entry = self._cache.get(service)
            if self._fresh(entry) and (not refresh or entry.fetched_at >= asked_at):
                return list(entry.nodes)  # another caller read it while this one waited
            try:
                found = await self.registry.instances(service)
            except Exception:
                if entry is None or not entry.nodes:
                    raise
                log.warning(
                    "looking up service %r failed; using its %d cached nodes for %.1f s more",
                    service,
                    len(entry.nodes),
                    self.cache_ttl,
                    exc_info=True,
                )
                found = list(entry.nodes)
            self._cache[service] = _Entry(tuple(found), time.monotonic())
            return list(found)

    async def refresh(self, service: str) -> list[ServiceInstance]:
        """Read ``service``'s nodes from the registry now."""
        return await self.nodes(service, refresh=True)

    def invalidate(self, service: str | None = None) -> None:
        """Forget the cached nodes of ``service`` (of every service if None)."""
        if service is None:
            self._cache.clear()
        else:
            self._cache.pop(service, None)

    async def candidates(self, service: str) -> list[ServiceInstance]:
        """The healthy nodes in the order to try them: this call's round-robin pick first, then
        the nodes after it. Raises ``NoHealthyNodeError`` when there are none."""
        nodes = await self.nodes(service)
        if not nodes:
            raise NoHealthyNodeError(service)
        turn = self._turns.get(service, 0)
        self._turns[service] = turn + 1
        start = turn % len(nodes)
        return nodes[start:] + nodes[:start]

    async def choose(self, service: str) -> ServiceInstance:
        """The next node of ``service``, round-robin over its healthy nodes. Raises
        ``NoHealthyNodeError`` when there are none."""
        return (await self.candidates(service))[0]
