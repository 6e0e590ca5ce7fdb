"""Pure data: headers, commands, events, results and their wire codec. No I/O here."""

from by_framework.protocol.codec import (
    ENVELOPE_VERSION,
    CommandEnvelope,
    EventEnvelope,
    MalformedEntry,
    SessionEvent,
    decode_command,
    decode_event,
    encode_command,
    encode_event,
)
from by_framework.protocol.commands import (
    AskAgentCommand,
    CancelTaskCommand,
    Command,
    DrainWorkerCommand,
    EvictWorkerCommand,
    MultitaskStrategy,
    ReloadPluginsCommand,
    ResumeCommand,
    ResumeWorkerCommand,
    StreamMode,
    WorkerCommand,
)
from by_framework.protocol.events import (
    ArtifactEvent,
    AskUserEvent,
    ErrorEvent,
    Event,
    StateChangeEvent,
    StreamChunkEvent,
    StreamPartEvent,
    TaskEndEvent,
    TaskResultEvent,
)
from by_framework.protocol.gaps import EventGap
from by_framework.protocol.header import MessageHeader
from by_framework.protocol.ids import new_id
from by_framework.protocol.results import TERMINAL_STATES, AgentState, AgentTaskResult

__all__ = [
    "ENVELOPE_VERSION",
    "TERMINAL_STATES",
    "AgentState",
    "AgentTaskResult",
    "ArtifactEvent",
    "AskAgentCommand",
    "AskUserEvent",
    "CancelTaskCommand",
    "Command",
    "CommandEnvelope",
    "DrainWorkerCommand",
    "ErrorEvent",
    "Event",
    "EventEnvelope",
    "EventGap",
    "EvictWorkerCommand",
    "MalformedEntry",
    "MessageHeader",
    "MultitaskStrategy",
    "ReloadPluginsCommand",
    "ResumeCommand",
    "ResumeWorkerCommand",
    "SessionEvent",
    "StateChangeEvent",
    "StreamChunkEvent",
    "StreamMode",
    "StreamPartEvent",
    "TaskEndEvent",
    "TaskResultEvent",
    "WorkerCommand",
    "decode_command",
    "decode_event",
    "encode_command",
    "encode_event",
    "new_id",
]
