"""Serve the dashboard with uvicorn (``python -m by_framework dashboard``)."""

import uvicorn

from by_framework.dashboard.app import create_dashboard
from by_framework.gateway.settings import GatewaySettings
from by_framework.settings import Settings


def serve(settings: Settings, gateway: GatewaySettings, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM; open live pages get up to 5 s to go."""
    app = create_dashboard(settings, gateway)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
