"""A dead-letter entry: its layout on the dead-letter stream, and its parsed form.

Workers write an entry there for a malformed command and for one that used up its deliveries:
``reason``, ``stream``, ``entry_id``, ``at`` and the rejected entry's own fields as
``field:<name>``. A field cut to fit ``dead_letter_entry_bytes`` keeps its head, with
``size:<name>`` and ``sha256:<name>`` of its whole value beside it; ``dropped`` counts the
fields left out (``by_framework.redis.dead_letter`` writes them).
"""

import json
from dataclasses import dataclass
from typing import Any

from pydantic_core import from_json

FIELD_PREFIX = b"field:"
SIZE_PREFIX = b"size:"
SHA256_PREFIX = b"sha256:"
DROPPED_FIELD = b"dropped"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead-letter entry; ``fields`` are the rejected entry's own (``e``: its envelope), and
    ``cut`` the size and sha256 of each one kept only in part, by name."""

    id: str
    reason: str
    stream: str
    entry_id: str
    at: float
    fields: dict[bytes, bytes]
    session_id: str | None
    message_id: str | None
    cut: dict[bytes, tuple[int, str]]
    dropped: int

    @property
    def truncated(self) -> bool:
        """Whether part of the rejected entry was left out: it cannot be replayed."""
        return bool(self.cut) or self.dropped != 0

    def cut_note(self) -> str:
        """What was left out, for people: each cut field's whole size and sha256."""
        notes = [
            f"{name.decode(errors='backslashreplace')}: {size} bytes, sha256 {digest}"
            for name, (size, digest) in self.cut.items()
        ]
        if self.dropped:
            notes.append(f"{self.dropped if self.dropped > 0 else 'some'} field(s) dropped")
        return "; ".join(notes)

    @classmethod
    def from_entry(cls, dead_id: bytes, raw: dict[bytes, bytes]) -> "DeadLetter":
        fields = {
            name.removeprefix(FIELD_PREFIX): value
            for name, value in raw.items()
            if name.startswith(FIELD_PREFIX)
        }
        session_id, message_id = _header_ids(fields.get(b"e"))
        cut = {
            name.removeprefix(SIZE_PREFIX): (
                _count(size),
                raw.get(SHA256_PREFIX + name.removeprefix(SIZE_PREFIX), b"").decode(),
            )
            for name, size in raw.items()
            if name.startswith(SIZE_PREFIX)
        }
        return cls(
            id=dead_id.decode(),
            reason=raw.get(b"reason", b"").decode(errors="replace"),
            stream=raw.get(b"stream", b"").decode(errors="replace"),
            entry_id=raw.get(b"entry_id", b"").decode(errors="replace"),
            at=float(raw.get(b"at", 0)),
            fields=fields,
            session_id=session_id,
            message_id=message_id,
            cut=cut,
            dropped=_count(raw.get(DROPPED_FIELD, b"0")),
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view: values decoded as UTF-8 (bad bytes escaped), the envelope parsed."""
        fields: dict[str, Any] = {}
        for name, value in self.fields.items():
            text = value.decode(errors="backslashreplace")
            fields[name.decode(errors="backslashreplace")] = text
            if name == b"e":
                try:  # pydantic's parser refuses deep nesting that json.dumps could not print
                    fields["e"] = from_json(text)
                except ValueError:
                    pass  # not JSON, or too deep: shown as the text it is
        return {
            "id": self.id,
            "reason": self.reason,
            "stream": self.stream,
            "entry_id": self.entry_id,
            "at": self.at,
            "session_id": self.session_id,
            "message_id": self.message_id,
            "fields": fields,
            "truncated": self.truncated,
            "cut": {
                name.decode(errors="backslashreplace"): {"size": size, "sha256": digest}
                for name, (size, digest) in self.cut.items()
            },
            "dropped_fields": self.dropped,
        }


def _count(value: bytes) -> int:
    """A count a worker wrote; -1 for anything else (the stream is writable by others too)."""
    return int(value) if value.isdigit() else -1


def _header_ids(envelope: bytes | None) -> tuple[str | None, str | None]:
    """Session and message id of an envelope that is JSON with a header, else None."""
    try:
        header = json.loads(envelope or b"")["header"]
    except (ValueError, TypeError, KeyError, RecursionError):
        return None, None
    if not isinstance(header, dict):
        return None, None
    return _text(header.get("session_id")), _text(header.get("message_id"))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None
