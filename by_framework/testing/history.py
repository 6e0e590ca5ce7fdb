"""The conformance suite of the ``HistoryStore`` port: every backend runs these same tests.

A backend's test module subclasses ``HistoryStoreConformance`` and provides a ``store`` fixture
(a started store on empty data, closed afterwards). A backend whose data is shared between
processes overrides ``workers`` too, giving each "worker" its own store object (own connections)
on the same data::

    class TestMyHistory(HistoryStoreConformance):
        @pytest.fixture
        async def store(self):
            store = MyHistoryStore(...)
            await store.start()
            yield store
            await store.aclose()

Needs pytest and pytest-asyncio.
"""

import asyncio
import itertools
import random
from collections.abc import Sequence
from typing import Any

import pytest

from by_framework.history.content import MAX_PAGE
from by_framework.ports import HistoryMessage, HistoryStore

WORKERS = 4


async def _all(store: HistoryStore, session_id: str, limit: int = MAX_PAGE) -> list[HistoryMessage]:
    messages: list[HistoryMessage] = []
    after: str | None = None
    while True:
        page = await store.list(session_id, after, limit)
        messages.extend(page.messages)
        if page.next_cursor is None:
            return messages
        after = page.next_cursor


def _increasing(messages: Sequence[HistoryMessage]) -> bool:
    positions = [message.position for message in messages]
    return all(a < b for a, b in itertools.pairwise(positions))


STRUCTURED: list[Any] = [
    {"role": "tool", "calls": [{"name": "search", "args": {"q": "redis", "k": 3}}], "ok": True},
    [1, 2.5, -3, 10**18, None, False, "x", [], {}],
    {"nested": {"deeper": {"deepest": [[[{"a": [1, {"b": None}]}]]]}}},
    "plain text",
    "",
    0,
    -1.25,
    None,
    True,
    [],
    {},
]

UNICODE = [
    "héllo wörld \u2013 \u201cquotes\u201d \u2018single\u2019 \u2026",
    "日本語のテキスト、中文文本\uff0c한국어 텍스트",
    "emoji 🎉 \U0001f469\u200d\U0001f469\u200d\U0001f467 and a flag \U0001f1eb\U0001f1f7",
    "right-to-left: שלום عليكم",
    "combining: e\u0301 a\u0308 \u200b\u200d zero-width",
    'escapes: " \\ / \b \f \n \r \t and a literal \\u0000 (backslash-u, not NUL)',
    "astral: \U0001d518\U0001d52b\U0001d526 \U00010348 \U0001f004",
]


