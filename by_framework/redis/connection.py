"""Creating the shared Redis client (a pool that waits when full instead of failing), and the
connections of their own that blocking reads and the command batcher use beside its pool."""

import asyncio
import math
from typing import Any
from urllib.parse import urlsplit

from hiredis import pack_command
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection, Connection, SSLConnection
from redis.connection import HiredisRespSerializer
from redis.exceptions import TimeoutError as RedisTimeoutError

from by_framework.redis.scripts import ALL_SCRIPTS
from by_framework.settings import Settings

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


def redis_for(settings: Settings, **options: Any) -> Redis:
    """A new client made from the settings' Redis URL or host fields; ``options`` override the
    connection's (``socket_timeout``, ...) or the pool size."""
    return create_redis(
        host=settings.redis_host,
        port=settings.redis_port,
        db=settings.redis_db,
        password=settings.redis_password,
        username=settings.redis_username,
        url=settings.redis_url,
        **{"max_connections": settings.pool_size, **settings.tls_options, **options},
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


def reply_timeout(redis: Redis) -> float | None:
    """How long the client's connections wait for a reply (None: for ever)."""
    return redis.connection_pool.connection_kwargs.get("socket_timeout", DEFAULT_REPLY_TIMEOUT)


def unpooled_connection(redis: Redis) -> AbstractConnection:
    """A connection (unconnected until its first write) made like the client's pool's, but outside
    the pool and without a socket timeout: its user bounds each exchange as a whole. redis-py
    bounds each write with that timeout by a task of its own (``wait_for``), and each reply by a
    timer, on top of a pool checkout per command."""
    pool = redis.connection_pool
    return pool.connection_class(**{**pool.connection_kwargs, "socket_timeout": None})


class HeldConnection:
    """A connection of its own for a loop of blocking reads (a session's follower, a worker's
    fetch loop), from the first ``call`` to ``aclose``.

    A command is packed by hiredis, written, and its raw reply read back, bounded by its block
    time plus the client's reply timeout. A call that fails or is cut short leaves the
    connection disconnected (redis-py does so for any interrupted read or write), so no reply
    is ever left on it; the next call connects it again.
    """

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._reply_timeout = reply_timeout(redis)
        self._connection: AbstractConnection | None = None

    async def call(self, command: tuple[Any, ...], block_ms: int | None = None) -> Any:
        """The raw reply (RESP2 or RESP3, as the client speaks) to a command that may block for
        up to ``block_ms``."""
        packed = pack_command(command)
        if self._connection is None:
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
