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


@dataclass(slots=True)
class _Stored:
    position: int
    role: str
    content: str  # JSON text, decoded on every read: callers never share a mutable value
    metadata: str
    key: str | None
    created_at: datetime


@dataclass(slots=True)
class _Session:
    last_position: int = 0
    messages: list[_Stored] = field(default_factory=list)
    keys: dict[str, _Stored] = field(default_factory=dict)


class MemoryHistoryStore:
    """Sessions in a dict, messages in lists: what the port promises, with nothing in the way.

    Each worker process has its own, so a task sees only the turns its own process recorded;
    use a shared backend (PostgreSQL) for a history that any worker sees. Bounded: past
    ``max_sessions`` the session appended to least recently goes, and past ``max_messages`` a
    session drops its oldest messages.
    """

    def __init__(
        self, max_sessions: int = DEFAULT_MAX_SESSIONS, max_messages: int = DEFAULT_MAX_MESSAGES
    ) -> None:
        if max_sessions < 1 or max_messages < 1:
            raise ValueError("max_sessions and max_messages must be at least 1")
        self.max_sessions = max_sessions
        self.max_messages = max_messages
        self._sessions: OrderedDict[str, _Session] = OrderedDict()

    @classmethod
    def from_url(cls, url: str) -> "MemoryHistoryStore":
        """``memory://`` with optional ``?max_sessions=N&max_messages=N``."""
        options = dict(parse_qsl(urlsplit(url).query))
        unknown = set(options) - {"max_sessions", "max_messages"}
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
        check_append(session_id, role, key)
        encoded, encoded_metadata = encode_json(content), encode_metadata(metadata)
        # No await from here on: appends of concurrent tasks cannot interleave.
        session = self._sessions.get(session_id)
        if session is None:
            session = self._sessions[session_id] = _Session()
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
        self._sessions.move_to_end(session_id)
        if key is not None and key in session.keys:
            return self._message(session_id, session.keys[key])
        session.last_position += 1
        stored = _Stored(
            session.last_position, role, encoded, encoded_metadata, key, datetime.now(UTC)
        )
        session.messages.append(stored)
        if key is not None:
            session.keys[key] = stored
        if len(session.messages) > self.max_messages:
            dropped = session.messages.pop(0)
            if dropped.key is not None:
                session.keys.pop(dropped.key, None)
        return HistoryMessage(
            session_id=session_id,
            position=stored.position,
            role=role,
            content=_as_stored(content, encoded),
            metadata=_as_stored(dict(metadata or {}), encoded_metadata),
            key=key,
            created_at=stored.created_at,
        )

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
        return len(session.messages) if session else 0

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