class HistoryStoreConformance:
    """What every history backend does. Subclass it with a ``store`` fixture."""

    pytestmark = [pytest.mark.asyncio]

    @pytest.fixture
    def store(self) -> HistoryStore:
        raise NotImplementedError("a backend's suite provides the store fixture")

    @pytest.fixture
    def workers(self, store: HistoryStore) -> list[HistoryStore]:
        """Stores on the same data as ``store``, one per worker process. By default the store
        itself, shared (in-process backends)."""
        return [store] * WORKERS

    # Appending and listing

    async def test_an_unknown_session_has_no_messages(self, store: HistoryStore) -> None:
        page = await store.list("nobody-here")
        assert page.messages == []
        assert page.next_cursor is None

    async def test_messages_come_back_in_append_order_as_stored(self, store: HistoryStore) -> None:
        turns = [
            ("user", "hello", {"message_id": "m1", "kind": "message"}),
            ("assistant", {"answer": "hi"}, {"message_id": "m1", "kind": "result"}),
            ("planner", ["a", "b"], {}),
            ("assistant", None, {"status": "failed", "error": "boom"}),
        ]
        appended = [await store.append("s-order", role, c, meta) for role, c, meta in turns]
        listed = (await store.list("s-order")).messages
        assert listed == appended
        assert [(m.role, m.content, m.metadata) for m in listed] == turns
        assert _increasing(listed)
        assert all(m.session_id == "s-order" and m.key is None for m in listed)
        assert all(m.created_at is not None for m in listed)
        assert [m.cursor for m in listed] == [str(m.position) for m in listed]

    async def test_metadata_defaults_to_an_empty_object(self, store: HistoryStore) -> None:
        message = await store.append("s-meta", "user", "x")
        assert message.metadata == {}
        assert (await store.list("s-meta")).messages[0].metadata == {}

    async def test_structured_content_round_trips(self, store: HistoryStore) -> None:
        for content in STRUCTURED:
            await store.append("s-json", "assistant", content, {"copy": content})
        listed = (await store.list("s-json")).messages
        assert [m.content for m in listed] == STRUCTURED
        assert [m.metadata["copy"] for m in listed] == STRUCTURED

    async def test_content_is_a_copy_not_a_shared_object(self, store: HistoryStore) -> None:
        content = {"items": [1, 2]}
        await store.append("s-copy", "user", content)
        content["items"].append(3)
        first = (await store.list("s-copy")).messages[0]
        first.content["items"].append(4)
        assert (await store.list("s-copy")).messages[0].content == {"items": [1, 2]}

    async def test_unicode_round_trips_in_every_field(self, store: HistoryStore) -> None:
        session = "séance-🎲-会话"
        for i, text in enumerate(UNICODE):
            await store.append(session, "ユーザー", {"text": text, text: i}, {"note": text})
        listed = (await store.list(session)).messages
        assert [m.content for m in listed] == [{"text": t, t: i} for i, t in enumerate(UNICODE)]
        assert [m.metadata["note"] for m in listed] == UNICODE
        assert {m.role for m in listed} == {"ユーザー"}
        assert {m.session_id for m in listed} == {session}

    async def test_large_content_round_trips(self, store: HistoryStore) -> None:
        text = "".join(random.choice("abcdefghij 🎉é\n") for _ in range(200_000)) * 10
        rows = [{"i": i, "name": f"row {i}", "tags": ["x"] * 5} for i in range(20_000)]
        await store.append("s-large", "assistant", text)
        await store.append("s-large", "tool", rows)
        listed = (await store.list("s-large")).messages
        assert listed[0].content == text
        assert listed[1].content == rows

    async def test_sessions_are_kept_apart(self, store: HistoryStore) -> None:
        for i in range(6):
            await store.append(f"s-apart-{i % 2}", "user", i)
        assert [m.content for m in await _all(store, "s-apart-0")] == [0, 2, 4]
        assert [m.content for m in await _all(store, "s-apart-1")] == [1, 3, 5]

    # Paging

    async def test_pages_walk_every_message_once_in_order(self, store: HistoryStore) -> None:
        for i in range(25):
            await store.append("s-pages", "user", i)
        sizes: list[int] = []
        seen: list[Any] = []
        after: str | None = None
        while True:
            page = await store.list("s-pages", after, 7)
            sizes.append(len(page.messages))
            seen.extend(m.content for m in page.messages)
            if page.next_cursor is None:
                break
            after = page.next_cursor
        assert sizes == [7, 7, 7, 4]
        assert seen == list(range(25))

    async def test_a_page_that_reaches_the_end_has_no_next_cursor(
        self, store: HistoryStore
    ) -> None:
        for i in range(5):
            await store.append("s-end", "user", i)
        full = await store.list("s-end", limit=5)
        assert len(full.messages) == 5 and full.next_cursor is None
        short = await store.list("s-end", limit=4)
        assert short.next_cursor == short.messages[-1].cursor

    async def test_any_message_cursor_lists_what_follows_it(self, store: HistoryStore) -> None:
        for i in range(10):
            await store.append("s-cursor", "user", i)
        messages = (await store.list("s-cursor")).messages
        after_fourth = await store.list("s-cursor", messages[3].cursor)
        assert [m.content for m in after_fourth.messages] == list(range(4, 10))
        last = await store.list("s-cursor", messages[-1].cursor)
        assert last.messages == [] and last.next_cursor is None
        # A cursor stays valid as the session grows: a reader can follow it.
        await store.append("s-cursor", "user", 10)
        assert [
            m.content for m in (await store.list("s-cursor", messages[-1].cursor)).messages
        ] == [10]

    async def test_bad_limits_and_cursors_are_refused(self, store: HistoryStore) -> None:
        await store.append("s-bad", "user", 1)
        for limit in (0, -1, MAX_PAGE + 1):
            with pytest.raises(ValueError):
                await store.list("s-bad", limit=limit)
        for cursor in ("abc", "-1", "1.5", "\uff11"):
            with pytest.raises(ValueError):
                await store.list("s-bad", cursor)
        assert len((await store.list("s-bad", limit=MAX_PAGE)).messages) == 1

    # Several workers at once

    async def test_concurrent_appends_from_several_workers_are_totally_ordered(
        self, store: HistoryStore, workers: list[HistoryStore]
    ) -> None:
        per_worker = 30
        followed: list[HistoryMessage] = []
        writing = True

        async def write(number: int, worker: HistoryStore) -> None:
            for i in range(per_worker):
                await worker.append("s-busy", f"worker-{number}", i, {"worker": number})
                await worker.append("s-other", f"worker-{number}", i)
                if i % 7 == 0:
                    await asyncio.sleep(0)

        async def follow() -> None:
            # A reader following the session while it is written, by cursor: it must see every
            # message exactly once, as a message committed late would otherwise be skipped.
            after: str | None = None
            while True:
                page = await store.list("s-busy", after, 10)
                followed.extend(page.messages)
                if page.messages:
                    after = page.messages[-1].cursor
                elif not writing:
                    return
                else:
                    await asyncio.sleep(0.001)

        reader = asyncio.create_task(follow())
        await asyncio.gather(*(write(n, w) for n, w in enumerate(workers)))
        writing = False
        await reader
        listed = await _all(store, "s-busy", limit=17)
        assert len(listed) == len(workers) * per_worker
        assert _increasing(listed)
        assert len({m.position for m in listed}) == len(listed)
        for number in range(len(workers)):
            mine = [m.content for m in listed if m.role == f"worker-{number}"]
            assert mine == list(range(per_worker))  # each worker's own order is kept
        assert followed == listed
        assert len(await _all(store, "s-other")) == len(workers) * per_worker

    # Idempotent appends

    async def test_an_append_with_a_used_key_returns_the_first_message(
        self, store: HistoryStore
    ) -> None:
        first = await store.append("s-key", "user", "hello", {"run": 0}, key="m1:0:message")
        await store.append("s-key", "assistant", "hi", key="m1:0:result")
        again = await store.append("s-key", "user", "hello again", {"run": 9}, key="m1:0:message")
        assert again == first
        listed = (await store.list("s-key")).messages
        assert [(m.content, m.key) for m in listed] == [
            ("hello", "m1:0:message"),
            ("hi", "m1:0:result"),
        ]
        later = await store.append("s-key", "user", "next", key="m2:0:message")
        assert later.position > listed[-1].position

    async def test_keys_belong_to_their_session_and_keyless_appends_never_merge(
        self, store: HistoryStore
    ) -> None:
        await store.append("s-key-a", "user", "a", key="same")
        await store.append("s-key-b", "user", "b", key="same")
        await store.append("s-key-a", "user", "x")
        await store.append("s-key-a", "user", "x")
        assert [m.content for m in await _all(store, "s-key-a")] == ["a", "x", "x"]
        assert [m.content for m in await _all(store, "s-key-b")] == ["b"]

    async def test_concurrent_appends_of_one_key_store_it_once(
        self, store: HistoryStore, workers: list[HistoryStore]
    ) -> None:
        results = await asyncio.gather(
            *(
                worker.append("s-race", "user", f"from {n}", key="m1:0:message")
                for n, worker in enumerate(workers * 3)
            )
        )
        listed = await _all(store, "s-race")
        assert len(listed) == 1
        assert all(result == listed[0] for result in results)

    # Deleting

    async def test_delete_removes_the_session_and_nothing_else(self, store: HistoryStore) -> None:
        for i in range(5):
            await store.append("s-gone", "user", i, key=f"k{i}")
        await store.append("s-kept", "user", "stay")
        assert await store.delete("s-gone") == 5
        assert (await store.list("s-gone")).messages == []
        assert [m.content for m in (await store.list("s-kept")).messages] == ["stay"]
        assert await store.delete("s-gone") == 0
        assert await store.delete("never-existed") == 0

    async def test_a_deleted_session_starts_afresh(self, store: HistoryStore) -> None:
        await store.append("s-again", "user", "old", key="k")
        await store.delete("s-again")
        await store.append("s-again", "user", "new", key="k")  # its keys went with it
        assert [m.content for m in (await store.list("s-again")).messages] == ["new"]

    # Refusals

    async def test_content_that_cannot_be_stored_is_refused(self, store: HistoryStore) -> None:
        refused: list[Any] = [
            object(),
            {"set": {1, 2}},
            float("nan"),
            float("inf"),
            "nul \x00 inside",
            {"key": "lone surrogate \ud800"},
        ]
        for content in refused:
            with pytest.raises((TypeError, ValueError)):
                await store.append("s-refused", "user", content)
        with pytest.raises((TypeError, ValueError)):
            await store.append("s-refused", "user", "ok", {"meta": object()})
        with pytest.raises(ValueError):
            await store.append("", "user", "no session")
        with pytest.raises(ValueError):
            await store.append("s-refused", "", "no role")
        for session, role, key in [
            ("s-\x00", "user", None),
            ("s-refused", "us\ud800er", None),
            ("s-refused", "user", ""),
            ("s-refused", "user", "k\x00"),
        ]:
            with pytest.raises(ValueError):
                await store.append(session, role, "text", key=key)
        assert (await store.list("s-refused")).messages == []
