"""Creating the shared Redis client (a pool that waits when full instead of failing), or a Redis
Cluster client (``redis+cluster://``), and the connections of their own that blocking reads and
the command batcher use beside its pool."""

import asyncio
import math
from typing import Any
from urllib.parse import unquote, urlsplit

from hiredis import pack_command
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection, Connection, SSLConnection
from redis.connection import HiredisRespSerializer
from redis.exceptions import TimeoutError as RedisTimeoutError

from by_framework.redis.scripts import ALL_SCRIPTS
from by_framework.settings import Settings

RedisClient = Redis | RedisCluster
"""A client of one Redis server, or of a Redis Cluster."""

CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}
"""URL schemes of a Redis Cluster, and whether they speak TLS."""

_default_client: Redis | None = None

DEFAULT_REPLY_TIMEOUT = 5.0
"""Seconds to wait for a reply when the client sets no ``socket_timeout`` (redis-py's default)."""


class _HiredisPacking:
    """Packs commands with hiredis: redis-py's asyncio connection packs them in Python, which
    was a fifth of a busy worker's CPU."""

    _packer = HiredisRespSerializer()

    def pack_command(self, *args: Any) -> list[bytes]:
        return self._packer.pack(*args)


class HiredisConnection(_HiredisPacking, Connection):
    pass


class HiredisSSLConnection(_HiredisPacking, SSLConnection):
    pass


def create_redis(
    host: str = "localhost",
    port: int = 6379,
    db: int = 0,
    password: str | None = None,
    username: str | None = None,
    *,
    url: str | None = None,
    max_connections: int = 60,
    **options: Any,
) -> Redis:
    """A new Redis client (``url`` wins over host/port) on a pool that waits when full.

    ``options`` go to redis-py's connection (``ssl_ca_certs``, ``socket_timeout``, ...).
    """
    pool_options: dict[str, Any] = {
        "max_connections": max_connections,
        "timeout": None,  # wait for a free connection rather than raise
        "socket_connect_timeout": 5.0,
        "socket_keepalive": True,
        **options,
    }
    if url:
        scheme = urlsplit(url).scheme
        if scheme in {"redis", "rediss"} and "connection_class" not in pool_options:
            secure = scheme == "rediss"
            pool_options["connection_class"] = HiredisSSLConnection if secure else HiredisConnection
        pool = BlockingConnectionPool.from_url(url, **pool_options)
    else:
        pool = BlockingConnectionPool(
            host=host,
            port=port,
            db=db,
            password=password,
            username=username,
            **{"connection_class": HiredisConnection, **pool_options},
        )
    return Redis(connection_pool=pool)


def cluster_address(url: str) -> tuple[list[tuple[str, int]], str | None, str | None, bool]:
    """The nodes, user name, password, and whether TLS is on, of a
    ``redis+cluster://[user:password@]host:port[,host:port...]`` (or ``rediss+cluster://``) URL."""
    scheme, _, rest = url.partition("://")
    if scheme not in CLUSTER_SCHEMES:
        raise ValueError(f"not a Redis Cluster URL: {scheme}://...")
    credentials, _, hosts = rest.rpartition("@")
    username, _, password = credentials.partition(":")
    nodes = []
    for address in hosts.split("/", 1)[0].split(","):
        host, _, port = address.strip().rpartition(":")
        nodes.append((host or "localhost", int(port or 6379)))
    return nodes, unquote(username) or None, unquote(password) or None, CLUSTER_SCHEMES[scheme]


def create_cluster(
    url: str, *, max_connections: int = 60, password: str | None = None, **options: Any
) -> RedisCluster:
    """A Redis Cluster client from a ``redis+cluster://`` URL (``cluster_address``): the nodes
    it names are where it first learns the slot map.

    ``max_connections`` bounds the pooled connections per node (a full one raises, unlike the
    standalone pool: the hot paths use connections of their own, ``node_connection``)."""
    nodes, username, url_password, secure = cluster_address(url)
    cluster = RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in nodes],
        username=username,
        password=url_password or password,
        ssl=secure,
        max_connections=max_connections,
        **{"socket_connect_timeout": 5.0, "socket_keepalive": True, **options},
    )
    # The nodes it discovers are made with these options: commands packed by hiredis there too.
    cluster.connection_kwargs["connection_class"] = (
        HiredisSSLConnection if secure else HiredisConnection
    )
    return cluster


def is_cluster_url(url: str | None) -> bool:
    return url is not None and url.partition("://")[0] in CLUSTER_SCHEMES


def cluster_url(settings: Settings) -> str | None:
    """The settings' cluster URL: ``redis_url`` if it is one, or the host fields with
    ``redis_cluster``; None for one Redis."""
    if is_cluster_url(settings.redis_url):
        return settings.redis_url
    if settings.redis_url is None and settings.redis_cluster:
        return f"redis+cluster://{settings.redis_host}:{settings.redis_port}"
    return None


