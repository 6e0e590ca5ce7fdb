"""Deploy an existing LangGraph graph as a by-framework worker.

``LangGraphWorker(graph, agent_type=...)`` / ``serve_graph(graph, agent_type=...)``: the graph
scales out over workers, streams tokens, survives crashes through its checkpointer, asks the
user through ``interrupt()``, and calls other agents through ``remote_agent_tool``.
"""

from by_framework_langgraph.interrupts import ask_user_event, resume_value
from by_framework_langgraph.remote import ask_user_tool, remote_agent_tool
from by_framework_langgraph.scope import current_context
from by_framework_langgraph.threads import (
    LocalThreadLock,
    PostgresThreadLock,
    ThreadLock,
    default_thread_id,
)
from by_framework_langgraph.worker import LangGraphWorker, langgraph_worker, serve_graph

__all__ = [
    "LangGraphWorker",
    "LocalThreadLock",
    "PostgresThreadLock",
    "ThreadLock",
    "ask_user_event",
    "ask_user_tool",
    "current_context",
    "default_thread_id",
    "langgraph_worker",
    "remote_agent_tool",
    "resume_value",
    "serve_graph",
]
