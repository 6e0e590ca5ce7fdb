"""What a worker publishes about itself: its profile, and how its tasks ended lately.

Ended tasks are counted in memory by the minute and published with the heartbeat, so that the
fleet's view costs no Redis command per task.
"""

import os
import secrets
import socket
import time
from collections import Counter

from by_framework.ports import WorkerProfile
from by_framework.settings import Settings

MINUTES_KEPT = 60
"""How far back the counts go: the longest window ``status --window`` can show."""


class EndedTasks:
    """Counts of ended tasks by status, and the run time of those that ran, per minute (Unix
    time // 60), for the last hour."""

    def __init__(self) -> None:
        self._minutes: dict[int, Counter[str]] = {}
        self._run_time: dict[int, tuple[float, int]] = {}

    def add(self, status: str, seconds: float | None = None) -> None:
        """One task ended; ``seconds``: how long it ran (None: it did not run, given up)."""
        minute = int(time.time() // 60)
        counts = self._minutes.get(minute)
        if counts is None:
            counts = self._minutes[minute] = Counter()
            self._forget_before(minute - MINUTES_KEPT + 1)
        counts[status] += 1
        if seconds is not None:
            total, runs = self._run_time.get(minute, (0.0, 0))
            self._run_time[minute] = (total + seconds, runs + 1)

    def by_minute(self) -> dict[int, dict[str, int]]:
        self._forget_before(int(time.time() // 60) - MINUTES_KEPT + 1)
        return {minute: dict(counts) for minute, counts in self._minutes.items()}

    def run_time_by_minute(self) -> dict[int, tuple[float, int]]:
        """Minute -> (seconds summed, runs)."""
        self._forget_before(int(time.time() // 60) - MINUTES_KEPT + 1)
        return dict(self._run_time)

    def _forget_before(self, first: int) -> None:
        for minute in [minute for minute in self._minutes if minute < first]:
            del self._minutes[minute]
            self._run_time.pop(minute, None)


def worker_profile(settings: Settings) -> WorkerProfile:
    """This process's profile, with a new instance name."""
    return WorkerProfile(
        instance=secrets.token_hex(8),
        host=socket.gethostname(),
        pid=os.getpid(),
        started_at=time.time(),
        slots=settings.max_concurrency,
        heartbeat_interval=settings.heartbeat_interval,
    )
