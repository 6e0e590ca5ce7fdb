"""The execution record of a task, as stored in its session's registry hash."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from by_framework.protocol.results import AgentState, AgentTaskResult


class TaskRecord(BaseModel):
    """Status timeline and outcome of one task (one message id)."""

    model_config = ConfigDict(extra="ignore")

    message_id: str
    session_id: str
    agent_type: str
    status: AgentState
    worker_id: str | None = None
    parent_message_id: str | None = None
    task_group_id: str | None = None
    trace_id: str | None = None
    parent_span_id: str | None = None
    """The span its task spans go under when traced (kept so that a resumed run has it too)."""
    user_code: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: float
    updated_at: float
    started_at: float | None = None
    finished_at: float | None = None
    delivery_count: int = 0
    config_version: int | None = None
    """The version of the worker's plugin configs its last run started with."""
    run: int = 0
    """How many times the task was resumed (after ``ask_user``)."""
    children: list[str] = Field(default_factory=list)
    """Its sub-calls' message ids, in dispatch order."""
    error: str | None = None
    timeline: list[tuple[AgentState, float]] = Field(default_factory=list)
    result: AgentTaskResult | None = None

    @field_validator(
        "worker_id",
        "parent_message_id",
        "task_group_id",
        "user_code",
        "error",
        "parent_span_id",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        # Lua's cjson has no None: the scripts store "" (or JSON null) for "not set".
        return value or None

    @field_validator("metadata", mode="before")
    @classmethod
    def _empty_table(cls, value: Any) -> Any:
        # cjson writes an empty Lua table back as {} or [] alike.
        return value or {}
