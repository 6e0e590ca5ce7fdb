"""The gateway's own metrics, at its ``/metrics``: requests by route template and status, SSE
followers connected, events delivered.

Requests are labelled by the template of the route that answered (``/v1/tasks/{message_id}``),
never by the raw path: a path holds ids, and a label value per id would grow the series without
bound. A request no route matched counts under ``UNMATCHED``.
"""

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "(unmatched)"


class GatewayMetrics:
    """One gateway app's metrics, in a registry of its own (``exposition()`` renders it)."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        for standard in (ProcessCollector, PlatformCollector, GCCollector):
            standard(registry=registry)
        self._requests = Counter(
            "byai_gateway_requests",
            "HTTP requests answered, by route template and status.",
            ["route", "status"],
            registry=registry,
        )
        self._answered: dict[tuple[str, int], Counter] = {}  # labelled children, made once each
        self.followers = Gauge(
            "byai_gateway_sse_followers",
            "SSE responses open: clients following a session's events.",
            registry=registry,
        )
        self.events_delivered = Counter(
            "byai_gateway_sse_events_delivered",
            "Session events written to SSE clients.",
            registry=registry,
        )

    def exposition(self) -> bytes:
        """The metrics in Prometheus's text format."""
        return generate_latest(self.registry)

    def answered(self, route: str, status: int) -> None:
        child = self._answered.get((route, status))
        if child is None:
            child = self._answered[route, status] = self._requests.labels(route, str(status))
        child.inc()


class RequestMetrics:
    """ASGI middleware counting each request by the template of the route that answered it,
    and its status (500 for one that raised before answering)."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        root_path, path = scope.get("root_path", ""), scope["path"]
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.answered(_route_template(scope, root_path, path), status)


def _route_template(scope: Scope, root_path: str, path: str) -> str:
    """The template of the route that answered, behind the prefix of any mount it sits in.
    The router records the route in the scope it is handed (Starlette's, FastAPI's for its API
    routes); a route it did not record (FastAPI's /openapi.json, /docs) is matched here."""
    route = scope.get("route")
    if route is not None:
        mounted_at = scope.get("root_path", "")[len(root_path) :]
        return mounted_at + route.path
    asked = {"type": "http", "path": path, "root_path": root_path, "method": scope["method"]}
    for candidate in getattr(scope.get("app"), "routes", ()):
        if candidate.matches(asked)[0] is Match.FULL:
            return candidate.path
    return UNMATCHED
