"""Worker membership, heartbeat lease and worker-id lock, in Redis."""

import math
import os
import secrets
from collections.abc import Sequence

from redis.asyncio import Redis

from by_framework.redis.keys import DEFAULT_PREFIX, KeySpace
from by_framework.redis.scripts import HEARTBEAT, PRUNE_MEMBERS, RELEASE_LOCK

DEFAULT_RETENTION_S = 7 * 24 * 3600


def _seconds(ttl: float) -> int:
    return max(1, math.ceil(ttl))


def heartbeat_args(
    keys: KeySpace,
    worker_id: str,
    agent_types: Sequence[str],
    token: str,
    ttl: float,
    retention: int,
) -> tuple[list[str], list[str | int]]:
    """The keys and arguments of the HEARTBEAT script (the async registry and the lease thread
    both run it)."""
    script_keys = [
        keys.worker_lock(worker_id),
        keys.worker_online(worker_id),
        keys.worker_agent_types(worker_id),
        *(keys.agent_type_workers(agent_type) for agent_type in agent_types),
    ]
    return script_keys, [token, _seconds(ttl), worker_id, retention]


class WorkerRegistry:
    """Who serves which agent type, and who is online right now.

    Membership (agent type -> workers, worker -> agent types) changes at start-up and graceful
    shutdown; the online key is a lease the worker renews every heartbeat; the worker-id lock keeps
    two live processes from running under one worker id.
    """

    def __init__(
        self,
        redis_client: Redis,
        key_prefix: str | None = None,
        retention_seconds: int = DEFAULT_RETENTION_S,
    ) -> None:
        self.redis = redis_client
        self.keys = KeySpace(key_prefix or os.environ.get("BYAI_KEY_PREFIX") or DEFAULT_PREFIX)
        self._retention = retention_seconds
        self._heartbeat = redis_client.register_script(HEARTBEAT.source)
        self._prune = redis_client.register_script(PRUNE_MEMBERS.source)
        self._release_lock = redis_client.register_script(RELEASE_LOCK.source)

    async def acquire(self, worker_id: str, ttl: float) -> str | None:
        token = secrets.token_hex(16)
        taken = await self.redis.set(
            self.keys.worker_lock(worker_id), token, nx=True, ex=_seconds(ttl)
        )
        return token if taken else None

    async def register(
        self, worker_id: str, agent_types: Sequence[str], token: str, ttl: float
    ) -> None:
        pipe = self.redis.pipeline(transaction=True)
        for agent_type in agent_types:
            pipe.sadd(self.keys.agent_type_workers(agent_type), worker_id)
        pipe.delete(self.keys.worker_agent_types(worker_id))
        pipe.sadd(self.keys.worker_agent_types(worker_id), *agent_types)
        pipe.set(self.keys.worker_online(worker_id), token, ex=_seconds(ttl))
        await pipe.execute()

    async def heartbeat(
        self, worker_id: str, agent_types: Sequence[str], token: str, ttl: float
    ) -> bool:
        keys, args = heartbeat_args(self.keys, worker_id, agent_types, token, ttl, self._retention)
        return bool(await self._heartbeat(keys=keys, args=args))

    async def prune(self, agent_types: Sequence[str]) -> int:
        """Drop crashed workers (members that are not online) from the agent types' sets."""
        pruned = 0
        for agent_type in agent_types:
            keys = [self.keys.agent_type_workers(agent_type)]
            pruned += await self._prune(keys=keys, args=[self.keys.worker_online_prefix()])
        return pruned

    async def deregister(self, worker_id: str, agent_types: Sequence[str], token: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        for agent_type in agent_types:
            pipe.srem(self.keys.agent_type_workers(agent_type), worker_id)
        pipe.delete(self.keys.worker_agent_types(worker_id), self.keys.worker_online(worker_id))
        await self._release_lock(keys=[self.keys.worker_lock(worker_id)], args=[token], client=pipe)
        await pipe.execute()

    async def is_online(self, worker_id: str) -> bool:
        return bool(await self.redis.exists(self.keys.worker_online(worker_id)))

    async def workers_of(self, agent_type: str) -> set[str]:
        """Members of the agent type, online or not."""
        members = await self.redis.smembers(self.keys.agent_type_workers(agent_type))
        return {member.decode() for member in members}

    async def online_workers(self, agent_type: str) -> list[str]:
        members = sorted(await self.workers_of(agent_type))
        if not members:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for worker_id in members:
            pipe.exists(self.keys.worker_online(worker_id))
        alive = await pipe.execute()
        return [worker_id for worker_id, up in zip(members, alive, strict=True) if up]

    async def all_online(self) -> list[str]:
        """Every online worker of this key prefix (a SCAN over the heartbeat keys)."""
        prefix = self.keys.worker_online_prefix()
        found = {
            key.decode().removeprefix(prefix)
            async for key in self.redis.scan_iter(match=f"{prefix}*", count=1000)
        }
        return sorted(found)

    async def agent_types_of(self, worker_id: str) -> set[str]:
        members = await self.redis.smembers(self.keys.worker_agent_types(worker_id))
        return {member.decode() for member in members}
