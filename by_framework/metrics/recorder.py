"""What a worker reports for its metrics: calls the runner makes at the points it passes anyway
(a run's start and end, a reclaim, a dead letter, sub-calls sent), and the load it reports when
scraped (read then, so keeping it costs the hot path nothing).

``WorkerMetrics`` itself records nothing: a worker without ``metrics_port`` runs with
``NO_METRICS``, one empty call per point. ``PrometheusMetrics`` (``metrics/prometheus.py``)
records.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from by_framework.ports import Engine


@dataclass(frozen=True, slots=True)
class WorkerLoad:
    """The worker as it is when scraped."""

    in_flight: int
    """Entries fetched and not yet settled: running, waiting for a slot or for sub-calls."""
    slots: int
    """``max_concurrency``."""
    slots_in_use: int
    """Deliveries holding a share of the capacity: fetched and not ended, less tasks waiting
    for sub-calls (they give theirs up)."""
    event_backlog: int
    """Events running tasks emitted that are not yet sent to Redis."""
    hook_failures: int
    """Plugin hook calls that raised, since the start."""
    hook_timeouts: int
    """Plugin hook calls abandoned at ``plugin_hook_timeout_seconds``, since the start."""


class WorkerMetrics:
    """The points the runner reports; this base records nothing."""

    def task_started(self, agent_type: str, entry_id: str) -> None:
        """A run starts; ``entry_id`` is its command's stream id (its time: when queued)."""

    def task_ended(self, agent_type: str, status: str, seconds: float) -> None:
        """A run's outcome is recorded, ``seconds`` after it started."""

    def reclaimed(self, count: int) -> None:
        """Entries taken over from workers that died."""

    def dead_lettered(self) -> None:
        """An entry went to the dead-letter stream."""

    def sub_calls_sent(self, agent_type: str, count: int) -> None:
        """A task of ``agent_type`` sent sub-calls (not a re-run's journaled ones)."""


NO_METRICS = WorkerMetrics()


class Observed(Protocol):
    """What the metrics port reads of a worker (a ``WorkerRunner``)."""

    @property
    def engine(self) -> Engine: ...

    @property
    def agent_types(self) -> Sequence[str]: ...

    @property
    def registered(self) -> bool:
        """Started and holding its worker id."""
        ...

    @property
    def draining(self) -> bool:
        """Takes no new work (drained, evicted or stopping)."""
        ...

    def load(self) -> WorkerLoad: ...
