"""Session data streams: bounded (MAXLEN ~), expiring (TTL refreshed on write, within 1 %)."""

import time
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from by_framework.common.aio import Backoff
from by_framework.redis.batching import Batcher, RedisCommand
from by_framework.redis.cluster_batching import ClusterBatcher
from by_framework.redis.cluster_feed import ClusterSessionFeed
from by_framework.redis.connection import RedisClient
from by_framework.redis.feed import FeedFollower, SessionFeed
from by_framework.redis.keys import KeySpace
from by_framework.redis.replies import entries
from by_framework.redis.ttl_refreshes import TtlRefreshes


class RedisEventLog:
    def __init__(
        self,
        redis: RedisClient,
        batcher: Batcher,
        keys: KeySpace,
        maxlen: int,
        stream_ttls: TtlRefreshes,
    ) -> None:
        self._redis = redis
        self._batcher = batcher
        self._keys = keys
        self._maxlen = maxlen
        self._stream_ttls = stream_ttls
        self._feed: SessionFeed
        if isinstance(batcher, ClusterBatcher):
            self._feed = ClusterSessionFeed(batcher, keys)
        else:
            self._feed = SessionFeed(redis, batcher, keys)

    async def append(self, session_id: str, *events: bytes) -> None:
        """Append, waiting out a Redis outage (the caller may cancel). A reply lost to a dropped
        connection can make an event land twice; readers drop such repeats by sequence. The
        stream's TTL is set as ``TtlRefreshes`` says: between refreshes the events are added
        only to a stream that exists, and those that found none are added again with it."""
        stream = self._keys.session_data_stream(session_id)
        asked_at = time.monotonic()
        if self._stream_ttls.ttl_arg(stream) < 0:
            adds = [self._add(stream, event, "NOMKSTREAM") for event in events]
            added = await self._retrying(adds)
            events = tuple(event for event, id_ in zip(events, added, strict=True) if id_ is None)
            if not events:
                return
        ttl = self._stream_ttls.ttl
        await self._retrying(
            [*(self._add(stream, event) for event in events), ("EXPIRE", stream, ttl)]
        )
        self._stream_ttls.refreshed(stream, asked_at)

    def _add(self, stream: str, event: bytes, *option: str) -> RedisCommand:
        return ("XADD", stream, *option, "MAXLEN", "~", self._maxlen, "*", "e", event)

    async def _retrying(self, commands: list[RedisCommand]) -> list[Any]:
        backoff = Backoff()
        while True:
            try:
                return await self._batcher.execute(*commands)
            except (RedisConnectionError, RedisTimeoutError):
                await backoff.pause()

    def reader(self, session_id: str) -> FeedFollower:
        return self._feed.follower(self._keys.session_data_stream(session_id), session_id)

    @property
    def followers(self) -> int:
        """Readers of this client following a session now (the gateway's SSE clients)."""
        return self._feed.follower_count

    async def aclose(self) -> None:
        await self._feed.aclose()

    async def last_id(self, session_id: str) -> str:
        """Id of the newest event, or "0-0": reading after it sees only what comes next."""
        stream = self._keys.session_data_stream(session_id)
        newest = entries(await self._redis.xrevrange(stream, count=1))
        return newest[0][0].decode() if newest else "0-0"
