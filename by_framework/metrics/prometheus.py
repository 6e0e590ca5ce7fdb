"""The worker's metrics, exposed through prometheus-client (the [metrics] extra).

The hot path adds to plain numbers: per agent type, a ``_Series`` made once holds the counts
and histograms of that label set, so a task's start and end are a dict lookup and a few integer
additions (a histogram bucket found by bisection), no label resolution, no dict built per task.
prometheus-client's own metric objects take a lock on every increment: with them, a worker
spent 4.4 % more CPU per no-op task than one without metrics, with these 1.2 %
(``bench/metrics_ab.py``, docs/metrics.md). The numbers are read when scraped, by a collector
in the same event loop, the only thread that writes them: a scrape sees a consistent view.

Labels are the agent type (and a run's status) only, never a session or message id. A task of
an agent type the worker does not list (a command sent to it directly) counts under
``UNSERVED``, so what senders write cannot grow the series. Gauges are read from the worker
when scraped.
"""

import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from by_framework.metrics.recorder import WorkerLoad, WorkerMetrics
from by_framework.protocol import AgentState

UNSERVED = "(unserved)"
"""The agent type label of a task whose agent type the worker does not list."""

ENDED_STATUSES = tuple(
    state.value
    for state in (
        AgentState.COMPLETED,
        AgentState.FAILED,
        AgentState.CANCELLED,
        AgentState.WAITING_USER,
    )
)
TASK_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
"""Buckets of run and queue-wait times: from a no-op task to one of an hour."""
ROUND_TRIP_SECONDS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)


class Histogram:
    """Observations counted into buckets (upper bounds, inclusive; the last one +Inf)."""

    __slots__ = ("_bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self._bounds = tuple(bounds)
        self.counts = [0] * (len(self._bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self._bounds, value)] += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, float]]:
        """``(le, count)`` pairs as the text format has them: each bucket holds those below."""
        buckets: list[tuple[str, float]] = []
        seen = 0
        for bound, count in zip((*self._bounds, float("inf")), self.counts, strict=True):
            seen += count
            buckets.append((floatToGoString(bound), seen))
        return buckets


class _Series:
    """One agent type's numbers."""

    __slots__ = ("ended", "queue_wait", "run_seconds", "started", "sub_calls")

    def __init__(self) -> None:
        self.started = 0
        self.ended = dict.fromkeys(ENDED_STATUSES, 0)
        self.run_seconds = Histogram(TASK_SECONDS)
        self.queue_wait = Histogram(TASK_SECONDS)
        self.sub_calls = 0


class PrometheusMetrics(WorkerMetrics):
    """A worker's metrics, in a registry of its own (``exposition()`` renders it)."""

    def __init__(self, agent_types: Sequence[str], load: Callable[[], WorkerLoad]) -> None:
        self._series = {agent_type: _Series() for agent_type in agent_types}
        self._unserved: _Series | None = None  # made on first use: most workers never show it
        self.reclaims = 0
        self.dead_letters = 0
        self.round_trip = Histogram(ROUND_TRIP_SECONDS)
        self.registry = CollectorRegistry()
        for standard in (ProcessCollector, PlatformCollector, GCCollector):
            standard(registry=self.registry)
        self.registry.register(_Exposed(self, load))

    def exposition(self) -> bytes:
        """The metrics in Prometheus's text format."""
        return generate_latest(self.registry)

    def by_agent_type(self) -> Iterator[tuple[str, _Series]]:
        yield from self._series.items()
        if self._unserved is not None:
            yield UNSERVED, self._unserved

    def _of(self, agent_type: str) -> _Series:
        series = self._series.get(agent_type)
        if series is not None:
            return series
        if self._unserved is None:
            self._unserved = _Series()
        return self._unserved

    # The worker's calls

    def task_started(self, agent_type: str, entry_id: str) -> None:
        series = self._of(agent_type)
        series.started += 1
        try:
            queued_ms = int(entry_id.partition("-")[0])
        except ValueError:  # not a stream id: no time to measure from
            return
        series.queue_wait.observe(max(time.time() - queued_ms / 1000, 0.0))

    def task_ended(self, agent_type: str, status: str, seconds: float) -> None:
        series = self._of(agent_type)
        if status in series.ended:
            series.ended[status] += 1
        series.run_seconds.observe(seconds)

    def reclaimed(self, count: int) -> None:
        self.reclaims += count

    def dead_lettered(self) -> None:
        self.dead_letters += 1

    def sub_calls_sent(self, agent_type: str, count: int) -> None:
        self._of(agent_type).sub_calls += count


