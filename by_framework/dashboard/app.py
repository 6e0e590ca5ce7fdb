"""The dashboard as an ASGI app: its pages, their static files and the ``api/`` they call.

``create_dashboard`` serves it alone, on a client of its own (``python -m by_framework
dashboard``); the HTTP gateway mounts a ``Dashboard`` at ``/dashboard`` on its own client
(``BYAI_GATEWAY_DASHBOARD``).
"""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI, HTTPException
from fastapi.staticfiles import StaticFiles

from by_framework.client.gateway import GatewayClient
from by_framework.dashboard.access import Viewers
from by_framework.dashboard.api import Backend, api_router
from by_framework.dashboard.feed import FleetFeed
from by_framework.dashboard.pages import STATIC, pages_router
from by_framework.dashboard.views import read_fleet
from by_framework.gateway.settings import GatewaySettings
from by_framework.settings import Settings

FLEET_INTERVAL = 1.0
"""Seconds between the fleet page's updates."""


class Dashboard:
    """The dashboard's routes in ``app``; they serve once ``open`` gave them a client."""

    def __init__(
        self,
        gateway: GatewaySettings,
        lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
    ) -> None:
        self._gateway = gateway
        self._backend: Backend | None = None
        self.app = FastAPI(
            title="by-framework dashboard",
            lifespan=lifespan,
            docs_url=None,
            redoc_url=None,
            openapi_url=None,
        )
        self.app.include_router(api_router(self._opened, Viewers(gateway)))
        self.app.include_router(pages_router())
        self.app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def open(self, client: GatewayClient) -> None:
        feed = FleetFeed(lambda: read_fleet(client.engine.fleet), FLEET_INTERVAL)
        self._backend = Backend(client, feed, self._gateway.heartbeat_seconds)

    async def aclose(self) -> None:
        if self._backend is not None:
            await self._backend.feed.aclose()
            self._backend = None

    def _opened(self) -> Backend:
        if self._backend is None:
            raise HTTPException(503, "the dashboard is starting or stopping: try again")
        return self._backend


def create_dashboard(settings: Settings, gateway: GatewaySettings | None = None) -> FastAPI:
    """The dashboard alone; its lifespan opens one GatewayClient from ``settings`` and closes
    it. Auth comes from ``gateway`` (or env ``BYAI_GATEWAY_*``), as the gateway's does."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = GatewayClient.connect(settings)
        try:
            await client.engine.start()
            dashboard.open(client)
            yield
        finally:
            await dashboard.aclose()
            await client.aclose()

    dashboard = Dashboard(gateway or GatewaySettings.resolve(), lifespan)
    return dashboard.app
