"""Opt-in retries of failed tasks, per agent type. Off by default: a task that calls an LLM costs
money every time it runs, so only the agent's author can say a failure is worth another go."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``max_attempts`` runs in all (1: no retry), waiting ``backoff_seconds`` before the second,
    times ``multiplier`` before each next one, at most ``max_backoff_seconds``.

    Only an exception raised by ``process_command`` is retried; a result with status FAILED is
    the task's own verdict and stands. The wait holds the task's concurrency slot.
    """

    max_attempts: int = 3
    backoff_seconds: float = 1.0
    multiplier: float = 2.0
    max_backoff_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")
        if self.backoff_seconds < 0 or self.multiplier < 1:
            raise ValueError("RetryPolicy needs backoff_seconds >= 0 and multiplier >= 1")

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before run number ``attempt`` (2, 3, ...)."""
        return min(
            self.max_backoff_seconds, self.backoff_seconds * self.multiplier ** (attempt - 2)
        )
