"""Fixtures: a real Redis (the configured one, 127.0.0.1:6379, or an embedded one), and a key
prefix per test so that tests never see each other's data; the real PostgreSQL
(``BYF_TEST_POSTGRES_URL``, default 127.0.0.1:5432 database ``test``) with a schema per test."""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import BlockingConnectionPool, Redis

from by_framework import GatewayClient, Settings
from by_framework.redis.embedded import resolve_redis_url
from tests.support import delete_keys, settings_for_test

CORE_ONLY = os.environ.get("BYF_TEST_CORE_ONLY") == "1"
"""Set by CI's run on the lowest versions the core allows (constraints-lowest.txt), where the
extension packages, which need newer ones, are not installed: their tests are not collected."""

collect_ignore_glob = (
    [
        "adapters",  # the LangGraph and ADK adapters' tests, one directory each
        "dashboard",  # its API and pages take the [gateway] extra's tokens (PyJWT)
        "gateway",
        "test_gateway_bench.py",
        "tracing",
        "test_history.py",
        "test_history_worker.py",
        "test_metrics.py",  # prometheus-client: the [metrics] extra
        "test_deploy.py",  # deploy/ runs the [gateway] and [metrics] extras
        "test_packaging.py",  # installs every package's wheel, with their dependencies
    ]
    if CORE_ONLY
    else []
)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's, which reads the groups off the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``make test`` runs the suite on several processes), the cluster tests
    go to one process: they share the session's local cluster, whose nodes some of them kill or
    reshard (``--dist loadgroup`` keeps a group on one process; tests/cluster/test_grouping.py
    checks it does)."""
    cluster = Path(__file__).parent / "cluster"
    for item in items:
        if cluster in item.path.parents:
            item.add_marker(pytest.mark.xdist_group("cluster"))


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
    asyncio.run(delete_keys(redis_url, prefix))


@pytest.fixture
def settings(redis_url: str, key_prefix: str, tmp_path: Path) -> Settings:
    return settings_for_test(redis_url, key_prefix, tmp_path)


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


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL the history tests use (CI starts it; a test that needs it fails if it does
    not answer rather than passing unseen)."""
    import asyncpg  # by-framework-history-postgres brings it: pip install -e history/postgres

    url = os.environ.get("BYF_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")

    async def probe() -> None:
        connection = await asyncpg.connect(url, timeout=5)
        await connection.close()

    try:
        _run_apart(probe())
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"no PostgreSQL at {url} (set BYF_TEST_POSTGRES_URL): {exc}")
    return url


@pytest.fixture(params=["memory", "postgresql"])
def history_url(request: pytest.FixtureRequest) -> str:
    """Each history backend in turn, as a ``BYF_HISTORY_URL``: ``memory://``, then the real
    PostgreSQL with a schema of the test's own."""
    if request.param == "memory":
        return "memory://"
    if CORE_ONLY:
        pytest.skip("the PostgreSQL history package is not installed in the core-only run")
    url = request.getfixturevalue("postgres_url")
    return f"{url}?schema={request.getfixturevalue('history_schema')}"


@pytest.fixture
def history_schema(postgres_url: str) -> Iterator[str]:
    """A schema name of this test's own, dropped (with what the test put in it) afterwards."""
    schema = f"byf_test_{uuid.uuid4().hex[:12]}"
    yield schema
    _run_apart(_drop_schema(postgres_url, schema))


def _run_apart(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine to its end on a loop of its own, whether or not one runs here."""
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, coroutine).result()


async def _drop_schema(url: str, schema: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await connection.close()
