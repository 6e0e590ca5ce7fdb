"""The wire format: one versioned JSON envelope per stream entry, in the field ``e``.

Control entries hold ``{"v": 1, "header": {...}, "command": {...}}``; data entries hold
``{"v": 1, "message_id": ..., "agent_type": ..., "seq": n, "ts": t, "event": {...}}``. Fields a
newer peer adds are ignored; anything else that does not fit is a ``MalformedEntry`` naming the
problem.
Never pickle: nothing read from Redis is ever executed.
"""

import json
import math
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import from_json, to_json

from by_framework.errors import InvalidContentError
from by_framework.protocol.commands import Command
from by_framework.protocol.events import Event
from by_framework.protocol.header import MessageHeader
from by_framework.protocol.signing import SIGNATURE_FIELD, signature_problem

ENVELOPE_VERSION = 1
ENTRY_FIELD = b"e"
DEFAULT_MAX_ENTRY_BYTES = 1024 * 1024


class MalformedEntry(ValueError):
    """A stream entry that cannot be decoded; ``session_id`` is set when it could be recovered."""

    def __init__(self, reason: str, session_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.session_id = session_id


class CommandEnvelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    v: int
    send_id: str | None = None
    """The send that wrote the command's record (``with_send_id``): a worker runs the command
    only against a record of that send. None on entries written without one (sub-calls,
    cancels, earlier versions)."""
    header: MessageHeader
    command: Command


class EventEnvelope(BaseModel):
    """One event as stored on a session's data stream."""

    model_config = ConfigDict(extra="ignore")

    v: int = ENVELOPE_VERSION
    message_id: str
    agent_type: str | None = None
    seq: int = Field(ge=0)
    ts: float
    event: Event


class SessionEvent(EventEnvelope):
    """An event read back from a data stream, with the stream id to resume after."""

    stream_id: str


_COMMAND_START = b'{"v":%d,"header":' % ENVELOPE_VERSION
_SEND_START = b'{"v":%d,"send_id":' % ENVELOPE_VERSION
_command_envelope = TypeAdapter(CommandEnvelope)
_session_event = TypeAdapter(SessionEvent)


def encode_command(header: MessageHeader, command: BaseModel) -> bytes:
    """The entry bytes; ``InvalidContentError`` (a TypeError) naming the problem when content
    cannot travel as JSON."""
    try:
        return b"".join(
            (
                _COMMAND_START,
                header.__pydantic_serializer__.to_json(header, exclude_none=True),
                b',"command":',
                command.__pydantic_serializer__.to_json(command),
                b"}",
            )
        )
    except (TypeError, ValueError) as exc:
        raise InvalidContentError(
            f"command content is not JSON-serializable: {exc}; send str, numbers, lists or dicts"
        ) from None


def with_send_id(envelope: bytes, send_id: str) -> bytes | None:
    """The envelope with the send's id as its first field (signed with it), or None for one
    ``encode_command`` did not make."""
    if not envelope.startswith(_COMMAND_START):
        return None
    return b"".join((_SEND_START, to_json(send_id), b',"header":', envelope[len(_COMMAND_START) :]))


def encode_event(
    message_id: str, agent_type: str | None, seq: int, event: BaseModel, ts: float | None = None
) -> bytes:
    return EventEncoder(message_id, agent_type).encode(seq, event, ts)


class EventEncoder:
    """One task's event envelopes: the part that is the same for each (the version, the
    message id, the agent type) encoded once; a streaming task encodes one per token."""

    def __init__(self, message_id: str, agent_type: str | None) -> None:
        self._head = b'{"v":%d,"message_id":%s,"agent_type":%s,"seq":' % (
            ENVELOPE_VERSION, to_json(message_id), to_json(agent_type),
        )  # fmt: skip

    def encode(self, seq: int, event: BaseModel, ts: float | None = None) -> bytes:
        """The envelope; the event's fields that are None left out (every event field that can
        be None defaults to None: a result's unset content, data and error cost a retained
        record ~40 bytes, as the header's do not)."""
        body = event.__pydantic_serializer__.to_json(event, exclude_none=True)
        return b'%s%d,"ts":%r,"event":%s}' % (
            self._head, seq, time.time() if ts is None else float(ts), body,
        )  # fmt: skip


def decode_command(
    fields: dict[bytes, bytes],
    max_bytes: int = DEFAULT_MAX_ENTRY_BYTES,
    signing_key: bytes | None = None,
    *,
    stream: str = "",
    entry_id: str | None = None,
    max_age: float = math.inf,
) -> CommandEnvelope:
    """The command in a control entry; with ``signing_key``, only one signed for ``stream``
    (where the entry was read) less than ``max_age`` seconds before Redis added it (the time of
    ``entry_id``)."""
    raw = _envelope_bytes(fields, max_bytes)
    if signing_key is not None:
        signature = fields.get(SIGNATURE_FIELD)
        added_at = None if entry_id is None else entry_time(entry_id)
        problem = signature_problem(raw, signature, signing_key, stream, max_age, added_at)
        if problem is not None:
            raise MalformedEntry(problem, _guess_session(raw))
    try:
        envelope = _command_envelope.validate_json(raw)
    except ValidationError as exc:
        raise MalformedEntry(_describe(exc), _guess_session(raw)) from None
    if "message_id" not in envelope.header.model_fields_set:
        # The record, the journal and every retry hang on this id: never invent one here.
        raise MalformedEntry("header.message_id: Field required", envelope.header.session_id)
    if envelope.v != ENVELOPE_VERSION:
        raise MalformedEntry(
            f"unsupported envelope version {envelope.v} (this worker reads {ENVELOPE_VERSION})",
            envelope.header.session_id,
        )
    return envelope


def decode_event(stream_id: str, fields: dict[bytes, bytes]) -> SessionEvent:
    """Parsed, then validated once with the stream id in place (a third less than validating
    the envelope and then building the SessionEvent from it: a client decodes every event;
    the stream id spliced into the JSON, to validate the bytes at once, saved nothing)."""
    raw = _envelope_bytes(fields, max_bytes=None)
    try:
        body = from_json(raw)
    except ValueError as exc:
        raise MalformedEntry(f"malformed entry: not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise MalformedEntry(f"malformed entry: not a JSON object but {type(body).__name__}")
    body["stream_id"] = stream_id
    try:
        return _session_event.validate_python(body)
    except ValidationError as exc:
        raise MalformedEntry(_describe(exc)) from None


def entry_time(entry_id: str) -> float | None:
    """When Redis added a stream entry: the milliseconds its id starts with."""
    milliseconds, _, _ = entry_id.partition("-")
    return int(milliseconds) / 1000 if milliseconds.isdigit() else None


def _envelope_bytes(fields: dict[bytes, bytes], max_bytes: int | None) -> bytes:
    raw = fields.get(ENTRY_FIELD)
    if raw is None:
        names = sorted(k.decode(errors="replace") for k in fields)
        raise MalformedEntry(f"entry has no 'e' field (fields: {names})")
    if max_bytes is not None and len(raw) > max_bytes:
        raise MalformedEntry(
            f"entry is {len(raw)} bytes, over the {max_bytes}-byte limit", _guess_session(raw)
        )
    return raw


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error["loc"]) or "entry"
        problems.append(f"{where}: {error['msg']}")
    return "malformed entry: " + "; ".join(problems)


def _guess_session(raw: bytes) -> str | None:
    """The session id of an entry that failed validation, if its JSON still names one (json
    gives up on deep nesting with RecursionError: such an entry names none)."""
    try:
        body: Any = json.loads(raw)
        session_id = body["header"]["session_id"]
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
    return session_id if isinstance(session_id, str) and session_id.strip() else None
