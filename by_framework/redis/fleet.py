"""The fleet view in Redis: workers from the registry's index, queues from the consumer group.

Three pipelined round trips, whatever the number of workers and agent types: the indexes (with
Redis's clock beside them: TIME has no key, so a Redis Cluster does not take it in a pipeline),
every worker's info, then every agent type's stream (all its shards).
"""

import asyncio
from collections.abc import Mapping
from typing import Any

from redis.exceptions import ResponseError

from by_framework.ports import FleetSnapshot, QueueInfo, WorkerInfo
from by_framework.protocol.codec import entry_time
from by_framework.redis.connection import RedisClient
from by_framework.redis.keys import KeySpace
from by_framework.redis.worker_info import parse_info


class RedisFleetView:
    def __init__(self, redis: RedisClient, keys: KeySpace, group: str) -> None:
        self._redis = redis
        self._keys = keys
        self._group = group

    async def snapshot(self) -> FleetSnapshot:
        pipe = self._redis.pipeline(transaction=False)
        pipe.smembers(self._keys.known_workers())
        pipe.zrange(self._keys.known_agent_types(), 0, -1)
        pipe.xlen(self._keys.dead_letter_stream())
        clock, (members, served, dead_letters) = await asyncio.gather(
            self._redis.time(), pipe.execute()
        )
        now = _seconds(clock)
        worker_ids = sorted(member.decode() for member in members)

        pipe = self._redis.pipeline(transaction=False)
        for worker_id in worker_ids:
            pipe.hgetall(self._keys.worker_info(worker_id))
            pipe.exists(self._keys.worker_online(worker_id))
        replies = await pipe.execute()
        workers = [
            parse_info(worker_id, info, bool(online), now)
            for worker_id, info, online in zip(worker_ids, replies[::2], replies[1::2], strict=True)
            if info
        ]

        agent_types = sorted(
            {name.decode() for name in served}.union(*(w.agent_types for w in workers))
        )
        streams = [(name, self._keys.agent_type_streams(name)) for name in agent_types]
        pipe = self._redis.pipeline(transaction=False)
        for _, shards in streams:
            for stream in shards:
                pipe.xlen(stream)
                pipe.xinfo_groups(stream)
                pipe.xpending(stream, self._group)
        answers = iter(await pipe.execute(raise_on_error=False))
        queues = [
            _merged(
                agent_type,
                [
                    self._queue(agent_type, next(answers), next(answers), next(answers))
                    for _ in shards
                ],
            )
            for agent_type, shards in streams
        ]
        return FleetSnapshot(now, tuple(workers), tuple(queues), dead_letters)

    async def worker(self, worker_id: str) -> WorkerInfo | None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(self._keys.worker_info(worker_id))
        pipe.exists(self._keys.worker_online(worker_id))
        clock, (info, online) = await asyncio.gather(self._redis.time(), pipe.execute())
        if not info:
            return None
        return parse_info(worker_id, info, bool(online), _seconds(clock))

    def _queue(self, agent_type: str, length: Any, groups: Any, pending: Any) -> QueueInfo:
        """The queue from XLEN, XINFO GROUPS and the XPENDING summary; a stream or group that
        does not exist (yet) reads as empty."""
        group = _our_group(groups, self._group)
        lag = group.get("lag") if group is not None else None
        if group is None and isinstance(length, int):
            lag = length  # no group yet: nothing was delivered
        summary = pending if isinstance(pending, Mapping) else {}
        oldest = summary.get("min")
        if isinstance(oldest, bytes):
            oldest = oldest.decode()
        return QueueInfo(
            agent_type=agent_type,
            length=length if isinstance(length, int) else 0,
            queued=lag if isinstance(lag, int) else None,
            pending=int(summary.get("pending") or 0),
            oldest_pending_at=entry_time(oldest) if isinstance(oldest, str) else None,
        )


def _merged(agent_type: str, shards: list[QueueInfo]) -> QueueInfo:
    """One agent type's queue over the shards of its control stream."""
    if len(shards) == 1:
        return shards[0]
    queued = [shard.queued for shard in shards]
    oldest = [shard.oldest_pending_at for shard in shards if shard.oldest_pending_at is not None]
    return QueueInfo(
        agent_type=agent_type,
        length=sum(shard.length for shard in shards),
        queued=None if None in queued else sum(q for q in queued if q is not None),
        pending=sum(shard.pending for shard in shards),
        oldest_pending_at=min(oldest) if oldest else None,
    )


def _our_group(groups: Any, name: str) -> Mapping[str, Any] | None:
    if isinstance(groups, ResponseError) or not isinstance(groups, list):
        return None
    for group in groups:
        group_name = group.get("name")
        if isinstance(group_name, bytes):
            group_name = group_name.decode()
        if group_name == name:
            return group
    return None


def _seconds(clock: tuple[int, int]) -> float:
    seconds, microseconds = clock
    return seconds + microseconds / 1_000_000
