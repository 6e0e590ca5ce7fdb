"""Session data streams: bounded (MAXLEN ~), expiring (TTL refreshed on every write)."""

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from by_framework.common.aio import Backoff
from by_framework.redis.batching import Batcher
from by_framework.redis.cluster_batching import ClusterBatcher
from by_framework.redis.cluster_feed import ClusterSessionFeed
from by_framework.redis.connection import RedisClient
from by_framework.redis.feed import FeedFollower, SessionFeed
from by_framework.redis.keys import KeySpace
from by_framework.redis.replies import entries


class RedisEventLog:
    def __init__(
        self, redis: RedisClient, batcher: Batcher, keys: KeySpace, maxlen: int, ttl: int
    ) -> None:
        self._redis = redis
        self._batcher = batcher
        self._keys = keys
        self._maxlen = maxlen
        self._ttl = ttl
        self._feed: SessionFeed
        if isinstance(batcher, ClusterBatcher):
            self._feed = ClusterSessionFeed(batcher, keys)
        else:
            self._feed = SessionFeed(redis, batcher, keys)

    async def append(self, session_id: str, *events: bytes) -> None:
        """Append, waiting out a Redis outage (the caller may cancel). A reply lost to a dropped
        connection can make an event land twice; readers drop such repeats by sequence."""
        stream = self._keys.session_data_stream(session_id)
        commands = [
            ("XADD", stream, "MAXLEN", "~", self._maxlen, "*", "e", event) for event in events
        ]
        backoff = Backoff()
        while True:
            try:
                await self._batcher.execute(*commands, ("EXPIRE", stream, self._ttl))
                return
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
