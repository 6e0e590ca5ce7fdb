"""Raw replies of the stream reads that bypass redis-py's reply callbacks (``HeldConnection``)."""

from collections.abc import Iterator
from typing import Any

Entry = tuple[bytes, dict[bytes, bytes]]


def stream_entries(reply: Any) -> Iterator[tuple[bytes, list[Entry]]]:
    """Each stream of an XREAD / XREADGROUP reply with its entries (id, fields), in the order
    Redis sent them. RESP2 sends ``[[stream, entries], ...]``, RESP3 ``{stream: entries}``; an
    entry is ``[id, [field, value, ...]]``, with no fields when it was deleted while pending."""
    streams = reply.items() if isinstance(reply, dict) else reply or ()
    for stream, entries in streams:
        yield stream, [(entry_id, _pairs(fields)) for entry_id, fields in entries]


def _pairs(fields: list[bytes] | None) -> dict[bytes, bytes]:
    if not fields:
        return {}
    items = iter(fields)
    return dict(zip(items, items, strict=True))


def stream_info(reply: Any) -> dict[bytes, Any]:
    """The fields of an XINFO STREAM reply: RESP3 sends a map, RESP2 ``[name, value, ...]``."""
    if isinstance(reply, dict):
        return reply
    items = iter(reply)
    return dict(zip(items, items, strict=True))
