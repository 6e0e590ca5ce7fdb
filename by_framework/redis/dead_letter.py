"""The dead-letter stream: listing, inspecting, replaying and purging rejected control entries.

Workers write an entry there for a malformed command (``RedisControlPlane.reject``) and for one
that used up its deliveries (the ``give_up`` script), all built by ``dead_letter_fields`` in the
layout ``by_framework.protocol.dead_letter`` describes and reads back.
"""

import hashlib
import re
import time
from collections.abc import Mapping
from typing import NamedTuple

from redis.exceptions import ResponseError

from by_framework.errors import DeadLetterNotFoundError, DeadLetterReplayError
from by_framework.protocol.codec import ENTRY_FIELD
from by_framework.protocol.dead_letter import (
    DROPPED_FIELD,
    FIELD_PREFIX,
    SHA256_PREFIX,
    SIZE_PREFIX,
    DeadLetter,
)
from by_framework.protocol.signing import SIGNATURE_FIELD, sign, signed_stream
from by_framework.redis.connection import RedisClient
from by_framework.redis.keys import KeySpace
from by_framework.redis.replies import entries
from by_framework.redis.scripts import _HELPERS, Script

REASON_CHARS = 1_000  # a reason quotes what it rejects (pydantic's locations): keep it bounded
_CUT_NOTE_BYTES = 96  # what a cut field's size and sha256 take beside its head
_STREAM_ID = re.compile(r"\d+-\d+")  # a full id: "5" alone would match every "5-n" in XRANGE


class RequeueFailedArgs(NamedTuple):
    message_id: str  # 1
    reason: str  # 2: the dead letter's
    now: float  # 3


# KEYS: the session registry of a dead letter's task
# The record's step of a replay: a record this dead letter failed (given up: the same error)
# returns to QUEUED with fresh deliveries; a record that ended any other way is left alone.
# Returns "ok" (also when there is no record or it has not ended) or "ended:<status>".
REQUEUE_FAILED = Script(
    "requeue_failed",
    RequeueFailedArgs,
    _HELPERS
    + """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 'ok' end
local rec = cjson.decode(raw)
if rec.status == 'failed' and rec.error == ARGV[2] then
  rec.worker_id = ''
  rec.delivery_count = 0
  rec.error = nil
  rec.finished_at = nil
  set_status(rec, 'queued', tonumber(ARGV[3]))
  redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(rec))
  redis.call('HDEL', KEYS[1], ARGV[1] .. ':r')
elseif rec.status == 'completed' or rec.status == 'failed' or rec.status == 'cancelled' then
  return 'ended:' .. rec.status
end
return 'ok'
""",
)


def dead_letter_fields(
    reason: str, stream: str, entry_id: str, at: float, entry: Mapping[bytes, bytes], limit: int
) -> dict[bytes, bytes]:
    """The fields of the dead letter of ``entry``: every writer goes through here, so that no
    dead letter holds much more than ``limit`` bytes of the entry, whatever its size."""
    head = {
        b"reason": reason[:REASON_CHARS].encode(errors="backslashreplace"),
        b"stream": stream.encode(),
        b"entry_id": entry_id.encode(),
        b"at": repr(at).encode(),
    }
    return head | bounded_copy(entry, limit)


def bounded_copy(entry: Mapping[bytes, bytes], limit: int) -> dict[bytes, bytes]:
    """The entry's fields as ``field:<name>``: whole when they fit in ``limit`` bytes; else the
    smallest first, each cut to what room is left (with the size and sha256 of its whole value),
    and those past the limit left out (counted in ``dropped``)."""
    if sum(len(name) + len(value) for name, value in entry.items()) <= limit:
        return {FIELD_PREFIX + name: value for name, value in entry.items()}
    copy: dict[bytes, bytes] = {}
    room = limit
    by_size = sorted(entry.items(), key=lambda item: len(item[1]))
    for kept, (name, value) in enumerate(by_size):
        room -= len(name) + _CUT_NOTE_BYTES
        if room <= 0:
            copy[DROPPED_FIELD] = b"%d" % (len(by_size) - kept)
            break
        copy[FIELD_PREFIX + name] = value[:room]
        if len(value) > room:
            copy[SIZE_PREFIX + name] = b"%d" % len(value)
            copy[SHA256_PREFIX + name] = hashlib.sha256(value).hexdigest().encode()
        room -= min(room, len(value))
    return copy


