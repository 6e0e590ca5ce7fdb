"""History stores: the one conformance suite run by every backend (memory, and PostgreSQL on the
real server), then what is particular to each and how a URL picks one."""

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from by_framework_history_postgres import SCHEMA_VERSION, PostgresHistoryStore

from by_framework import ConfigurationError, MemoryHistoryStore, open_history_store
from by_framework.history import backends
from by_framework.history.memory import STORED_OVERHEAD
from by_framework.ports import HistoryStore
from by_framework.testing.history import WORKERS, HistoryStoreConformance


class TestMemoryHistory(HistoryStoreConformance):
    @pytest.fixture
    async def store(self) -> AsyncIterator[HistoryStore]:
        store = MemoryHistoryStore()
        await store.start()
        yield store
        await store.aclose()


class TestPostgresHistory(HistoryStoreConformance):
    @pytest.fixture
    async def store(self, postgres_url: str, history_schema: str) -> AsyncIterator[HistoryStore]:
        store = PostgresHistoryStore(postgres_url, schema=history_schema)
        await store.start()
        yield store
        await store.aclose()

    @pytest.fixture
    async def workers(
        self, store: HistoryStore, postgres_url: str, history_schema: str
    ) -> AsyncIterator[list[HistoryStore]]:
        """One store per worker, each with its own pool (several connections each)."""
        stores = [
            PostgresHistoryStore(postgres_url, schema=history_schema, pool_max_size=3)
            for _ in range(WORKERS)
        ]
        await asyncio.gather(*(s.start() for s in stores))
        yield list(stores)
        await asyncio.gather(*(s.aclose() for s in stores))


# Memory


async def test_memory_history_is_bounded() -> None:
    store = MemoryHistoryStore.from_url("memory://?max_sessions=3&max_messages=5")
    for i in range(8):
        await store.append("s-long", "user", i, key=f"k{i}")
    kept = (await store.list("s-long")).messages
    assert [m.content for m in kept] == [3, 4, 5, 6, 7]
    assert (await store.list("s-long", kept[0].cursor)).messages == kept[1:]
    for session in ("s-b", "s-c", "s-long", "s-d"):  # s-long is used again: s-b goes first
        await store.append(session, "user", "x")
    assert (await store.list("s-b")).messages == []
    assert len((await store.list("s-long")).messages) == 5


async def test_memory_history_is_bounded_by_bytes() -> None:
    one = STORED_OVERHEAD + len("user") + len('"xxxxxxxxxx"') + len("{}")  # each message's size
    store = MemoryHistoryStore.from_url(f"memory://?max_bytes={one * 10}")
    for session in ("s-a", "s-b", "s-c"):
        for _ in range(4):
            await store.append(session, "user", "x" * 10)
    assert store.size == one * 10  # 12 appended: the two oldest of s-a went
    assert len((await store.list("s-a")).messages) == 2
    await store.append("s-a", "user", "x" * 10)  # s-a is the newest now: s-b loses one
    assert [len((await store.list(s)).messages) for s in ("s-a", "s-b", "s-c")] == [3, 3, 4]
    for _ in range(8):  # one session's own appends push out every other session's messages
        await store.append("s-d", "user", "x" * 10)
    assert [len((await store.list(s)).messages) for s in ("s-a", "s-b", "s-c")] == [2, 0, 0]
    assert await store.delete("s-d") == 8 and store.size == one * 2
    huge = await store.append("s-e", "user", "x" * (one * 20))  # alone over the bound: kept
    assert (await store.list("s-e")).messages == [huge]
    assert (await store.list("s-a")).messages == []


async def test_memory_history_stays_flat_over_many_appends() -> None:
    """A long-lived worker's default store: its bytes stop at the bound, whatever the traffic."""
    store = MemoryHistoryStore(max_bytes=64 * 1024)
    sizes = []
    for i in range(20_000):
        await store.append(f"s{i % 300}", "assistant", {"text": "y" * (i % 50)})
        sizes.append(store.size)
    assert max(sizes) <= 64 * 1024
    assert min(sizes[5_000:]) > 60 * 1024  # full, and it stays there


async def test_recording_a_turn_stores_what_appending_it_would() -> None:
    """``record`` (a worker's turns) and ``append`` keep the same message, key, checks and bound."""
    recorded, appended = MemoryHistoryStore(max_messages=2), MemoryHistoryStore(max_messages=2)
    for i, key in enumerate(["a", "b", "a", "c"]):  # "a" again: kept once
        recorded.record("s", "user", {"n": i}, {"kind": "message"}, key=key)
        await appended.append("s", "user", {"n": i}, {"kind": "message"}, key=key)
    kept = (await recorded.list("s")).messages
    assert [(m.content, m.metadata, m.key) for m in kept] == [
        ({"n": 1}, {"kind": "message"}, "b"),
        ({"n": 3}, {"kind": "message"}, "c"),
    ]
    assert [m.content for m in (await appended.list("s")).messages] == [{"n": 1}, {"n": 3}]
    assert recorded.size == appended.size
    with pytest.raises(ValueError, match="history content must be JSON"):
        recorded.record("s", "user", float("nan"))
    with pytest.raises(ValueError, match="non-empty session id"):
        recorded.record("", "user", "x")
    assert len((await recorded.list("s")).messages) == 2


