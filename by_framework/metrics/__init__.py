"""A worker's metrics and health probes (``metrics_port``; prometheus-client, the [metrics]
extra). Only ``open_endpoint`` imports prometheus-client, and only when metrics are on: a worker
without them runs with ``NO_METRICS``."""

from typing import TYPE_CHECKING

from by_framework.errors import ConfigurationError
from by_framework.metrics.recorder import NO_METRICS, Observed, WorkerLoad, WorkerMetrics
from by_framework.settings import Settings

if TYPE_CHECKING:
    from by_framework.metrics.endpoint import MetricsEndpoint

__all__ = ["NO_METRICS", "Observed", "WorkerLoad", "WorkerMetrics", "open_endpoint"]


def open_endpoint(worker: Observed, settings: Settings) -> "MetricsEndpoint":
    """The metrics port of ``worker``, not yet listening (``start`` it)."""
    try:
        from by_framework.metrics.endpoint import MetricsEndpoint
    except ImportError as exc:
        raise ConfigurationError(
            f"metrics_port needs prometheus-client ({exc}): pip install 'by-framework[metrics]'"
        ) from None
    return MetricsEndpoint(worker, settings)
