"""Creating the shared Redis client: a pool that waits when full instead of failing."""

from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import Connection, SSLConnection
from redis.connection import HiredisRespSerializer

from by_framework.redis.scripts import ALL_SCRIPTS

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


async def load_scripts(redis: Redis) -> None:
    """Load every Lua script once, so that pipelines can call them by sha."""
    pipe = redis.pipeline(transaction=False)
    for script in ALL_SCRIPTS:
        pipe.script_load(script.source)
    await pipe.execute()
