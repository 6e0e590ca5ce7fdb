"""The operator's view of the fleet and its orders to workers, on the engine's ports: one query
layer for every view of it (the ``status`` command, the dashboard)."""

from by_framework.fleet.activity import MinuteActivity, minute_activity
from by_framework.fleet.orders import WorkerOrderError, order_worker
from by_framework.fleet.status import (
    AgentTypeStatus,
    FleetStatus,
    WorkerStatus,
    fleet_status,
    is_alive,
    status_of,
)
from by_framework.fleet.tree import TaskNode, task_tree

__all__ = [
    "AgentTypeStatus",
    "FleetStatus",
    "MinuteActivity",
    "TaskNode",
    "WorkerOrderError",
    "WorkerStatus",
    "fleet_status",
    "is_alive",
    "minute_activity",
    "order_worker",
    "status_of",
    "task_tree",
]
