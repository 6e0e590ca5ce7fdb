"""GatewayWorker: the class users subclass to serve agent types."""

from abc import ABC, abstractmethod
from typing import Any

from by_framework.protocol import AgentTaskResult
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
        self, command: Any, context: AgentContext
    ) -> AgentTaskResult | dict[str, Any] | None:
        """Run one command; return its result (an ``AgentTaskResult``, a dict of its fields, or
        None for a plain completion). An exception fails the task with its message."""

    def get_retry_policy(self, agent_type: str) -> RetryPolicy | None:
        """How to retry a task of ``agent_type`` whose ``process_command`` raised; None (the
        default): never, the task ends FAILED at once."""
        return None

    async def on_startup(self) -> None:
        """Called once before the worker consumes its first command."""

    async def on_shutdown(self) -> None:
        """Called once after the worker drained its in-flight tasks."""
