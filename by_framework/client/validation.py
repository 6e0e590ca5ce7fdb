"""What a client checks before it writes anything: the header and command of a new task."""

from typing import Any

from pydantic import ValidationError

from by_framework.errors import InvalidMessageError
from by_framework.protocol import AskAgentCommand, MessageHeader
from by_framework.protocol.header import SESSION_ID, SESSION_ID_CHARACTERS


def new_header(what: str, **fields: Any) -> MessageHeader:
    """The header of a new task made of ``fields``; ``InvalidMessageError`` saying that it
    cannot ``what`` ("send this message") and why, naming each bad field."""
    session_id = fields.get("session_id")
    if isinstance(session_id, str) and not SESSION_ID.fullmatch(session_id):
        raise InvalidMessageError(
            f"cannot {what}: session_id {session_id!r} must be made of {SESSION_ID_CHARACTERS}"
        )
    try:
        return MessageHeader(**fields)
    except ValidationError as exc:
        raise _invalid(what, exc) from None


def new_ask(what: str, **fields: Any) -> AskAgentCommand:
    """A new task's command made of ``fields``; ``InvalidMessageError`` naming each bad one
    (e.g. a stream mode or multitask strategy no worker knows)."""
    try:
        return AskAgentCommand(**fields)
    except ValidationError as exc:
        raise _invalid(what, exc) from None


def _invalid(what: str, exc: ValidationError) -> InvalidMessageError:
    problems = "; ".join(
        f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in exc.errors()
    )
    return InvalidMessageError(f"cannot {what}: {problems}")