class DeadLetters:
    """The dead-letter stream of one key prefix, for operators (the ``dead-letter`` command, the
    dashboard): the engine's ``DeadLetterStore``."""

    def __init__(
        self, redis: RedisClient, keys: KeySpace, group: str, signing_key: bytes | None = None
    ) -> None:
        self._redis = redis
        self._signing_key = signing_key
        self._keys = keys
        self._stream = keys.dead_letter_stream()
        self._group = group
        self._requeue_failed = redis.register_script(REQUEUE_FAILED.source)

    async def list(self, count: int = 50, after: str = "-") -> list[DeadLetter]:
        """Up to ``count`` entries, oldest first, after the entry id ``after`` ("-": the start)."""
        start = after if after == "-" else f"({after}"
        found = entries(await self._redis.xrange(self._stream, min=start, count=count))
        return [DeadLetter.from_entry(dead_id, raw) for dead_id, raw in found]

    async def get(self, dead_id: str) -> DeadLetter | None:
        if not _STREAM_ID.fullmatch(dead_id):
            return None
        found = entries(await self._redis.xrange(self._stream, min=dead_id, max=dead_id))
        return DeadLetter.from_entry(*found[0]) if found else None

    async def replay(self, dead_id: str) -> str:
        """Put the entry back on its stream as a new entry (its id is returned) and remove it
        from the dead-letter stream, after its record. A task given up on is queued again with fresh
        deliveries; a task that ended otherwise is not replayed. A signed entry is signed
        afresh, which takes ``signing_key``."""
        letter = await self.get(dead_id)
        if letter is None:
            raise DeadLetterNotFoundError(dead_id)
        signature = self._fresh_signature(letter)
        if letter.truncated:
            raise DeadLetterReplayError(
                f"dead letter {dead_id!r} keeps only part of the rejected entry (it was over "
                f"dead_letter_entry_bytes), so it cannot be replayed; send the command again "
                f"from its source (`dead-letter show {dead_id}` gives its size and sha256)"
            )
        if not letter.fields:
            raise DeadLetterReplayError(
                f"dead letter {dead_id!r} holds none of the rejected entry's fields; "
                f"nothing to replay"
            )
        try:
            await self._redis.xpending(letter.stream, self._group)
        except ResponseError:
            raise DeadLetterReplayError(
                f"stream {letter.stream!r} has no consumer group {self._group!r}, so no worker "
                f"would read a replayed entry: start a worker for it first"
            ) from None
        # The record first (the session's slot), then the entry back on its stream and the dead
        # letter gone (two more slots): a crash between them leaves the record QUEUED and the
        # dead letter in place, and replaying it again finishes the job (a duplicate entry is
        # skipped by ``begin``).
        if letter.session_id is not None and letter.message_id is not None:
            keys = [self._keys.session_registry(letter.session_id)]
            args = RequeueFailedArgs(letter.message_id, letter.reason, time.time())
            reply: bytes = await self._requeue_failed(keys=keys, args=REQUEUE_FAILED.argv(args))
            verdict, _, status = reply.decode().partition(":")
            if verdict == "ended":
                raise DeadLetterReplayError(
                    f"task {letter.message_id!r} already {status}; nothing to replay "
                    f"(remove the dead letter with `dead-letter purge {dead_id}`)"
                )
        fields = dict(letter.fields)
        if signature:
            fields[SIGNATURE_FIELD] = _bytes(signature)
        pipe = self._redis.pipeline(transaction=False)
        pipe.xadd(letter.stream, fields)  # type: ignore[arg-type]
        pipe.xdel(self._stream, dead_id)
        new_id, _ = await pipe.execute()
        return new_id.decode()

    def _fresh_signature(self, letter: DeadLetter) -> bytes | str:
        """A new signature for a signed entry going back on its stream (its own may have
        expired), or "" for an unsigned one. Only a genuine signature made for that stream is
        renewed: a replay never turns a forged or copied entry into a valid one."""
        signature = letter.fields.get(SIGNATURE_FIELD)
        if signature is None:
            return ""
        if self._signing_key is None:
            raise DeadLetterReplayError(
                f"dead letter {letter.id!r} is a signed command: replaying it needs a fresh "
                "signature, which only the signing key makes; set BYAI_SIGNING_KEY to the "
                "workers' key and replay again"
            )
        envelope = letter.fields.get(ENTRY_FIELD, b"")
        if signed_stream(envelope, signature, self._signing_key) != letter.stream:
            raise DeadLetterReplayError(
                f"dead letter {letter.id!r} has no genuine signature for {letter.stream!r} "
                "(forged, altered, copied from another stream, or signed with another key), so "
                f"it is not signed again; remove it with `dead-letter purge {letter.id}`"
            )
        return sign(envelope, self._signing_key, letter.stream)

    async def purge(self, dead_id: str | None = None) -> int:
        """Delete one entry, or all of them (``None``); how many were deleted."""
        if dead_id is None:
            return await self._redis.xtrim(self._stream, maxlen=0, approximate=False)
        if not _STREAM_ID.fullmatch(dead_id):
            return 0
        return await self._redis.xdel(self._stream, dead_id)


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()
