"""The live web dashboard (extra ``[gateway]``): the fleet, sessions as they stream, dead
letters and tasks, in a browser. ``python -m by_framework dashboard`` serves it alone;
``create_dashboard`` makes the ASGI app, and the gateway mounts it at ``/dashboard`` when
``BYAI_GATEWAY_DASHBOARD`` is set (docs/dashboard.md)."""

from by_framework.dashboard.app import Dashboard, create_dashboard

__all__ = ["Dashboard", "create_dashboard"]
