"""The engine conformance suite (``by_framework.testing.engine``) on the Redis Cluster: the same
state machine as on one Redis, every step in one hash slot."""

from collections.abc import Iterator

import pytest

from by_framework.testing.engine import EngineConformance, EngineFactory
from tests.support import engines_on


class TestRedisCluster(EngineConformance):
    @pytest.fixture
    def engine_factory(self, cluster_url: str) -> Iterator[EngineFactory]:
        yield from engines_on(cluster_url)
