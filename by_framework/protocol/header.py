"""The header every command carries: who sent it, for whom, and where it sits in the task tree."""

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from by_framework.protocol.ids import new_id

MAX_ID_LENGTH = 256
SESSION_ID_CHARACTERS = "letters, digits and - _ . : @ + = ~"
SESSION_ID = re.compile(r"[A-Za-z0-9_.:@+=~-]+")
"""What a new session's id may hold: safe in a URL path, a shell and a Redis hash tag. Checked
where sessions are made (a send); ids read back are taken as they are."""


class MessageHeader(BaseModel):
    """Routing and tracing context of one command.

    ``message_id`` identifies the task (its execution record); ``session_id`` names the data stream
    its output goes to; ``parent_message_id`` links a sub-call to the task that issued it.
    """

    model_config = ConfigDict(extra="ignore")

    message_id: str = Field(default_factory=new_id, min_length=1, max_length=MAX_ID_LENGTH)
    session_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    trace_id: str = Field(default_factory=new_id, min_length=1, max_length=MAX_ID_LENGTH)
    source_agent_type: str | None = None
    target_agent_type: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    parent_message_id: str | None = None
    task_group_id: str | None = None
    parent_span_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{16}$")
    """The span (in ``trace_id``'s trace) this task's span goes under: the W3C trace-context
    parent id of the sub-call's ``call_agent`` or ``dispatch_group`` span, set when tracing."""
    user_code: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("session_id", "target_agent_type")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("parent_span_id")
    @classmethod
    def _valid_span_id(cls, value: str | None) -> str | None:
        if value is not None and value == "0" * 16:
            raise ValueError("must not be all zeros (an invalid W3C span id)")
        return value
