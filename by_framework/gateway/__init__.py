"""The HTTP gateway (extra ``[gateway]``): ``create_app`` makes the ASGI app, ``python -m
by_framework gateway`` serves it."""

from by_framework.gateway.app import create_app
from by_framework.gateway.settings import GatewaySettings

__all__ = ["GatewaySettings", "create_app"]
