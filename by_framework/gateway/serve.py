"""Serve the gateway app with uvicorn (``python -m by_framework gateway``)."""

import uvicorn

from by_framework.gateway.app import create_app
from by_framework.gateway.settings import GatewaySettings
from by_framework.settings import Settings


def serve(settings: Settings, gateway: GatewaySettings, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM; uvicorn lets open SSE responses end first."""
    app = create_app(settings, gateway)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
