"""AgentContext: what a running task sees of the engine."""

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from by_framework.ports import EventLog
from by_framework.protocol import (
    AgentState,
    ArtifactEvent,
    MessageHeader,
    StateChangeEvent,
    StreamChunkEvent,
    encode_event,
)
from by_framework.worker.workspace import Workspace


class AgentContext:
    """The per-task runtime: identity of the task, its output stream, its workspace."""

    def __init__(
        self,
        header: MessageHeader,
        events: EventLog,
        worker_id: str,
        workspace: Workspace,
        first_seq: int = 1,
    ) -> None:
        self.header = header
        self.worker_id = worker_id
        self._events = events
        self._workspace = workspace
        self._seq = first_seq

    @property
    def session_id(self) -> str:
        return self.header.session_id

    @property
    def trace_id(self) -> str:
        return self.header.trace_id

    @property
    def message_id(self) -> str:
        return self.header.message_id

    @property
    def parent_message_id(self) -> str | None:
        return self.header.parent_message_id

    @property
    def current_agent_id(self) -> str:
        """The agent type this task runs as."""
        return self.header.target_agent_type

    @property
    def user_code(self) -> str | None:
        return self.header.user_code

    @property
    def metadata(self) -> dict[str, Any]:
        return self.header.metadata

    @property
    def workspace(self) -> Path:
        """This task's own directory, created on first use and removed when the task ends."""
        return self._workspace.path

    async def emit_chunk(self, content: str, kind: str = "text") -> None:
        """Stream a piece of output (``kind="reasoning"`` for thoughts and tool logs)."""
        await self.emit(StreamChunkEvent(content=content, kind=kind))

    async def emit_state(self, state: str | AgentState, detail: str | None = None) -> None:
        await self.emit(StateChangeEvent(state=str(state), detail=detail))

    async def emit_artifact(self, artifact: ArtifactEvent) -> None:
        await self.emit(artifact)

    async def emit(self, event: BaseModel) -> None:
        """Append any event to the session's data stream, numbered in this task's sequence."""
        await self._events.append(self.session_id, self.encode(event))

    def encode(self, event: BaseModel) -> bytes:
        """The event's envelope, taking this task's next sequence number."""
        seq, self._seq = self._seq, self._seq + 1
        return encode_event(self.message_id, self.current_agent_id, seq, event)
