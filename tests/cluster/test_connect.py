"""Connecting to a Redis Cluster: by a ``redis+cluster://`` URL, or by host and port with
``redis_cluster``; a bad URL is refused with what to write instead."""

import pytest
from redis.asyncio.cluster import RedisCluster

from by_framework import Settings
from by_framework.errors import ConfigurationError
from by_framework.redis.connection import HiredisConnection, cluster_address
from by_framework.redis.engine import RedisEngine


def test_a_cluster_url_names_its_nodes_and_credentials() -> None:
    assert cluster_address("redis+cluster://u:p%40ss@10.0.0.1:7000,10.0.0.2:7001") == (
        [("10.0.0.1", 7000), ("10.0.0.2", 7001)],
        "u",
        "p@ss",
        False,
    )
    assert cluster_address("rediss+cluster://node:6380")[3] is True


def test_a_url_of_no_known_scheme_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="redis\\+cluster://"):
        Settings.resolve(redis_url="cluster://10.0.0.1:7000")


async def test_connects_by_url(cluster_url: str, cluster_prefix: str) -> None:
    engine = RedisEngine.connect(Settings.resolve(redis_url=cluster_url, key_prefix=cluster_prefix))
    try:
        await engine.start()
        await engine.ping()
        assert isinstance(engine.redis, RedisCluster)
        nodes = engine.redis.get_primaries()
        assert len(nodes) >= 3
        assert all(node.connection_class is HiredisConnection for node in nodes)
    finally:
        await engine.aclose()


async def test_connects_by_host_and_port_of_one_node(cluster_url: str, cluster_prefix: str) -> None:
    host, port = cluster_address(cluster_url)[0][0]
    settings = Settings.resolve(
        redis_host=host, redis_port=port, redis_cluster=True, key_prefix=cluster_prefix
    )
    engine = RedisEngine.connect(settings)
    try:
        await engine.start()
        await engine.batcher.execute(("SET", f"{cluster_prefix}:k", "v"))
        assert await engine.redis.get(f"{cluster_prefix}:k") == b"v"
    finally:
        await engine.aclose()