# Choosing a backend by URL


def test_a_url_picks_its_backend() -> None:
    assert isinstance(open_history_store("memory://"), MemoryHistoryStore)
    memory = open_history_store("memory://?max_sessions=7")
    assert isinstance(memory, MemoryHistoryStore) and memory.max_sessions == 7
    url = "postgresql://app:secret@db:5433/agents?schema=hist&pool_max_size=4&sslmode=disable"
    for scheme in ("postgresql", "postgres"):
        store = open_history_store(url.replace("postgresql", scheme, 1))
        assert isinstance(store, PostgresHistoryStore)
        assert (store.schema, store.pool_max_size) == ("hist", 4)
        assert store.dsn == f"{scheme}://app:secret@db:5433/agents?sslmode=disable"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres-db.local", "is not a URL"),
        ("cassandra://db", "installed: memory, postgres, postgresql"),
        ("memory://?max_messages=0", "must be at least 1"),
        ("memory://?max_bytes=-5", "must be at least 1"),
        ("memory://?size=3", "unknown memory:// options ['size']"),
        ("postgresql://db/x?schema=drop;table", "schema must be a plain identifier"),
        ("postgresql://db/x?pool_max_size=many", "pool_max_size must be an integer"),
    ],
)
def test_a_bad_history_url_is_a_configuration_error(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        open_history_store(url)
    assert message in str(caught.value)


def test_a_backend_that_is_not_installed_names_its_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(backends, "entry_points", lambda group: [])
    with pytest.raises(ConfigurationError) as caught:
        open_history_store("postgresql://app:secret@db/agents")
    assert "pip install ./history/postgres (in a clone of by-framework)" in str(caught.value)
    assert "secret" not in str(caught.value)  # the password never reaches a message


def test_a_url_is_shown_without_its_password() -> None:
    assert backends.redact("postgresql://app:s3cret@db:5432/x") == "postgresql://app:***@db:5432/x"
    assert backends.redact("postgresql://:pw@[::1]/x") == "postgresql://:***@[::1]/x"
    assert backends.redact("postgresql://app@db/x") == "postgresql://app@db/x"


# PostgreSQL


async def test_workers_starting_together_create_the_schema_once(
    postgres_url: str, history_schema: str
) -> None:
    stores = [PostgresHistoryStore(postgres_url, schema=history_schema) for _ in range(5)]
    await asyncio.gather(*(store.start() for store in stores))
    await asyncio.gather(*(store.aclose() for store in stores))
    connection = await asyncpg.connect(postgres_url)
    try:
        versions = await connection.fetch(
            f"SELECT version FROM {history_schema}.schema_version ORDER BY version"
        )
        assert [row["version"] for row in versions] == list(range(1, SCHEMA_VERSION + 1))
        column = await connection.fetchval(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_schema = $1 AND table_name = 'messages' AND column_name = 'content'",
            history_schema,
        )
        assert column == "jsonb"
    finally:
        await connection.close()


async def test_content_is_queryable_jsonb_in_postgresql(
    postgres_url: str, history_schema: str
) -> None:
    store = PostgresHistoryStore(postgres_url, schema=history_schema)
    await store.start()
    try:
        await store.append("s-sql", "assistant", {"tool": "search", "hits": [{"id": 7}]})
    finally:
        await store.aclose()
    connection = await asyncpg.connect(postgres_url)
    try:
        hit = await connection.fetchval(
            f"SELECT content #>> '{{hits,0,id}}' FROM {history_schema}.messages "
            "WHERE session_id = 's-sql' AND content->>'tool' = 'search'"
        )
        assert hit == "7"
    finally:
        await connection.close()


async def test_a_schema_newer_than_the_package_is_refused(
    postgres_url: str, history_schema: str
) -> None:
    store = PostgresHistoryStore(postgres_url, schema=history_schema)
    await store.start()
    await store.aclose()
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.execute(
            f"INSERT INTO {history_schema}.schema_version (version) VALUES (99)"
        )
    finally:
        await connection.close()
    with pytest.raises(ConfigurationError, match=r"at version 99.*upgrade the package"):
        await PostgresHistoryStore(postgres_url, schema=history_schema).start()


async def test_a_store_used_before_start_says_so() -> None:
    store = PostgresHistoryStore("postgresql://nowhere/x")
    with pytest.raises(RuntimeError, match="await start"):
        await store.list("s")
    await store.aclose()  # closing an unstarted store is fine
