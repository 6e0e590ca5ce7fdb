"""Fixtures of the cluster tests: a real local Redis Cluster (3 masters, 3 replicas) started for
the test session and stopped after it, or the one ``BYF_TEST_REDIS_CLUSTER`` names (a
``redis+cluster://host:port,...`` URL; tests that kill or reshard nodes are skipped there)."""

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster

from by_framework import GatewayClient, Settings
from by_framework.redis.connection import create_cluster
from by_framework.redis.engine import RedisEngine
from tests.support import LocalCluster, delete_keys, settings_for_test

EXTERNAL = os.environ.get("BYF_TEST_REDIS_CLUSTER")


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[LocalCluster | None]:
    """The cluster this session started (None when ``BYF_TEST_REDIS_CLUSTER`` names one)."""
    if EXTERNAL:
        yield None
        return
    missing = [tool for tool in ("redis-server", "redis-cli") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"a local Redis Cluster needs {' and '.join(missing)} on PATH")
    cluster = LocalCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def cluster_url(local_cluster: LocalCluster | None) -> str:
    return EXTERNAL or (local_cluster.url if local_cluster else "")


@pytest.fixture
def own_cluster(local_cluster: LocalCluster | None) -> LocalCluster:
    """The local cluster, for a test that kills or reshards its nodes."""
    if local_cluster is None:
        pytest.skip("kills or reshards nodes: runs on the local cluster only")
    return local_cluster


@pytest.fixture
def cluster_prefix(cluster_url: str) -> Iterator[str]:
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield prefix
    asyncio.run(delete_keys(cluster_url, prefix))


@pytest.fixture
def cluster_settings(cluster_url: str, cluster_prefix: str, tmp_path: Path) -> Settings:
    return settings_for_test(cluster_url, cluster_prefix, tmp_path)


@pytest.fixture
async def cluster_client(cluster_url: str) -> AsyncIterator[RedisCluster]:
    cluster = create_cluster(cluster_url)
    await cluster.initialize()
    yield cluster
    await cluster.aclose()


@pytest.fixture
async def engine(cluster_settings: Settings) -> AsyncIterator[RedisEngine]:
    """An engine on the cluster, started (its scripts loaded on every master)."""
    engine = RedisEngine.connect(cluster_settings)
    await engine.start()
    yield engine
    await engine.aclose()


@pytest.fixture
async def client(cluster_settings: Settings) -> AsyncIterator[GatewayClient]:
    client = GatewayClient.connect(cluster_settings)
    yield client
    await client.aclose()
