"""Events travel on a session's data stream; ``type`` tells them apart."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from by_framework.protocol.results import AgentTaskResult


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore")


class StreamChunkEvent(_Event):
    """Incremental output: answer text, or a reasoning / tool log line."""

    type: Literal["chunk"] = "chunk"
    content: str
    kind: Literal["text", "reasoning"] = "text"


class StreamPartEvent(_Event):
    """A part of a run's stream in one of the modes the message asked for (``stream_mode``):
    ``updates`` (what each step's nodes wrote), ``values`` (the whole state after a step),
    ``custom`` (what the agent's code wrote to its stream) or ``debug``. Never answer text:
    tokens are ``StreamChunkEvent``s. ``data`` is plain JSON; ``namespace`` is the path of the
    subgraph it comes from ([] for the top)."""

    type: Literal["part"] = "part"
    mode: Literal["updates", "values", "custom", "debug"]
    data: Any = None
    namespace: list[str] = Field(default_factory=list)


class StateChangeEvent(_Event):
    """A state transition; ``state`` is an ``AgentState`` value or an agent's own label."""

    type: Literal["state"] = "state"
    state: str
    detail: str | None = None


class ArtifactEvent(_Event):
    """Structured output: a file, a URL, or inline data."""

    type: Literal["artifact"] = "artifact"
    url: str | None = None
    name: str | None = None
    mime_type: str | None = None
    data: Any = None


class AskUserEvent(_Event):
    """A question for the end user; the task is suspended until a resume arrives."""

    type: Literal["ask_user"] = "ask_user"
    prompt: str
    options: list[str] | None = None
    data: Any = None


class TaskResultEvent(_Event):
    """The outcome of one run of a task, written once when the run ends."""

    type: Literal["result"] = "result"
    result: AgentTaskResult


class TaskEndEvent(_Event):
    """The last event of one run of a task: readers following a task stop here."""

    type: Literal["end"] = "end"
    status: str


class ErrorEvent(_Event):
    """Something went wrong outside the task's own code, e.g. a malformed command."""

    type: Literal["error"] = "error"
    error: str


Event = Annotated[
    StreamChunkEvent
    | StreamPartEvent
    | StateChangeEvent
    | ArtifactEvent
    | AskUserEvent
    | TaskResultEvent
    | TaskEndEvent
    | ErrorEvent,
    Field(discriminator="type"),
]
