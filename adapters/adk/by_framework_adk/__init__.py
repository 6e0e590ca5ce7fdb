"""Google ADK agents as by-framework workers.

``AdkWorker`` serves an ADK agent as an agent type; ``remote_agent_tool`` / ``remote_batch_tool``
give ADK agents the other agent types (any framework) as tools; ``ask_user_tool`` (or any ADK
``LongRunningFunctionTool``) asks the user and waits, holding nothing, for the resume.
"""

from by_framework_adk.questions import ask_user_tool
from by_framework_adk.services import (
    artifact_service_from_url,
    memory_service_from_url,
    session_service_from_url,
)
from by_framework_adk.tools import (
    AgentCall,
    RemoteAgentTool,
    RemoteBatchTool,
    current_context,
    remote_agent_tool,
    remote_batch_tool,
    task_scope,
)
from by_framework_adk.worker import AdkWorker, NothingToResumeError, adk_worker, serve_agent

__all__ = [
    "AdkWorker",
    "AgentCall",
    "NothingToResumeError",
    "RemoteAgentTool",
    "RemoteBatchTool",
    "adk_worker",
    "artifact_service_from_url",
    "ask_user_tool",
    "current_context",
    "memory_service_from_url",
    "remote_agent_tool",
    "remote_batch_tool",
    "serve_agent",
    "session_service_from_url",
    "task_scope",
]
