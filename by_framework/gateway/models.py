"""Request and response bodies of the HTTP API (task records and results are the protocol's)."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from by_framework.protocol.records import TaskRecord
from by_framework.protocol.results import AgentState


class SendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_type: str = Field(min_length=1, description="The agent type to run the task.")
    content: Any = Field(description="The task's input: any JSON.")
    metadata: dict[str, Any] = Field(default_factory=dict)


class Accepted(BaseModel):
    """A command queued: its task's ids."""

    message_id: str
    session_id: str
    trace_id: str


class ResumeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: Any = Field(default=None, description="The user's answer to the task's ask_user.")
    reply_data: dict[str, Any] = Field(default_factory=dict)


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["graceful", "force"] = "graceful"
    reason: str = ""


class Cancelled(BaseModel):
    cancelled: int = Field(description="Tasks the cancel ended itself (queued or waiting).")
    stopping: dict[str, str] = Field(
        description="Running tasks their workers are stopping: message id -> worker id."
    )


class TaskNode(BaseModel):
    message_id: str
    agent_type: str
    status: AgentState
    children: list["TaskNode"] = Field(default_factory=list)


class SessionTasks(BaseModel):
    session_id: str
    tasks: list[TaskRecord]
    tree: list[TaskNode] = Field(description="The tasks without a parent here, sub-calls below.")


class Pending(BaseModel):
    """The task's run has not ended within the wait: ask again."""

    message_id: str
    status: AgentState


class AgentType(BaseModel):
    agent_type: str
    workers: int = Field(description="Online workers serving it.")


class Agents(BaseModel):
    agents: list[AgentType]


def task_tree(records: list[TaskRecord]) -> list[TaskNode]:
    """The session's tasks as trees: roots are those whose parent is not in the session."""
    nodes = {
        r.message_id: TaskNode(message_id=r.message_id, agent_type=r.agent_type, status=r.status)
        for r in sorted(records, key=lambda r: r.created_at)
    }
    roots: list[TaskNode] = []
    for record in sorted(records, key=lambda r: r.created_at):
        parent = nodes.get(record.parent_message_id or "")
        (parent.children if parent is not None else roots).append(nodes[record.message_id])
    return roots
