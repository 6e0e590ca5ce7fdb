"""Worker membership, heartbeat lease and worker-id lock, in Redis."""

import math
import os
import secrets
from collections.abc import Sequence
from itertools import chain
from typing import Any

from by_framework.ports import WorkerProfile, WorkerReport
from by_framework.redis.connection import RedisClient
from by_framework.redis.keys import DEFAULT_PREFIX, KeySpace
from by_framework.redis.replies import text
from by_framework.redis.scripts import (
    HEARTBEAT,
    PRUNE_MEMBERS,
    RELEASE_LOCK,
    HeartbeatArgs,
    PruneMembersArgs,
    ReleaseLockArgs,
)
from by_framework.redis.worker_info import profile_fields, report_fields

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
    report: WorkerReport | None = None,
) -> tuple[list[str], list[Any]]:
    """The keys and arguments of the HEARTBEAT script (the async registry and the lease thread
    both run it; the thread has no report to publish, only that the process lives)."""
    script_keys = [
        keys.worker_lock(worker_id),
        keys.worker_online(worker_id),
        keys.worker_agent_types(worker_id),
        keys.worker_info(worker_id),
        keys.known_workers(),
        keys.known_agent_types(),
        *(keys.agent_type_workers(agent_type) for agent_type in agent_types),
    ]
    fields = report_fields(report) if report is not None else {}
    args = HeartbeatArgs(token, _seconds(ttl), worker_id, retention)
    return script_keys, HEARTBEAT.argv(args, *agent_types, *chain.from_iterable(fields.items()))


class WorkerRegistry:
    """Who serves which agent type, and who is online right now.

    Membership (agent type -> workers, worker -> agent types) changes at start-up and graceful
    shutdown; the online key is a lease the worker renews every heartbeat; the worker-id lock keeps
    two live processes from running under one worker id.
    """

    def __init__(
        self,
        redis_client: RedisClient,
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
        self,
        worker_id: str,
        agent_types: Sequence[str],
        token: str,
        ttl: float,
        profile: WorkerProfile | None = None,
        report: WorkerReport | None = None,
    ) -> None:
        """What only registering sets (the worker's agent types, its profile) in one
        transaction, then the heartbeat's work (membership, online key, worker info): a crash
        between them leaves a worker that is not online, which ``prune`` drops. (A script
        inside a pipeline is refused on a cluster by redis-py before 8.2.)"""
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.keys.worker_agent_types(worker_id))
        pipe.sadd(self.keys.worker_agent_types(worker_id), *agent_types)
        pipe.delete(self.keys.worker_info(worker_id))
        if profile is not None:
            fields = profile_fields(list(agent_types), profile)
            # redis-py's mapping type has an invariant key: it refuses a dict[str, str]
            pipe.hset(self.keys.worker_info(worker_id), mapping=fields)  # type: ignore[arg-type]
        keys, args = heartbeat_args(
            self.keys, worker_id, agent_types, token, ttl, self._retention, report
        )
        await pipe.execute()
        await self._heartbeat(keys=keys, args=args)

    async def heartbeat(
        self,
        worker_id: str,
        agent_types: Sequence[str],
        token: str,
        ttl: float,
        report: WorkerReport | None = None,
    ) -> bool:
        keys, args = heartbeat_args(
            self.keys, worker_id, agent_types, token, ttl, self._retention, report
        )
        return bool(await self._heartbeat(keys=keys, args=args))

    async def prune(self, agent_types: Sequence[str]) -> int:
        """Drop crashed workers (members that are not online) from the agent types' sets and
        from the fleet's index of workers."""
        pruned = 0
        online = PRUNE_MEMBERS.argv(PruneMembersArgs(self.keys.worker_online_prefix()))
        for agent_type in agent_types:
            keys = [self.keys.agent_type_workers(agent_type)]
            pruned += await self._prune(keys=keys, args=online)
        keys = [self.keys.known_workers()]
        await self._prune(keys=keys, args=online)
        return pruned

    async def deregister(self, worker_id: str, agent_types: Sequence[str], token: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        for agent_type in agent_types:
            pipe.srem(self.keys.agent_type_workers(agent_type), worker_id)
        pipe.delete(
            self.keys.worker_agent_types(worker_id),
            self.keys.worker_online(worker_id),
            self.keys.worker_info(worker_id),
        )
        pipe.srem(self.keys.known_workers(), worker_id)
        await pipe.execute()
        # After the rest: a crash before it leaves the lock to expire with its lease.
        args = RELEASE_LOCK.argv(ReleaseLockArgs(token))
        await self._release_lock(keys=[self.keys.worker_lock(worker_id)], args=args)

    async def is_online(self, worker_id: str) -> bool:
        return bool(await self.redis.exists(self.keys.worker_online(worker_id)))

    async def workers_of(self, agent_type: str) -> set[str]:
        """Members of the agent type, online or not."""
        members = await self.redis.smembers(self.keys.agent_type_workers(agent_type))
        return {text(member) for member in members}

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
        return {text(member) for member in members}
