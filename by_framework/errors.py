"""Exceptions raised to users. Each message says what was wrong and what to do."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from by_framework.protocol.gaps import EventGap


class ByFrameworkError(Exception):
    """Base of every error this package raises on purpose."""


class NoOnlineWorkerError(ByFrameworkError):
    """No online worker serves the agent type (or the named worker is offline)."""


class WorkerIdInUseError(ByFrameworkError):
    """Another live process holds this worker id."""


class InvalidContentError(ByFrameworkError, TypeError):
    """Command content that cannot travel as JSON."""


class TaskNotFoundError(ByFrameworkError, LookupError):
    """No execution record for that message id (never sent, or past its retention)."""


class TaskTimeoutError(ByFrameworkError, TimeoutError):
    """A wait for a task's result ran out of time; the task itself goes on."""


class ConfigurationError(ByFrameworkError, ValueError):
    """Settings that cannot work together."""


class InvalidMessageError(ByFrameworkError, ValueError):
    """A command whose header fields are missing or malformed (empty session id, ...)."""


class InvalidScheduleError(ByFrameworkError, ValueError):
    """A schedule that cannot fire: a malformed cron expression, an unknown time zone, a time
    in the past."""


class TaskCancelledError(ByFrameworkError):
    """The task was cancelled: it may not start sub-calls, and waits for replies end.
    ``reason``: the cancel's, where the refusal came from the cancel itself."""

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class SessionBusyError(ByFrameworkError):
    """A message sent with ``multitask_strategy="reject"`` while a run of its session by its
    agent type is in flight (``busy_with`` names that run's message id)."""

    def __init__(self, session_id: str, agent_type: str, busy_with: str) -> None:
        super().__init__(
            f"session {session_id!r} has a run of {agent_type!r} in flight (task {busy_with}); "
            "multitask_strategy='reject' refuses a message then: send it once that run has "
            "ended, or with 'enqueue', 'interrupt' or 'rollback'"
        )
        self.busy_with = busy_with


class QueryError(ByFrameworkError):
    """A question about a session's state (``get_state``, ``get_history``, ``update_state``)
    that its worker could not answer: it raised (its message says what), it answers no such
    question, or no worker of the agent type answered in time."""


class TaskNotWaitingError(ByFrameworkError, ValueError):
    """A resume for a task that is not waiting for the user (finished, running, or resumed)."""


class ReplayDivergedError(ByFrameworkError):
    """A re-run of a task made a different sub-call than its first run under the same call
    number: its code does not issue sub-calls in a deterministic order."""


class EventWriteError(ByFrameworkError):
    """A task's event could not be written to its session stream (Redis refused it); raised at
    the task's next emit."""


class EventsTrimmedError(ByFrameworkError):
    """A reader of a session's events (``events(..., on_gap="raise")``) fell so far behind that
    the stream's cap trimmed events it had not read; ``gap`` says which."""

    def __init__(self, gap: "EventGap") -> None:
        super().__init__(
            f"{gap.describe()}: raise data_stream_maxlen or read faster, or read with "
            f"on_gap='mark' to go on past the gap"
        )
        self.gap = gap


class WorkerOrderError(ByFrameworkError):
    """An operator's drain, resume or evict that could not be carried out or confirmed."""


class DeadLetterNotFoundError(ByFrameworkError, LookupError):
    """No dead letter with that id: never there, or replayed, purged or trimmed since."""

    def __init__(self, dead_id: str) -> None:
        super().__init__(
            f"no dead letter {dead_id!r}: list them with `python -m by_framework dead-letter list`"
        )
        self.dead_id = dead_id


class DeadLetterReplayError(ByFrameworkError):
    """A dead letter that cannot be replayed; the message says why."""
