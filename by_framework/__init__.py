"""by-framework: a distributed agent scheduling engine on Redis Streams."""

from by_framework.callables import CallableWorker, agent, serve
from by_framework.client.byai import ByaiGatewayClient
from by_framework.client.gateway import GatewayClient, SendResponse
from by_framework.discovery import DiscoveryClient, DiscoveryHttpClient
from by_framework.errors import (
    ByFrameworkError,
    ConfigurationError,
    EventsTrimmedError,
    EventWriteError,
    InvalidContentError,
    InvalidMessageError,
    InvalidScheduleError,
    NoOnlineWorkerError,
    QueryError,
    ReplayDivergedError,
    SessionBusyError,
    TaskCancelledError,
    TaskNotFoundError,
    TaskNotWaitingError,
    TaskTimeoutError,
    WorkerIdInUseError,
)
from by_framework.history import (
    HistoryMessage,
    HistoryPage,
    HistoryStore,
    MemoryHistoryStore,
    SessionHistory,
    open_history_store,
)
from by_framework.plugins import (
    AgentConfig,
    Plugin,
    PluginBuildContext,
    PluginManifest,
    PluginRegistry,
)
from by_framework.ports import ReloadAck
from by_framework.protocol import (
    AgentState,
    AgentTaskResult,
    ArtifactEvent,
    AskAgentCommand,
    AskUserEvent,
    CancelTaskCommand,
    ErrorEvent,
    EventGap,
    MessageHeader,
    MultitaskStrategy,
    ReloadPluginsCommand,
    ResumeCommand,
    SessionEvent,
    StateChangeEvent,
    StreamChunkEvent,
    StreamMode,
    StreamPartEvent,
    TaskCommand,
    TaskEndEvent,
    TaskResultEvent,
)
from by_framework.protocol.byai import BaiYingMessage
from by_framework.protocol.records import TaskRecord
from by_framework.protocol.schedules import Schedule, ScheduleState
from by_framework.redis.connection import close_redis, init_redis
from by_framework.redis.discovery import ServiceRegistry
from by_framework.redis.registry import WorkerRegistry
from by_framework.settings import Settings
from by_framework.worker.base import GatewayWorker
from by_framework.worker.context import AgentContext
from by_framework.worker.retry import RetryPolicy
from by_framework.worker.run import run_worker, serve_worker
from by_framework.worker.runner import WorkerRunner

__all__ = [
    "AgentConfig",
    "AgentContext",
    "AgentState",
    "AgentTaskResult",
    "ArtifactEvent",
    "AskAgentCommand",
    "AskUserEvent",
    "BaiYingMessage",
    "ByFrameworkError",
    "ByaiGatewayClient",
    "CallableWorker",
    "CancelTaskCommand",
    "ConfigurationError",
    "DiscoveryClient",
    "DiscoveryHttpClient",
    "ErrorEvent",
    "EventGap",
    "EventWriteError",
    "EventsTrimmedError",
    "GatewayClient",
    "GatewayWorker",
    "HistoryMessage",
    "HistoryPage",
    "HistoryStore",
    "InvalidContentError",
    "InvalidMessageError",
    "InvalidScheduleError",
    "MemoryHistoryStore",
    "MessageHeader",
    "MultitaskStrategy",
    "NoOnlineWorkerError",
    "Plugin",
    "PluginBuildContext",
    "PluginManifest",
    "PluginRegistry",
    "QueryError",
    "ReloadAck",
    "ReloadPluginsCommand",
    "ReplayDivergedError",
    "ResumeCommand",
    "RetryPolicy",
    "Schedule",
    "ScheduleState",
    "SendResponse",
    "ServiceRegistry",
    "SessionBusyError",
    "SessionEvent",
    "SessionHistory",
    "Settings",
    "StateChangeEvent",
    "StreamChunkEvent",
    "StreamMode",
    "StreamPartEvent",
    "TaskCancelledError",
    "TaskCommand",
    "TaskEndEvent",
    "TaskNotFoundError",
    "TaskNotWaitingError",
    "TaskRecord",
    "TaskResultEvent",
    "TaskTimeoutError",
    "WorkerIdInUseError",
    "WorkerRegistry",
    "WorkerRunner",
    "agent",
    "close_redis",
    "init_redis",
    "open_history_store",
    "run_worker",
    "serve",
    "serve_worker",
]
