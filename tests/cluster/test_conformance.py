"""The engine conformance suite (``by_framework.testing.engine``) on the Redis Cluster: the same
state machine as on one Redis, every step in one hash slot."""

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from by_framework.engine import connect_engine
from by_framework.ports import Engine
from by_framework.settings import Settings
from by_framework.testing.engine import EngineConformance, EngineFactory
from tests.cluster.conftest import delete_prefix


class TestRedisCluster(EngineConformance):
    @pytest.fixture
    def engine_factory(self, cluster_url: str) -> Iterator[EngineFactory]:
        prefixes: set[str] = set()

        def make(**fields: Any) -> Engine:
            prefixes.add(fields["key_prefix"])
            return connect_engine(Settings.resolve(redis_url=cluster_url, **fields))

        yield make
        for prefix in prefixes:
            asyncio.run(delete_prefix(cluster_url, prefix))
