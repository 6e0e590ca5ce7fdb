"""Fixtures: a real Redis (the configured one, 127.0.0.1:6379, or an embedded one), and a key
prefix per test so that tests never see each other's data."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import BlockingConnectionPool, Redis

from by_framework import GatewayClient, Settings
from by_framework.redis.embedded import resolve_redis_url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url, server = resolve_redis_url()
    yield url
    if server is not None:
        server.stop()


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield prefix
    asyncio.run(_delete_prefix(redis_url, prefix))


async def _delete_prefix(url: str, prefix: str) -> None:
    redis = Redis.from_url(url)
    try:
        async for key in redis.scan_iter(match=f"{prefix}:*", count=1000):
            await redis.delete(key)
    finally:
        await redis.aclose()


@pytest.fixture
def settings(redis_url: str, key_prefix: str, tmp_path: Path) -> Settings:
    return Settings.resolve(
        redis_url=redis_url,
        key_prefix=key_prefix,
        workspace_dir=str(tmp_path / "workspace"),
        heartbeat_interval=0.2,
        heartbeat_ttl=1.0,
        lease_seconds=1.5,
        sweep_interval=0.5,
        shutdown_timeout=5.0,
    )


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis(connection_pool=BlockingConnectionPool.from_url(redis_url, timeout=None))
    yield client
    await client.aclose()


@pytest.fixture
async def client(redis: Redis, settings: Settings) -> AsyncIterator[GatewayClient]:
    gateway = GatewayClient(redis, settings=settings)
    yield gateway
    await gateway.aclose()