def redis_for(settings: Settings, **options: Any) -> RedisClient:
    """A new client made from the settings' Redis URL or host fields (a cluster's for a
    ``redis+cluster://`` URL or ``redis_cluster``); ``options`` override the connection's
    (``socket_timeout``, ...) or the pool size."""
    options = {"max_connections": settings.pool_size, **settings.tls_options, **options}
    url = cluster_url(settings)
    if url is not None:
        if settings.redis_username:
            options["username"] = settings.redis_username
        return create_cluster(url, password=settings.redis_password, **options)
    return create_redis(
        host=settings.redis_host,
        port=settings.redis_port,
        db=settings.redis_db,
        password=settings.redis_password,
        username=settings.redis_username,
        url=settings.redis_url,
        **options,
    )


def init_redis(
    host: str = "localhost",
    port: int = 6379,
    db: int = 0,
    password: str | None = None,
    username: str | None = None,
    *,
    url: str | None = None,
    max_connections: int = 60,
    **options: Any,
) -> Redis:
    """Create the process-wide Redis client that ``close_redis`` closes, and return it."""
    global _default_client
    _default_client = create_redis(
        host, port, db, password, username, url=url, max_connections=max_connections, **options
    )
    return _default_client


async def close_redis() -> None:
    """Close the client made by ``init_redis`` (safe to call twice)."""
    global _default_client
    if _default_client is not None:
        client, _default_client = _default_client, None
        await client.aclose()


def reply_timeout(redis: RedisClient) -> float | None:
    """How long the client's connections wait for a reply (None: for ever)."""
    if isinstance(redis, RedisCluster):
        return redis.connection_kwargs.get("socket_timeout", DEFAULT_REPLY_TIMEOUT)
    return redis.connection_pool.connection_kwargs.get("socket_timeout", DEFAULT_REPLY_TIMEOUT)


def unpooled_connection(redis: Redis) -> AbstractConnection:
    """A connection (unconnected until its first write) made like the client's pool's, but outside
    the pool and without a socket timeout: its user bounds each exchange as a whole. redis-py
    bounds each write with that timeout by a task of its own (``wait_for``), and each reply by a
    timer, on top of a pool checkout per command."""
    pool = redis.connection_pool
    return pool.connection_class(**{**pool.connection_kwargs, "socket_timeout": None})


def node_connection(node: ClusterNode) -> AbstractConnection:
    """``unpooled_connection`` for one node of a cluster."""
    return node.connection_class(**{**node.connection_kwargs, "socket_timeout": None})


class HeldConnection:
    """A connection of its own for a loop of blocking reads (a session's follower, a worker's
    fetch loop), from the first ``call`` to ``aclose``.

    A command is packed by hiredis, written, and its raw reply read back, bounded by its block
    time plus the client's reply timeout. A call that fails or is cut short leaves the
    connection disconnected (redis-py does so for any interrupted read or write), so no reply
    is ever left on it; the next call connects it again.
    """

    def __init__(self, redis: RedisClient, node: ClusterNode | None = None) -> None:
        """On ``redis``'s server, or on ``node`` of the cluster ``redis``."""
        self._redis = redis
        self._node = node
        self._reply_timeout = reply_timeout(redis)
        self._connection: AbstractConnection | None = None
        self._client_id: int | None = None

    async def client_id(self) -> int:
        """The connection's id on its server (what CLIENT UNBLOCK names), connecting it first
        if it is not."""
        connection = self._connection
        if self._client_id is None or connection is None or not connection.is_connected:
            self._client_id = int(await self.call(("CLIENT", "ID")))
        return self._client_id

    async def call(self, command: tuple[Any, ...], block_ms: int | None = None) -> Any:
        """The raw reply (RESP2 or RESP3, as the client speaks) to a command that may block for
        up to ``block_ms``."""
        packed = pack_command(command)
        if self._connection is None:
            if self._node is not None:
                self._connection = node_connection(self._node)
            else:
                assert isinstance(self._redis, Redis)
                self._connection = unpooled_connection(self._redis)
        connection = self._connection
        wait = None
        if self._reply_timeout is not None:
            wait = self._reply_timeout + (block_ms or 0) / 1000
        try:
            async with asyncio.timeout(wait):
                await connection.send_packed_command(packed, check_health=False)  # connects
                return await connection.read_response(timeout=math.inf)
        except TimeoutError:  # the connection was disconnected when the read was cut short
            raise RedisTimeoutError(
                f"Redis sent no reply to {command[0]} within {wait:g}s"
            ) from None

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.disconnect()


async def load_scripts(redis: Redis) -> None:
    """Load every Lua script once, so that pipelines can call them by sha."""
    pipe = redis.pipeline(transaction=False)
    for script in ALL_SCRIPTS:
        pipe.script_load(script.source)
    await pipe.execute()
