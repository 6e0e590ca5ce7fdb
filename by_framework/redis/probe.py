"""The first connection of a command: a Redis that is not there, refuses the password or does
not speak TLS ends it at once with a ``ConfigurationError`` that names the setting to fix.

Only the start fails fast: a running worker rides out later outages with its own retries, and
its clients wait for Redis to come back."""

import asyncio
from urllib.parse import urlsplit

from redis.exceptions import AuthenticationError, RedisError, ResponseError

from by_framework.errors import ConfigurationError
from by_framework.history.backends import redact
from by_framework.redis.connection import redis_for
from by_framework.settings import Settings

PROBE_TIMEOUT = 3.0
"""Seconds the first connection and its PING may take."""

CREDENTIALS = (
    "redis_username / redis_password (--redis-username / --redis-password, "
    "BYAI_REDIS_USERNAME / BYAI_REDIS_PASSWORD, or user:password@ in redis_url)"
)


async def check_redis(settings: Settings) -> None:
    """PING Redis once, on a connection of its own bounded by ``PROBE_TIMEOUT``.

    Raises ``ConfigurationError`` when it cannot connect, refuses the credentials, or refuses
    the connection's set-up (e.g. a ``redis_db`` out of range)."""
    redis = redis_for(
        settings,
        max_connections=1,
        socket_connect_timeout=PROBE_TIMEOUT,
        socket_timeout=PROBE_TIMEOUT,
    )
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            await redis.ping()
    except AuthenticationError as exc:
        raise ConfigurationError(
            f"Redis refused the credentials at {_where(settings)} ({_refusal(settings, exc)}); "
            f"fix {CREDENTIALS}"
        ) from None
    except ResponseError as exc:
        raise ConfigurationError(
            f"Redis at {_where(settings)} refused the connection ({_detail(exc)}); "
            f"fix redis_db (BYAI_REDIS_DB) or {CREDENTIALS}"
        ) from None
    except (RedisError, OSError, TimeoutError) as exc:
        raise ConfigurationError(_unreachable(settings, exc)) from None
    finally:
        await redis.aclose()


def _unreachable(settings: Settings, exc: BaseException) -> str:
    message = f"cannot reach Redis at {_where(settings)} ({_detail(exc)}); start it or fix "
    if not settings.redis_url:
        return message + "redis_host / redis_port (--redis-host / --redis-port, BYAI_REDIS_HOST "
        "/ BYAI_REDIS_PORT) or set redis_url (--redis-url / REDIS_URL)"
    message += "redis_url (--redis-url / REDIS_URL)"
    if urlsplit(settings.redis_url).scheme == "rediss":
        message += "; rediss:// needs a TLS server whose certificate redis_ssl_ca_certs trusts"
    return message


def _refusal(settings: Settings, exc: BaseException) -> str:
    """Why Redis refused: redis-py's NOAUTH reply talks of HELLO, not of the missing password."""
    url_password = urlsplit(settings.redis_url).password if settings.redis_url else None
    if settings.redis_password or url_password:
        return _detail(exc)
    return "it requires a password and none is set"


def _where(settings: Settings) -> str:
    if settings.redis_url:
        return redact(settings.redis_url)
    return f"{settings.redis_host}:{settings.redis_port}"


def _detail(exc: BaseException) -> str:
    """The error on one line (redis-py's messages may span several, a timeout's is empty)."""
    return " ".join(str(exc).split()) or f"no answer within {PROBE_TIMEOUT:g}s"
