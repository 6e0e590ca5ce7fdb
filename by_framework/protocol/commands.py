"""Commands travel on control streams; ``type`` tells them apart."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from by_framework.protocol.header import MAX_ID_LENGTH
from by_framework.protocol.results import AgentState


class _Command(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AskAgentCommand(_Command):
    """A task for an agent: the standard request."""

    type: Literal["ask_agent"] = "ask_agent"
    content: Any = None
    wait_for_reply: bool = False
    extra_payload: dict[str, Any] = Field(default_factory=dict)


class ResumeCommand(_Command):
    """Re-invokes a suspended task with the user's (or a child's) reply."""

    type: Literal["resume"] = "resume"
    content: Any = None
    status: AgentState = AgentState.COMPLETED
    reply_data: dict[str, Any] = Field(default_factory=dict)


class CancelTaskCommand(_Command):
    """Stops tasks; ``cascade`` walks the task tree breadth-first."""

    type: Literal["cancel_task"] = "cancel_task"
    message_ids: list[str]
    reason: str = ""
    mode: Literal["graceful", "force"] = "graceful"
    cascade: bool = True


class ReloadPluginsCommand(_Command):
    """Asks every worker to reload its plugins and answer on the ACK stream."""

    type: Literal["reload_plugins"] = "reload_plugins"
    reload_id: str
    reason: str = ""


class _WorkerCommand(_Command):
    """An operator's order to one worker process, on its notice stream. ``instance`` names the
    process it was meant for: a later process under the same worker id ignores it."""

    worker_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    instance: str = Field(min_length=1, max_length=MAX_ID_LENGTH)


class DrainWorkerCommand(_WorkerCommand):
    """Take no new work from the agent types' queues; finish what is in flight."""

    type: Literal["drain_worker"] = "drain_worker"


class ResumeWorkerCommand(_WorkerCommand):
    """Undo a drain or an eviction: take work again."""

    type: Literal["resume_worker"] = "resume_worker"


class EvictWorkerCommand(_WorkerCommand):
    """Hand the work not yet running back to its queues now, and take no new work."""

    type: Literal["evict_worker"] = "evict_worker"


WorkerCommand = DrainWorkerCommand | ResumeWorkerCommand | EvictWorkerCommand

Command = Annotated[
    AskAgentCommand
    | ResumeCommand
    | CancelTaskCommand
    | ReloadPluginsCommand
    | DrainWorkerCommand
    | ResumeWorkerCommand
    | EvictWorkerCommand,
    Field(discriminator="type"),
]
