"""A worker's metrics port: ``/metrics``, ``/healthz`` and ``/readyz``, served in its loop.

``/healthz`` answers 200 whenever the loop runs (answering at all is the proof). ``/readyz``
answers 200 only while the worker is registered, not draining, and Redis answered a PING within
``PING_FRESH_S``; else 503 and why. The PING goes once a second through the engine, behind the
worker's own queued commands, and its round trip is a metric too.
"""

import asyncio
import logging
import time

from prometheus_client import CONTENT_TYPE_LATEST

from by_framework.common.aio import cancel_and_wait
from by_framework.errors import ConfigurationError
from by_framework.metrics.http import TEXT, Response, serve_http
from by_framework.metrics.prometheus import PrometheusMetrics
from by_framework.metrics.recorder import Observed
from by_framework.settings import Settings

log = logging.getLogger("by_framework.metrics")

PING_INTERVAL_S = 1.0
PING_TIMEOUT_S = 2.0
PING_FRESH_S = 3.0
"""``/readyz`` wants a PING answered within this many seconds."""


class MetricsEndpoint:
    def __init__(self, worker: Observed, settings: Settings) -> None:
        assert settings.metrics_port is not None
        self.metrics = PrometheusMetrics(worker.agent_types, worker.load)
        self._worker = worker
        self._host = settings.metrics_host
        self._port = settings.metrics_port
        self._server: asyncio.Server | None = None
        self._pinging: asyncio.Task[None] | None = None
        self._answered_at: float | None = None  # time.monotonic() of the last PONG
        self._ping_error = "no PING answered yet"

    async def start(self) -> None:
        routes = {"/metrics": self._metrics, "/healthz": _healthy, "/readyz": self._readiness}
        try:
            self._server = await serve_http(self._host, self._port, routes)
        except OSError as exc:
            raise ConfigurationError(
                f"the metrics port {self._host}:{self._port} cannot be opened ({exc}); give "
                "another --metrics-port (BYAI_METRICS_PORT) or --metrics-host"
            ) from None
        self._pinging = asyncio.create_task(self._ping_forever(), name="metrics-ping")
        log.info("metrics on http://%s:%d/metrics", self._host, self._port)

    async def aclose(self) -> None:
        if self._pinging is not None:
            await cancel_and_wait(self._pinging)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _metrics(self) -> Response:
        return 200, CONTENT_TYPE_LATEST, self.metrics.exposition()

    def _readiness(self) -> Response:
        reason = self._not_ready()
        if reason is None:
            return 200, TEXT, b"ready\n"
        return 503, TEXT, f"not ready: {reason}\n".encode()

    def _not_ready(self) -> str | None:
        if not self._worker.registered:
            return "not registered (starting, or stopped)"
        if self._worker.draining:
            return "draining: takes no new work"
        answered = self._answered_at
        if answered is None or time.monotonic() - answered > PING_FRESH_S:
            return f"Redis answered no PING in the last {PING_FRESH_S:g}s ({self._ping_error})"
        return None

    async def _ping_forever(self) -> None:
        engine = self._worker.engine
        while True:
            started = time.perf_counter()
            try:
                async with asyncio.timeout(PING_TIMEOUT_S):
                    await engine.ping()
            except TimeoutError:
                self._ping_error = f"no answer within {PING_TIMEOUT_S:g}s"
            except Exception as exc:  # whatever it is, the worker is not ready while it lasts
                self._ping_error = f"{type(exc).__name__}: {exc}"
            else:
                self._answered_at = time.monotonic()
                self.metrics.round_trip.observe(time.perf_counter() - started)
            await asyncio.sleep(PING_INTERVAL_S)


def _healthy() -> Response:
    return 200, TEXT, b"ok\n"
