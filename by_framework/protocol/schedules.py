"""A scheduled run as stored: what to send and when (``definition``), and what its firings did
(``state``). Both are JSON in the deployment's schedule hashes (redis/keys.py)."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ScheduleState(BaseModel):
    """What a schedule's firings did so far."""

    model_config = ConfigDict(extra="ignore")

    fired: int = 0
    """How many ticks sent their task."""
    last_message_id: str | None = None
    last_fired_at: float | None = None
    last_error: str | None = None
    """Why the last try sent nothing (no online worker); cleared by the next that sends."""


class Schedule(BaseModel):
    """A task sent at one time (``at``) or on every tick of a cron expression (``cron``, in
    ``timezone``), each time a new task of ``session_id``; its message id names the schedule
    and the tick (``sch-<schedule id>-<tick in ms>``), and its metadata carries
    ``schedule_id`` and ``scheduled_for`` (the tick, Unix time)."""

    model_config = ConfigDict(extra="ignore")

    schedule_id: str
    target_agent_type: str
    session_id: str
    content: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    user_code: str | None = None
    cron: str | None = None
    timezone: str = "UTC"
    at: float | None = None
    """Unix time of a one-time schedule (None for a cron one)."""
    created_at: float
    next_at: float | None = None
    """When it fires next (Unix time), as read; while a worker fires it, when that worker's
    claim runs out."""
    pending_tick: float | None = None
    """A tick taken and not sent yet (Unix time): being fired, waiting for a worker of its
    agent type, or held by a worker that died (another takes it over when the claim runs
    out). Its task is sent for this tick, however late."""
    state: ScheduleState = Field(default_factory=ScheduleState)

    def definition_json(self) -> bytes:
        """What is stored of it: everything but what is read from elsewhere."""
        return self.model_dump_json(exclude={"next_at", "pending_tick", "state"}).encode()


def tick_message_id(schedule_id: str, tick: float) -> str:
    """The message id of a tick's task: the same for every worker that fires that tick, so the
    task is sent once however many try (its record is claimed under this id)."""
    return f"sch-{schedule_id}-{round(tick * 1000)}"
