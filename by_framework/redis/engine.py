"""The Redis engine: one object that implements every port on one Redis client."""

from collections.abc import Callable, Mapping, Sequence

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from by_framework.redis.answers import RedisAnswers
from by_framework.redis.batching import CommandBatcher
from by_framework.redis.cluster_batching import ClusterBatcher
from by_framework.redis.cluster_feed import session_streams
from by_framework.redis.connection import RedisClient, load_scripts, redis_for
from by_framework.redis.control import RedisControlPlane
from by_framework.redis.dead_letter import DeadLetters
from by_framework.redis.events import RedisEventLog
from by_framework.redis.fleet import RedisFleetView
from by_framework.redis.keys import KeySpace
from by_framework.redis.lease_keeper import LeaseKeeper
from by_framework.redis.orchestration import RedisOrchestration
from by_framework.redis.owners import RedisSessionOwners
from by_framework.redis.plugin_store import RedisPluginStore
from by_framework.redis.rate_limit import RedisRateLimiter
from by_framework.redis.records import RedisTaskStore
from by_framework.redis.registry import WorkerRegistry
from by_framework.redis.schedules import RedisSchedules
from by_framework.redis.sightings import OnlineSightings
from by_framework.redis.ttl_refreshes import TtlRefreshes
from by_framework.redis.turns import RedisSessionTurns
from by_framework.settings import Settings


class RedisEngine:
    """Control plane, event log, task store and worker registry sharing one client and batcher
    (of one Redis, or of a Redis Cluster)."""

    transient_errors: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError)
    credential_errors: tuple[type[Exception], ...] = (AuthenticationError,)
    refusals: tuple[type[Exception], ...] = (ResponseError,)
    """Errors Redis answered a command with (an ACL that forbids it, a key of another type)."""

    def __init__(self, redis: RedisClient, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        keys = KeySpace(settings.key_prefix, settings.agent_type_shards)
        self.batcher: CommandBatcher | ClusterBatcher
        if isinstance(redis, RedisCluster):
            self.batcher = ClusterBatcher(redis, wakes=session_streams(keys))
        else:
            self.batcher = CommandBatcher(redis)
        sightings = OnlineSightings()
        stream_ttls = TtlRefreshes(settings.data_stream_ttl)
        self.control = RedisControlPlane(
            redis,
            self.batcher,
            keys,
            group=settings.consumer_group,
            record_ttl=settings.record_ttl,
            data_maxlen=settings.data_stream_maxlen,
            dead_letter_maxlen=settings.dead_letter_maxlen,
            dead_letter_entry_bytes=settings.dead_letter_entry_bytes,
            max_deliveries=settings.max_deliveries,
            signing_key=settings.signing_key_bytes,
            sightings=sightings,
            stream_ttls=stream_ttls,
        )
        self.orchestration = RedisOrchestration(
            redis,
            self.batcher,
            keys,
            record_ttl=settings.record_ttl,
            data_maxlen=settings.data_stream_maxlen,
            signing_key=settings.signing_key_bytes,
            sightings=sightings,
            stream_ttls=stream_ttls,
        )
        self.events = RedisEventLog(
            redis, self.batcher, keys, settings.data_stream_maxlen, stream_ttls
        )
        self.tasks = RedisTaskStore(redis, keys)
        self.plugin_store = RedisPluginStore(
            redis, self.batcher, keys, settings.record_ttl, settings.signing_key_bytes
        )
        self.registry = WorkerRegistry(redis, settings.key_prefix, settings.record_ttl)
        self.owners = RedisSessionOwners(self.batcher, keys, settings.record_ttl)
        self.turns = RedisSessionTurns(self.batcher, keys)
        self.answers = RedisAnswers(redis, self.batcher, keys)
        self.rate_limiter = RedisRateLimiter(self.batcher, keys)
        self.fleet = RedisFleetView(redis, keys, settings.consumer_group)
        self.dead_letters = DeadLetters(
            redis, keys, settings.consumer_group, settings.signing_key_bytes
        )
        self.schedules = RedisSchedules(self.batcher, keys)
        self.keys = keys
        self._owns_client = False

    @classmethod
    def connect(cls, settings: Settings) -> "RedisEngine":
        """An engine on a new client made from the settings' Redis URL or host fields: of a
        Redis Cluster for a ``redis+cluster://`` URL (or ``redis_cluster``)."""
        engine = cls(redis_for(settings), settings)
        engine._owns_client = True
        return engine

    async def start(self) -> None:
        if isinstance(self.batcher, ClusterBatcher):
            await self.batcher.load_scripts()
        elif isinstance(self.redis, Redis):
            await load_scripts(self.redis)

    async def ping(self) -> None:
        await self.batcher.execute(("PING",))

    def lease_keeper(
        self,
        worker_id: str,
        agent_types: Sequence[str],
        in_flight: Callable[[], Mapping[str, Sequence[str]]],
        turns: Callable[[], Sequence[tuple[str, str, str]]],
        token: Callable[[], str | None],
    ) -> LeaseKeeper:
        return LeaseKeeper(
            self.settings, self.keys, worker_id, agent_types, in_flight, turns, token
        )

    async def aclose(self) -> None:
        await self.events.aclose()
        await self.batcher.aclose()
        if self._owns_client:
            await self.redis.aclose()
