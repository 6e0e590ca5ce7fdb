"""The one place an engine is assembled from settings: everything else (the client, the worker,
the CLI, the gateway, the dashboard) takes an ``Engine`` and never names its implementation.

Which engine is chosen by the scheme of ``redis_url`` (none: the ``redis_host`` fields). The
embedded Redis of ``dev`` and ``demo`` is resolved before this, into a plain ``redis://`` URL.
"""

from typing import Any
from urllib.parse import urlsplit

from by_framework.ports import Engine, WorkerDirectory
from by_framework.redis.engine import RedisEngine
from by_framework.redis.probe import check_redis
from by_framework.redis.registry import WorkerRegistry
from by_framework.settings import REDIS_SCHEMES, Settings

TRANSIENT_ERRORS: tuple[type[Exception], ...] = RedisEngine.transient_errors
"""What any engine ``connect_engine`` makes raises when its store is unreachable right now: for
callers that hold no engine (the CLI's entry point, ``run_worker``)."""
CREDENTIAL_ERRORS: tuple[type[Exception], ...] = RedisEngine.credential_errors
"""What any engine raises when its store refuses the credentials."""
REFUSALS: tuple[type[Exception], ...] = RedisEngine.refusals
"""What any engine raises when its store refuses a command."""


def connect_engine(settings: Settings) -> Engine:
    """An engine on a connection of its own, made from ``settings``; ``aclose`` closes it.

    Its return type is checked: ``RedisEngine`` implements every member of ``Engine`` (mypy)."""
    scheme = urlsplit(settings.redis_url).scheme if settings.redis_url else "redis"
    if scheme in REDIS_SCHEMES:
        return RedisEngine.connect(settings)
    raise ValueError(f"no engine for a {scheme}:// URL")  # Settings rejects such URLs first


async def check_engine(settings: Settings) -> None:
    """Reach the store once, failing fast with a ``ConfigurationError`` that names the setting
    to fix (a start stops here, not in a retry loop)."""
    await check_redis(settings)


def engine_on_client(
    redis_client: Any,
    registry: WorkerDirectory | None = None,
    *,
    key_prefix: str | None = None,
    settings: Settings | None = None,
) -> Engine:
    """An engine on a Redis client the caller made (``init_redis``) and closes: the public
    ``GatewayClient(redis_client, registry)`` form. The key prefix comes from ``settings``, else
    ``key_prefix``, else ``registry``, else ``BYAI_KEY_PREFIX``."""
    if settings is None:
        named = registry.keys.prefix if isinstance(registry, WorkerRegistry) else None
        prefix = key_prefix or named
        settings = Settings.resolve(key_prefix=prefix)
    return RedisEngine(redis_client, settings)
