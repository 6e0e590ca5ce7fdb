"""GatewayWorker: the class users subclass to serve agent types."""

from abc import ABC, abstractmethod
from typing import Any

from by_framework.errors import QueryError
from by_framework.protocol import AgentTaskResult, MessageHeader, TaskCommand
from by_framework.worker.context import AgentContext
from by_framework.worker.retry import RetryPolicy


class GatewayWorker(ABC):
    """Implement ``get_agent_types`` and ``process_command``; the engine does the rest.

    ``on_startup`` / ``on_shutdown`` run once per worker process, around the consumption loop.
    """

    @abstractmethod
    def get_agent_types(self) -> list[str]:
        """The agent types this worker serves: its routing and registration."""

    @abstractmethod
    async def process_command(
        self, command: TaskCommand, context: AgentContext
    ) -> AgentTaskResult | dict[str, Any] | None:
        """Run one command (a new message, or a ``ResumeCommand`` carrying the user's answer to
        the task's ``ask_user``); return its result (an ``AgentTaskResult``, a dict of its
        fields, or None for a plain completion). An exception fails the task with its
        message."""

    async def answer_query(self, name: str, args: dict[str, Any], header: MessageHeader) -> Any:
        """Answer a client's question about the state of ``header.session_id`` with
        ``header.target_agent_type`` (``client.get_state``, ``get_history``, ``update_state``;
        ``header.user_code`` is the caller's): plain JSON, or raise and the client gets a
        ``QueryError`` with the message. The adapters (LangGraph, ADK) answer from their
        checkpointer or session store; by default a worker answers none."""
        raise QueryError(f"{type(self).__name__} answers no {name!r} questions")

    def get_retry_policy(self, agent_type: str) -> RetryPolicy | None:
        """How to retry a task of ``agent_type`` whose ``process_command`` raised; None (the
        default): never, the task ends FAILED at once."""
        return None

    async def on_startup(self) -> None:
        """Called once before the worker consumes its first command."""

    async def on_shutdown(self) -> None:
        """Called once after the worker drained its in-flight tasks."""
