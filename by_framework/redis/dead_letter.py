"""The dead-letter stream: listing, inspecting, replaying and purging rejected control entries.

Workers write an entry there for a malformed command (``RedisControlPlane.reject``) and for one
that used up its deliveries (the ``give_up`` script): ``reason``, ``stream``, ``entry_id``, ``at``
and the rejected entry's own fields as ``field:<name>``.
"""

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from by_framework.errors import ByFrameworkError
from by_framework.redis.keys import KeySpace
from by_framework.redis.scripts import _HELPERS, Script

FIELD_PREFIX = b"field:"
_STREAM_ID = re.compile(r"\d+-\d+")  # a full id: "5" alone would match every "5-n" in XRANGE

# KEYS: dead-letter stream, the entry's original stream, its session registry (when known)
# ARGV: dead-letter entry id, consumer group, now, message id (when known)
# Puts the rejected entry back on its stream as a new entry and deletes the dead letter. A record
# this dead letter failed (given up: the same error) returns to QUEUED with fresh deliveries; a
# record that ended any other way is left alone and nothing is replayed.
# Returns "ok:<new entry id>", "missing", "nogroup", "empty" or "ended:<status>".
REPLAY = Script(
    "replay_dead_letter",
    _HELPERS
    + """
local entry = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])[1]
if not entry then return 'missing' end
if redis.pcall('XPENDING', KEYS[2], ARGV[2]).err then return 'nogroup' end
local reason
local fields = {}
for i = 1, #entry[2], 2 do
  local name, value = entry[2][i], entry[2][i + 1]
  if name == 'reason' then
    reason = value
  elseif string.sub(name, 1, 6) == 'field:' then
    table.insert(fields, string.sub(name, 7))
    table.insert(fields, value)
  end
end
if #fields == 0 then return 'empty' end
local raw = KEYS[3] and redis.call('HGET', KEYS[3], ARGV[4])
if raw then
  local rec = cjson.decode(raw)
  if rec.status == 'failed' and rec.error == reason then
    rec.worker_id = ''
    rec.delivery_count = 0
    rec.error = ''
    rec.finished_at = nil
    set_status(rec, 'queued', tonumber(ARGV[3]))
    redis.call('HSET', KEYS[3], ARGV[4], cjson.encode(rec))
    redis.call('HDEL', KEYS[3], ARGV[4] .. ':r')
  elseif rec.status == 'completed' or rec.status == 'failed' or rec.status == 'cancelled' then
    return 'ended:' .. rec.status
  end
end
local new_id = redis.call('XADD', KEYS[2], '*', unpack(fields))
redis.call('XDEL', KEYS[1], ARGV[1])
return 'ok:' .. new_id
""",
)


class DeadLetterNotFoundError(ByFrameworkError, LookupError):
    """No dead letter with that id: never there, or replayed, purged or trimmed since."""

    def __init__(self, dead_id: str) -> None:
        super().__init__(
            f"no dead letter {dead_id!r}: list them with `python -m by_framework dead-letter list`"
        )
        self.dead_id = dead_id


