"""Task states and the result a task ends with."""

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


class AgentState(StrEnum):
    """Lifecycle of an execution record. Values are lower case; parsing ignores case."""

    QUEUED = "queued"
    RUNNING = "running"
    WAITING_REPLY = "waiting_reply"
    WAITING_USER = "waiting_user"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @classmethod
    def _missing_(cls, value: object) -> "AgentState | None":
        if isinstance(value, str):
            lowered = value.strip().lower()
            for member in cls:
                if member.value == lowered:
                    return member
        return None

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def has_ended_run(self) -> bool:
        """True once the run is over: terminal, or suspended waiting for the user."""
        return self in TERMINAL_STATES or self is AgentState.WAITING_USER


TERMINAL_STATES = frozenset({AgentState.COMPLETED, AgentState.FAILED, AgentState.CANCELLED})
RUN_OUTCOMES = frozenset(
    {AgentState.COMPLETED, AgentState.FAILED, AgentState.CANCELLED, AgentState.WAITING_USER}
)


class AgentTaskResult(BaseModel):
    """What ``process_command`` returns (or a dict of the same shape)."""

    model_config = ConfigDict(extra="ignore")

    status: AgentState = AgentState.COMPLETED
    content: Any = None
    data: dict[str, Any] | None = None
    error: str | None = None

    @field_validator("status")
    @classmethod
    def _run_outcome(cls, value: AgentState) -> AgentState:
        if value not in RUN_OUTCOMES:
            raise ValueError(
                f"a task ends as one of {sorted(s.value for s in RUN_OUTCOMES)}, "
                f"not {value.value!r}"
            )
        return value

    @classmethod
    def coerce(cls, value: "AgentTaskResult | dict[str, Any] | None") -> "AgentTaskResult":
        """Accept what user code returns: a result, a dict of its fields, or None (completed)."""
        if isinstance(value, AgentTaskResult):
            return value
        if value is None:
            return cls()
        if isinstance(value, dict):
            return cls.model_validate(value)
        raise TypeError(
            "process_command must return an AgentTaskResult, a dict such as "
            f"{{'status': 'completed', 'content': ...}} or None, not {type(value).__name__}"
        )
