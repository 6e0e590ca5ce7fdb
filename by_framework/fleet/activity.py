"""The fleet's recent activity minute by minute: tasks ended and their mean run time, summed
over what the known workers publish with their heartbeats (``WorkerReport``)."""

from collections import Counter
from dataclasses import dataclass
from typing import Any

from by_framework.ports import FleetSnapshot


@dataclass(frozen=True, slots=True)
class MinuteActivity:
    minute: int
    """Unix time // 60."""
    ended: dict[str, int]
    """Tasks ended in that minute, by status (given-up ones included)."""
    run_seconds: float
    """The run time of the tasks that ran and ended in it, summed."""
    runs: int

    @property
    def mean_run_seconds(self) -> float | None:
        return self.run_seconds / self.runs if self.runs else None

    def as_dict(self) -> dict[str, Any]:
        mean = self.mean_run_seconds
        return {
            "minute": self.minute,
            "ended": dict(sorted(self.ended.items())),
            "ended_total": sum(self.ended.values()),
            "mean_run_seconds": None if mean is None else round(mean, 6),
        }


def minute_activity(snapshot: FleetSnapshot, minutes: int) -> tuple[MinuteActivity, ...]:
    """The last ``minutes`` minutes up to the snapshot's own, oldest first, every one of them
    (a quiet minute has zeros). A worker that left the registry takes its counts with it."""
    last = int(snapshot.at // 60)
    first = last - minutes + 1
    ended: dict[int, Counter[str]] = {minute: Counter() for minute in range(first, last + 1)}
    run_time = dict.fromkeys(ended, (0.0, 0))
    for worker in snapshot.workers:
        report = worker.report
        if report is None:
            continue
        for minute, counts in report.ended.items():
            if minute in ended:
                ended[minute].update(counts)
        for minute, (seconds, runs) in report.run_time.items():
            if minute in run_time:
                total, count = run_time[minute]
                run_time[minute] = (total + seconds, count + runs)
    return tuple(MinuteActivity(minute, dict(ended[minute]), *run_time[minute]) for minute in ended)
