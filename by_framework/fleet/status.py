"""The fleet's status: workers, agent types' queues and the tasks ended lately, read from the
engine's ``FleetView`` in a few round trips."""

from collections import Counter
from dataclasses import dataclass
from typing import Any

from by_framework.ports import FleetSnapshot, FleetView, QueueInfo, WorkerInfo

STATUS_SCHEMA = 1
"""Version of ``FleetStatus.as_dict``'s layout: fields may be added, never changed or removed."""
DEFAULT_HEARTBEAT_INTERVAL = 5.0  # for a worker that published no profile


def is_alive(worker: WorkerInfo) -> bool:
    """Online, and its heartbeat not late by more than two intervals (and a second): a worker
    killed outright stays online until its heartbeat key expires, but its heartbeats stop."""
    age = worker.heartbeat_age
    if not worker.online or age is None:
        return False
    profile = worker.profile
    interval = profile.heartbeat_interval if profile is not None else DEFAULT_HEARTBEAT_INTERVAL
    return age <= 2 * (interval or DEFAULT_HEARTBEAT_INTERVAL) + 1.0


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    worker_id: str
    state: str
    """``running``, ``draining``, ``evicted``, ``stopping``, ``offline`` (its heartbeat key
    expired), or ``unknown`` (an older worker that reports no state)."""
    agent_types: tuple[str, ...]
    host: str | None
    pid: int | None
    uptime: float | None
    in_flight: int | None
    slots: int | None
    heartbeat_age: float | None
    config_version: int | None

    @classmethod
    def of(cls, info: WorkerInfo) -> "WorkerStatus":
        profile, report = info.profile, info.report
        state = report.state if report is not None else "unknown"
        return cls(
            worker_id=info.worker_id,
            state=state if info.online else "offline",
            agent_types=info.agent_types,
            host=profile.host if profile else None,
            pid=profile.pid if profile else None,
            uptime=max(0.0, info.read_at - profile.started_at) if profile else None,
            in_flight=report.in_flight if report else None,
            slots=profile.slots if profile else None,
            heartbeat_age=info.heartbeat_age,
            config_version=report.config_version if report else None,
        )


@dataclass(frozen=True, slots=True)
class AgentTypeStatus:
    agent_type: str
    online_workers: int
    queued: int | None
    """Sent and not yet fetched by any worker; None when Redis cannot tell (then at most
    ``length``)."""
    length: int
    pending: int
    """Fetched by a worker and not finished (running, waiting for a slot or a sub-call)."""
    oldest_pending_age: float | None
    """Seconds since the oldest pending entry was sent."""


@dataclass(frozen=True, slots=True)
class FleetStatus:
    at: float
    """Unix time by Redis's clock: when it was read."""
    window: float
    """Seconds back ``tasks`` counts, to the minute."""
    workers: tuple[WorkerStatus, ...]
    agent_types: tuple[AgentTypeStatus, ...]
    tasks: dict[str, int]
    """Tasks ended within the window, by status, as the known workers counted them."""
    dead_letters: int

    def as_dict(self) -> dict[str, Any]:
        """The ``status --json`` document (docs/operations.md describes it)."""
        return {
            "schema": STATUS_SCHEMA,
            "at": round(self.at, 3),
            "window_seconds": self.window,
            "workers": [
                {
                    "worker_id": w.worker_id,
                    "state": w.state,
                    "agent_types": list(w.agent_types),
                    "host": w.host,
                    "pid": w.pid,
                    "uptime_seconds": _rounded(w.uptime),
                    "in_flight": w.in_flight,
                    "slots": w.slots,
                    "last_heartbeat_age_seconds": _rounded(w.heartbeat_age),
                    "config_version": w.config_version,
                }
                for w in self.workers
            ],
            "agent_types": [
                {
                    "agent_type": a.agent_type,
                    "online_workers": a.online_workers,
                    "queued": a.queued,
                    "stream_length": a.length,
                    "pending": a.pending,
                    "oldest_pending_age_seconds": _rounded(a.oldest_pending_age),
                }
                for a in self.agent_types
            ],
            "tasks": dict(sorted(self.tasks.items())),
            "dead_letters": self.dead_letters,
        }


async def fleet_status(view: FleetView, window: float) -> FleetStatus:
    """The fleet now, with the tasks ended in the last ``window`` seconds. Agent types with no
    online worker and nothing queued or pending are left out."""
    return status_of(await view.snapshot(), window)


def status_of(snapshot: FleetSnapshot, window: float) -> FleetStatus:
    """``fleet_status`` of a snapshot already read (the dashboard draws its chart from the same
    one)."""
    online = Counter(
        agent_type
        for worker in snapshot.workers
        if worker.online
        for agent_type in worker.agent_types
    )
    agent_types = tuple(
        _agent_type(queue, online[queue.agent_type], snapshot.at)
        for queue in snapshot.queues
        if online[queue.agent_type] or queue.length or queue.pending
    )
    return FleetStatus(
        at=snapshot.at,
        window=window,
        workers=tuple(WorkerStatus.of(worker) for worker in snapshot.workers),
        agent_types=agent_types,
        tasks=_ended_within(snapshot, window),
        dead_letters=snapshot.dead_letters,
    )


def _agent_type(queue: QueueInfo, online: int, now: float) -> AgentTypeStatus:
    oldest = queue.oldest_pending_at
    return AgentTypeStatus(
        agent_type=queue.agent_type,
        online_workers=online,
        queued=queue.queued,
        length=queue.length,
        pending=queue.pending,
        oldest_pending_age=None if oldest is None else max(0.0, now - oldest),
    )


def _ended_within(snapshot: FleetSnapshot, window: float) -> dict[str, int]:
    """The workers' per-minute counts of the minutes that overlap the window."""
    first_minute = int((snapshot.at - window) // 60)
    totals: Counter[str] = Counter()
    for worker in snapshot.workers:
        if worker.report is None:
            continue
        for minute, counts in worker.report.ended.items():
            if minute >= first_minute:
                totals.update(counts)
    return dict(totals)


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)
