"""Service discovery in Redis: a lease key per node, a member set per service.

A node's record (its ``ServiceInstance`` as JSON) lives in a key that expires unless renewed by
a heartbeat, so a node that stops heartbeating drops out on its own. The service's set lists its
node ids for look-up; members whose lease expired are pruned by the look-up itself. The set
expires with the last lease, so services that are gone leave nothing behind. The service name is
a hash tag: one service's keys share a Redis Cluster slot, as its scripts need.
"""

import asyncio
import contextlib
import logging
import math
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any, NamedTuple

from redis.asyncio import Redis

from by_framework.common.aio import cancel_and_wait
from by_framework.discovery.errors import InvalidServiceError
from by_framework.discovery.model import (
    ServiceInstance,
    check_metadata,
    check_name,
    check_ttl,
)
from by_framework.redis.keys import DEFAULT_PREFIX, KeySpace
from by_framework.redis.scripts import Script

log = logging.getLogger("by_framework.discovery")

DEFAULT_TTL = 30.0

# Extends a member set's lease to at least the node lease just given (ms in ARGV[1]).
_EXTEND_SET = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
"""


class RegisterArgs(NamedTuple):
    lease_ms: int  # 1
    node_id: str  # 2
    record: str  # 3: its JSON


# KEYS: service's node set, node record key.
REGISTER = Script(
    "discovery_register",
    RegisterArgs,
    f"""
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[1])
redis.call('SADD', KEYS[1], ARGV[2])
{_EXTEND_SET}
return 1
""",
)


class RenewArgs(NamedTuple):
    lease_ms: int  # 1
    node_id: str  # 2


# KEYS: service's node set, node record key.
# 1 if renewed; 0 if the lease had expired or the node was deregistered (register it again).
RENEW = Script(
    "discovery_renew",
    RenewArgs,
    f"""
if redis.call('PEXPIRE', KEYS[2], ARGV[1]) == 0 then
  redis.call('SREM', KEYS[1], ARGV[2])
  return 0
end
redis.call('SADD', KEYS[1], ARGV[2])
{_EXTEND_SET}
return 1
""",
)


class LookupArgs(NamedTuple):
    node_prefix: str  # 1: the prefix of the service's node record keys


# KEYS: service's node set.
# The live records; members whose lease expired are removed from the set.
LOOKUP = Script(
    "discovery_lookup",
    LookupArgs,
    """
local found = {}
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local record = redis.call('GET', ARGV[1] .. node)
  if record then
    table.insert(found, record)
  else
    redis.call('SREM', KEYS[1], node)
  end