class _Exposed(Collector):
    """The worker's numbers as metric families, read when scraped."""

    def __init__(self, metrics: PrometheusMetrics, load: Callable[[], WorkerLoad]) -> None:
        self._metrics = metrics
        self._load = load

    def collect(self) -> Iterator[Metric]:
        metrics = self._metrics
        by_type = ["agent_type"]
        started = CounterMetricFamily("byai_worker_tasks_started", "Runs started.", labels=by_type)
        ended = CounterMetricFamily(
            "byai_worker_tasks_ended",
            "Runs whose outcome was recorded, by status (waiting_user: suspended for the user).",
            labels=[*by_type, "status"],
        )
        run_seconds = HistogramMetricFamily(
            "byai_worker_task_run_seconds",
            "From a run's start to its outcome recorded.",
            labels=by_type,
        )
        queue_wait = HistogramMetricFamily(
            "byai_worker_task_queue_wait_seconds",
            "From the command's entry on its stream (Redis's clock) to its run's start.",
            labels=by_type,
        )
        sub_calls = CounterMetricFamily(
            "byai_worker_sub_calls",
            "Sub-calls sent by tasks of the agent type (a re-run's journaled ones not again).",
            labels=by_type,
        )
        for agent_type, series in metrics.by_agent_type():
            started.add_metric([agent_type], series.started)
            for status, count in series.ended.items():
                ended.add_metric([agent_type, status], count)
            for family, histogram in (
                (run_seconds, series.run_seconds),
                (queue_wait, series.queue_wait),
            ):
                family.add_metric([agent_type], histogram.cumulative(), histogram.sum)
            sub_calls.add_metric([agent_type], series.sub_calls)
        yield from (started, ended, run_seconds, queue_wait, sub_calls)
        yield CounterMetricFamily(
            "byai_worker_reclaims",
            "Entries taken over from workers that died (their lease ran out).",
            value=metrics.reclaims,
        )
        yield CounterMetricFamily(
            "byai_worker_dead_letters",
            "Entries this worker moved to the dead-letter stream.",
            value=metrics.dead_letters,
        )
        yield HistogramMetricFamily(
            "byai_redis_round_trip_seconds",
            "A PING's round trip, once a second, behind the worker's own queued commands.",
            buckets=metrics.round_trip.cumulative(),
            sum_value=metrics.round_trip.sum,
        )
        yield from _load_families(self._load())


def _load_families(load: WorkerLoad) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "byai_worker_tasks_in_flight",
        "Entries fetched and not yet settled: running, waiting for a slot or for sub-calls.",
        value=load.in_flight,
    )
    yield GaugeMetricFamily(
        "byai_worker_slots", "Tasks the worker runs at once (max_concurrency).", value=load.slots
    )
    yield GaugeMetricFamily(
        "byai_worker_slots_in_use",
        "Slots taken: deliveries fetched and not ended, less tasks waiting for sub-calls.",
        value=load.slots_in_use,
    )
    yield GaugeMetricFamily(
        "byai_worker_event_backlog",
        "Events running tasks emitted that are not yet sent to Redis.",
        value=load.event_backlog,
    )
    failures = CounterMetricFamily(
        "byai_plugin_hook_failures",
        "Plugin hook calls that raised (failure) or were abandoned at their timeout.",
        labels=["status"],
    )
    failures.add_metric(["failure"], load.hook_failures)
    failures.add_metric(["timeout"], load.hook_timeouts)
    yield failures