class DeadLetterReplayError(ByFrameworkError):
    """A dead letter that cannot be replayed; the message says why."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead-letter entry; ``fields`` are the rejected entry's own (``e``: its envelope)."""

    id: str
    reason: str
    stream: str
    entry_id: str
    at: float
    fields: dict[bytes, bytes]
    session_id: str | None
    message_id: str | None

    @classmethod
    def from_entry(cls, dead_id: bytes, raw: dict[bytes, bytes]) -> "DeadLetter":
        fields = {
            name.removeprefix(FIELD_PREFIX): value
            for name, value in raw.items()
            if name.startswith(FIELD_PREFIX)
        }
        session_id, message_id = _header_ids(fields.get(b"e"))
        return cls(
            id=dead_id.decode(),
            reason=raw.get(b"reason", b"").decode(errors="replace"),
            stream=raw.get(b"stream", b"").decode(errors="replace"),
            entry_id=raw.get(b"entry_id", b"").decode(errors="replace"),
            at=float(raw.get(b"at", 0)),
            fields=fields,
            session_id=session_id,
            message_id=message_id,
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view: values decoded as UTF-8 (bad bytes escaped), the envelope parsed."""
        fields: dict[str, Any] = {}
        for name, value in self.fields.items():
            text = value.decode(errors="backslashreplace")
            fields[name.decode(errors="backslashreplace")] = text
            if name == b"e":
                try:
                    fields["e"] = json.loads(text)
                except ValueError:
                    pass  # not JSON: shown as the text it is
        return {
            "id": self.id,
            "reason": self.reason,
            "stream": self.stream,
            "entry_id": self.entry_id,
            "at": self.at,
            "session_id": self.session_id,
            "message_id": self.message_id,
            "fields": fields,
        }


class DeadLetters:
    """The dead-letter stream of one key prefix, for operators (``dead-letter`` CLI)."""

    def __init__(self, redis: Redis, keys: KeySpace, group: str) -> None:
        self._redis = redis
        self._keys = keys
        self._stream = keys.dead_letter_stream()
        self._group = group
        self._replay = redis.register_script(REPLAY.source)

    async def list(self, count: int = 50, after: str = "-") -> list[DeadLetter]:
        """Up to ``count`` entries, oldest first, after the entry id ``after`` ("-": the start)."""
        start = after if after == "-" else f"({after}"
        entries = await self._redis.xrange(self._stream, min=start, count=count)
        return [DeadLetter.from_entry(dead_id, raw) for dead_id, raw in entries]

    async def get(self, dead_id: str) -> DeadLetter | None:
        if not _STREAM_ID.fullmatch(dead_id):
            return None
        entries = await self._redis.xrange(self._stream, min=dead_id, max=dead_id)
        return DeadLetter.from_entry(*entries[0]) if entries else None

    async def replay(self, dead_id: str) -> str:
        """Put the entry back on its stream as a new entry (its id is returned) and remove it
        from the dead-letter stream, at once. A task given up on is queued again with fresh
        deliveries; a task that ended otherwise is not replayed."""
        letter = await self.get(dead_id)
        if letter is None:
            raise DeadLetterNotFoundError(dead_id)
        keys = [self._stream, letter.stream]
        if letter.session_id is not None and letter.message_id is not None:
            keys.append(self._keys.session_registry(letter.session_id))
        args = [letter.id, self._group, time.time(), letter.message_id or ""]
        reply: bytes = await self._replay(keys=keys, args=args)
        verdict, _, detail = reply.decode().partition(":")
        if verdict == "ok":
            return detail
        if verdict == "missing":  # purged or replayed meanwhile
            raise DeadLetterNotFoundError(dead_id)
        if verdict == "nogroup":
            raise DeadLetterReplayError(
                f"stream {letter.stream!r} has no consumer group {self._group!r}, so no worker "
                f"would read a replayed entry: start a worker for it first"
            )
        if verdict == "empty":
            raise DeadLetterReplayError(
                f"dead letter {dead_id!r} holds none of the rejected entry's fields; "
                f"nothing to replay"
            )
        raise DeadLetterReplayError(
            f"task {letter.message_id!r} already {detail}; nothing to replay "
            f"(remove the dead letter with `dead-letter purge {dead_id}`)"
        )

    async def purge(self, dead_id: str | None = None) -> int:
        """Delete one entry, or all of them (``None``); how many were deleted."""
        if dead_id is None:
            return await self._redis.xtrim(self._stream, maxlen=0, approximate=False)
        if not _STREAM_ID.fullmatch(dead_id):
            return 0
        return await self._redis.xdel(self._stream, dead_id)


def _header_ids(envelope: bytes | None) -> tuple[str | None, str | None]:
    """Session and message id of an envelope that is JSON with a header, else None."""
    try:
        header = json.loads(envelope or b"")["header"]
    except (ValueError, TypeError, KeyError):
        return None, None
    if not isinstance(header, dict):
        return None, None
    return _text(header.get("session_id")), _text(header.get("message_id"))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None