end
return found
""",
)


def _lease_ms(ttl: float) -> int:
    return max(1, math.ceil(ttl * 1000))


class ServiceRegistry:
    """Register, renew and remove the nodes of services, and look up the live ones.

    A node is registered with a lease of ``ttl`` seconds (``default_ttl`` if not given) and
    stays visible while ``heartbeat`` renews it in time; ``keep_alive`` does all three for a
    running service. The key prefix is ``key_prefix``, else ``BYAI_KEY_PREFIX``, else the
    default, as for ``WorkerRegistry``. Node ids must be unique within a service: registering
    an id again replaces its record.
    """

    def __init__(
        self,
        redis_client: Redis,
        key_prefix: str | None = None,
        *,
        default_ttl: float = DEFAULT_TTL,
    ) -> None:
        self.redis = redis_client
        self.keys = KeySpace(key_prefix or os.environ.get("BYAI_KEY_PREFIX") or DEFAULT_PREFIX)
        self.default_ttl = check_ttl(default_ttl, "default_ttl")
        self._register = redis_client.register_script(REGISTER.source)
        self._heartbeat = redis_client.register_script(RENEW.source)
        self._lookup = redis_client.register_script(LOOKUP.source)

    def _ttl(self, ttl: float | None) -> float:
        return self.default_ttl if ttl is None else check_ttl(ttl)

    async def register(
        self,
        service: str,
        node_id: str,
        address: str,
        metadata: Mapping[str, Any] | None = None,
        *,
        ttl: float | None = None,
    ) -> ServiceInstance:
        """Register (or re-register) a node: visible to look-ups for ``ttl`` seconds unless
        renewed. ``address``: ``host:port`` or a base URL. Raises ``InvalidServiceError``."""
        instance = ServiceInstance(service, node_id, address, check_metadata(metadata))
        lease = _lease_ms(self._ttl(ttl))
        await self._register(
            keys=[self.keys.service_nodes(service), self.keys.service_node(service, node_id)],
            args=REGISTER.argv(RegisterArgs(lease, node_id, instance.to_json())),
        )
        return instance

    async def heartbeat(self, service: str, node_id: str, *, ttl: float | None = None) -> bool:
        """Renew a node's lease for ``ttl`` seconds. False when it has no lease (expired or
        deregistered): register it again."""
        check_name(service, "service name")
        check_name(node_id, "node id")
        lease = _lease_ms(self._ttl(ttl))
        renewed = await self._heartbeat(
            keys=[self.keys.service_nodes(service), self.keys.service_node(service, node_id)],
            args=RENEW.argv(RenewArgs(lease, node_id)),
        )
        return bool(renewed)

    async def deregister(self, service: str, node_id: str) -> bool:
        """Remove a node at once; False if it was not registered (or had expired)."""
        check_name(service, "service name")
        check_name(node_id, "node id")
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.keys.service_node(service, node_id))
        pipe.srem(self.keys.service_nodes(service), node_id)
        deleted, _ = await pipe.execute()
        return bool(deleted)

    async def instances(self, service: str) -> list[ServiceInstance]:
        """The nodes of ``service`` whose lease is live, ordered by node id."""
        check_name(service, "service name")
        records = await self._lookup(
            keys=[self.keys.service_nodes(service)],
            args=LOOKUP.argv(LookupArgs(self.keys.service_node_prefix(service))),
        )
        found: list[ServiceInstance] = []
        for record in records:
            try:
                found.append(ServiceInstance.from_json(record))
            except ValueError:
                log.warning("skipping a malformed record of service %r: %r", service, record)
        return sorted(found, key=lambda instance: instance.node_id)

    async def services(self) -> list[str]:
        """The names of the services that have registered nodes (a SCAN; for tools)."""
        names = {
            self.keys.service_of_nodes(key.decode())
            async for key in self.redis.scan_iter(match=self.keys.services_pattern(), count=1000)
        }
        return sorted(names)

    @contextlib.asynccontextmanager
    async def keep_alive(
        self,
        service: str,
        node_id: str,
        address: str,
        metadata: Mapping[str, Any] | None = None,
        *,
        ttl: float | None = None,
        interval: float | None = None,
    ) -> AsyncIterator[ServiceInstance]:
        """Register a node, heartbeat it every ``interval`` seconds (a third of the lease by
        default) while the block runs, and deregister it at the end.

        A heartbeat that finds the lease gone (it expired while Redis was unreachable, or
        someone deregistered the node) registers the node again; failed heartbeats are logged
        and retried on the next beat.
        """
        lease = self._ttl(ttl)
        every = lease / 3 if interval is None else check_ttl(interval, "interval")
        if every >= lease:
            raise InvalidServiceError(
                f"heartbeat interval {every} s must be shorter than the lease ttl {lease} s"
            )
        instance = await self.register(service, node_id, address, metadata, ttl=lease)
        beating = asyncio.create_task(self._beat(instance, lease, every))
        try:
            yield instance
        finally:
            await cancel_and_wait(beating)
            try:
                await self.deregister(service, node_id)
            except Exception:
                log.warning(
                    "could not deregister node %r of service %r; it drops out when its lease "
                    "expires",
                    node_id,
                    service,
                    exc_info=True,
                )

    async def _beat(self, instance: ServiceInstance, ttl: float, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                if not await self.heartbeat(instance.service, instance.node_id, ttl=ttl):
                    log.warning(
                        "node %r of service %r had lost its lease; registering it again",
                        instance.node_id,
                        instance.service,
                    )
                    await self.register(
                        instance.service,
                        instance.node_id,
                        instance.address,
                        instance.metadata,
                        ttl=ttl,
                    )
            except Exception:
                log.warning(
                    "heartbeat of node %r of service %r failed; retrying next beat",
                    instance.node_id,
                    instance.service,
                    exc_info=True,
                )
