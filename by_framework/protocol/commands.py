"""Commands travel on control streams; ``type`` tells them apart."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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


Command = Annotated[
    AskAgentCommand | ResumeCommand | CancelTaskCommand | ReloadPluginsCommand,
    Field(discriminator="type"),
]
