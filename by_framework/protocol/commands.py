"""Commands travel on control streams; ``type`` tells them apart."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from by_framework.protocol.header import MAX_ID_LENGTH
from by_framework.protocol.results import AgentState


class _Command(BaseModel):
    model_config = ConfigDict(extra="ignore")


MultitaskStrategy = Literal["enqueue", "reject", "interrupt", "rollback"]
"""What a message does when a run of its session by its agent type is in flight (honoured by
workers that take a session's messages one at a time: ``AgentContext.session_turn``):
``enqueue`` waits for it to end; ``reject`` ends at once, FAILED, with the busy run named;
``interrupt`` stops it (its progress kept) and runs next; ``rollback`` stops it, its writes
undone, and runs next."""

StreamMode = Literal["messages", "updates", "values", "custom", "debug"]
"""What of a run a message asks to see streamed (LangGraph's stream modes)."""


class AskAgentCommand(_Command):
    """A task for an agent: the standard request.

    ``configurable``: per-run values (model, persona, tenant...) a worker passes to its agent
    (LangGraph's ``config["configurable"]``, ADK's session state). ``stream_mode``: what of the
    run to stream (None: the worker's default). ``multitask_strategy``: see
    ``MultitaskStrategy``."""

    type: Literal["ask_agent"] = "ask_agent"
    content: Any = None
    wait_for_reply: bool = False
    extra_payload: dict[str, Any] = Field(default_factory=dict)
    configurable: dict[str, Any] = Field(default_factory=dict)
    stream_mode: list[StreamMode] | None = None
    multitask_strategy: MultitaskStrategy = "enqueue"


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


class QueryCommand(_Command):
    """A client's question to one worker of an agent type about a session's state
    (``client.get_state`` and co.), on that worker's notice stream; the answer goes to the list
    ``reply_to`` (a ``QueryAnswer``). ``writes``: it changes the state, so it waits for the
    session's turn like a run."""

    type: Literal["query"] = "query"
    name: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    args: dict[str, Any] = Field(default_factory=dict)
    reply_to: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    writes: bool = False
    timeout: float = Field(default=10.0, gt=0)
    """Seconds the caller waits for the answer: the worker gives up after as long."""


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


TaskCommand = AskAgentCommand | ResumeCommand
"""What a worker's ``process_command`` gets: a new message, or the user's answer that resumes
a task waiting for it."""

WorkerCommand = DrainWorkerCommand | ResumeWorkerCommand | EvictWorkerCommand

Command = Annotated[
    AskAgentCommand
    | ResumeCommand
    | CancelTaskCommand
    | ReloadPluginsCommand
    | QueryCommand
    | DrainWorkerCommand
    | ResumeWorkerCommand
    | EvictWorkerCommand,
    Field(discriminator="type"),
]
