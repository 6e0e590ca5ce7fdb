"""What every history backend shares: the JSON form of content, cursors and page limits."""

import json
import re
from collections.abc import Mapping
from typing import Any

MAX_PAGE = 1000
"""The largest ``limit`` of one ``HistoryStore.list`` call."""

_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
"""Built once: ``json.dumps`` with options builds an encoder on every call."""

# A \u0000 escape that is not itself an escaped backslash followed by "u0000".
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def encode_json(value: Any, what: str = "content") -> str:
    """The JSON text a backend stores. Refuses what PostgreSQL's JSONB cannot hold, so that every
    backend accepts and refuses the same values: non-JSON values, NaN / infinities, NUL
    characters and unpaired surrogates."""
    try:
        text = _ENCODER.encode(value)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"history {what} must be JSON: {exc}") from None
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                f"history {what} holds an unpaired surrogate (not valid UTF-8)"
            ) from None
    if "\\u0000" in text and _NUL_ESCAPE.search(text):
        raise ValueError(f"history {what} holds a NUL character (U+0000), which cannot be stored")
    return text


def encode_metadata(metadata: Mapping[str, Any] | None) -> str:
    return encode_json(metadata if type(metadata) is dict else dict(metadata or {}), "metadata")


def check_append(session_id: str, role: str, key: str | None) -> None:
    """Session id, role and key are non-empty text that every backend can store."""
    _check_text("session id", session_id)
    _check_text("role", role)
    if key is not None:
        _check_text("key", key)


def _check_text(what: str, value: str) -> None:
    if type(value) is str and value.isascii() and value and "\x00" not in value:
        return  # the common case, checked without encoding it
    if not isinstance(value, str) or not value:
        raise ValueError(f"a history message needs a non-empty {what}, got {value!r}")
    if "\x00" in value:
        raise ValueError(f"a history {what} cannot hold a NUL character (U+0000)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"a history {what} holds an unpaired surrogate") from None


def parse_cursor(after: str | None) -> int:
    """The position a cursor stands for (0: the start)."""
    if after is None or after == "":
        return 0
    if not (isinstance(after, str) and after.isascii() and after.isdigit()):
        raise ValueError(f"not a history cursor: {after!r} (use a page's next_cursor)")
    return int(after)


def check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be an integer from 1 to {MAX_PAGE}, got {limit!r}")
