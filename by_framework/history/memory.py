"""The in-memory history: the reference backend, kept in this process only."""

import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from by_framework.history.content import (
    check_append,
    check_limit,
    encode_json,
    encode_metadata,
    parse_cursor,
)
from by_framework.ports import HistoryMessage, HistoryPage

DEFAULT_MAX_SESSIONS = 1000
DEFAULT_MAX_MESSAGES = 1000
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
STORED_OVERHEAD = 210
"""Bytes a stored message takes besides its texts (its object, the text objects' headers, its
time, its list slot), measured with tracemalloc on 64-bit CPython: what ``max_bytes`` counts."""


@dataclass(slots=True)
class _Stored:
    position: int
    role: str
    content: str  # JSON text, decoded on every read: callers never share a mutable value
    metadata: str
    key: str | None
    created_at: datetime

    @property
    def size(self) -> int:
        """Its bytes, as ``max_bytes`` counts them (texts by their length: JSON is mostly ASCII)."""
        texts = len(self.role) + len(self.content) + len(self.metadata) + len(self.key or "")
        return texts + STORED_OVERHEAD


@dataclass(slots=True)
class _Session:
    last_position: int = 0
    messages: list[_Stored] = field(default_factory=list)
    keys: dict[str, _Stored] = field(default_factory=dict)


class MemoryHistoryStore:
    """Sessions in a dict, messages in lists: what the port promises, with nothing in the way.

    Each worker process has its own, so a task sees only the turns its own process recorded;
    use a shared backend (PostgreSQL) for a history that any worker sees. Bounded, so that a
    long-lived worker's memory stays flat: past ``max_sessions`` the session appended to least
    recently goes; past ``max_messages`` a session drops its oldest messages; past ``max_bytes``
    (what its messages hold, see ``STORED_OVERHEAD``) the oldest messages of the sessions
    appended to least recently go, one by one, until the rest fits.
    """

    def __init__(
        self,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        max_messages: int = DEFAULT_MAX_MESSAGES,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if max_sessions < 1 or max_messages < 1 or max_bytes < 1:
            raise ValueError("max_sessions, max_messages and max_bytes must be at least 1")
        self.max_sessions = max_sessions
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._bytes = 0

    @property
    def size(self) -> int:
        """The bytes its messages hold, as ``max_bytes`` counts them."""
        return self._bytes

    @classmethod
    def from_url(cls, url: str) -> "MemoryHistoryStore":
        """``memory://`` with optional ``?max_sessions=N&max_messages=N&max_bytes=N``."""
        options = dict(parse_qsl(urlsplit(url).query))
        unknown = set(options) - {"max_sessions", "max_messages", "max_bytes"}
        if unknown:
            raise ValueError(f"unknown memory:// options {sorted(unknown)}")
        try:
            return cls(**{name: int(value) for name, value in options.items()})
        except ValueError as exc:
            raise ValueError(f"bad memory:// options: {exc}") from None

    async def start(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    async def append(
        self,
        session_id: str,
        role: str,
        content: Any,
        metadata: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
    ) -> HistoryMessage:
        stored, new = self._keep(session_id, role, content, metadata, key)
        if not new:
            return self._message(session_id, stored)
        return HistoryMessage(
            session_id=session_id,
            position=stored.position,
            role=role,
            content=_as_stored(content, stored.content),
            metadata=_as_stored(dict(metadata or {}), stored.metadata),
            key=key,
            created_at=stored.created_at,
        )

    def record(
        self,
        session_id: str,
        role: str,
        content: Any,
        metadata: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
    ) -> None:
        """``append``, without building the message it returns: how a worker records its turns
        (two a task, on every task's path, never read back there)."""
        self._keep(session_id, role, content, metadata, key)

    def _keep(
        self,
        session_id: str,
        role: str,
        content: Any,
        metadata: Mapping[str, Any] | None,
        key: str | None,
    ) -> tuple[_Stored, bool]:
        """The message stored, and whether it is new (else the one stored under ``key``)."""
        check_append(session_id, role, key)
        encoded, encoded_metadata = encode_json(content), encode_metadata(metadata)
        session = self._sessions.get(session_id)
        if session is None:
            session = self._sessions[session_id] = _Session()
            while len(self._sessions) > self.max_sessions:
                self._drop_session(self._sessions.popitem(last=False)[1])
        self._sessions.move_to_end(session_id)
        if key is not None and key in session.keys:
            return session.keys[key], False
        session.last_position += 1
        stored = _Stored(
            session.last_position, role, encoded, encoded_metadata, key, datetime.now(UTC)
        )
        session.messages.append(stored)
        self._bytes += stored.size
        if key is not None:
            session.keys[key] = stored
        if len(session.messages) > self.max_messages:
            self._drop_oldest(session)
        while self._bytes > self.max_bytes:
            oldest_id, oldest = next(iter(self._sessions.items()))
            if oldest.messages[0] is stored:
                break  # the one message left is this one, alone over the bound: kept
            self._drop_oldest(oldest)
            if not oldest.messages:
                del self._sessions[oldest_id]
        return stored, True

    async def list(
        self, session_id: str, after: str | None = None, limit: int = 100
    ) -> HistoryPage:
        start = parse_cursor(after)
        check_limit(limit)
        session = self._sessions.get(session_id)
        stored = session.messages if session else []
        # Positions increase along the list: find the first one past the cursor.
        low, high = 0, len(stored)
        while low < high:
            middle = (low + high) // 2
            if stored[middle].position <= start:
                low = middle + 1
            else:
                high = middle
        chosen = stored[low : low + limit + 1]
        more = len(chosen) > limit
        messages = [self._message(session_id, item) for item in chosen[:limit]]
        return HistoryPage(messages, messages[-1].cursor if more else None)

    async def delete(self, session_id: str) -> int:
        session = self._sessions.pop(session_id, None)
        if session is None:
            return 0
        self._drop_session(session)
        return len(session.messages)

    def _drop_oldest(self, session: _Session) -> None:
        dropped = session.messages.pop(0)
        self._bytes -= dropped.size
        if dropped.key is not None:
            session.keys.pop(dropped.key, None)

    def _drop_session(self, session: _Session) -> None:
        self._bytes -= sum(stored.size for stored in session.messages)

    @staticmethod
    def _message(session_id: str, stored: _Stored) -> HistoryMessage:
        return HistoryMessage(
            session_id=session_id,
            position=stored.position,
            role=stored.role,
            content=json.loads(stored.content),
            metadata=json.loads(stored.metadata),
            key=stored.key,
            created_at=stored.created_at,
        )


_SCALARS = frozenset({str, int, float, bool, type(None)})  # exact types: no subclass surprises


def _as_stored(value: Any, encoded: str) -> Any:
    """``value`` as reading it back would give it: the value itself (a copy of a flat dict) when
    JSON keeps it unchanged — scalars, dicts of them with text keys, as a task's turns mostly
    are — else decoded from what was stored. Either way the caller shares nothing with the
    store, and appends skip most of a decode."""
    if type(value) in _SCALARS:
        return value
    if type(value) is dict and all(
        type(k) is str and type(v) in _SCALARS for k, v in value.items()
    ):
        return dict(value)
    return json.loads(encoded)
