"""``workers drain|resume|evict WORKER_ID`` and ``tasks show MESSAGE_ID``."""

import argparse
import asyncio
import json
from datetime import UTC, datetime

from by_framework.cli.options import checked_settings, command_parser, redis_options
from by_framework.cli.table import duration
from by_framework.engine import connect_engine
from by_framework.errors import TaskNotFoundError
from by_framework.fleet import TaskNode, order_worker, task_tree
from by_framework.fleet.orders import ORDERS
from by_framework.protocol.records import TaskRecord

RESULT_SHOWN = 2000  # characters of a result shown before it is cut


def workers(argv: list[str]) -> None:
    parser = command_parser("workers", "Drain, resume or evict one worker.")
    orders = parser.add_subparsers(dest="order", required=True, metavar="ORDER")
    helps = {
        "drain": "take no new work from its agent types; finish what is in flight",
        "resume": "take work again (undoes drain and evict)",
        "evict": "hand its work not yet started back to the queues now (a dead worker's "
        "pending work too), and take no new work",
    }
    for order in ORDERS:
        sub = orders.add_parser(order, help=helps[order], description=helps[order])
        sub.add_argument("worker_id", metavar="WORKER_ID")
        sub.add_argument(
            "--timeout",
            type=float,
            default=30.0,
            metavar="SECONDS",
            help="how long to wait for the worker to confirm (30)",
        )
        redis_options(sub)
    args = parser.parse_args(argv)
    print(asyncio.run(_order(args)))


async def _order(args: argparse.Namespace) -> str:
    settings = await checked_settings(args)
    engine = connect_engine(settings)
    try:
        return await order_worker(engine, settings, args.worker_id, args.order, args.timeout)
    finally:
        await engine.aclose()


def tasks(argv: list[str]) -> None:
    parser = command_parser("tasks", "Show tasks' execution records.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser(
        "show",
        help="a task's record and the tree of its sub-tasks",
        description="A task's record (status, timeline, worker, result or error) and the tree "
        "of its sub-tasks, recursively, with their statuses.",
    )
    show.add_argument("message_id", metavar="MESSAGE_ID")
    redis_options(show)
    args = parser.parse_args(argv)
    print(asyncio.run(_show(args)))


async def _show(args: argparse.Namespace) -> str:
    engine = connect_engine(await checked_settings(args))
    try:
        root = await task_tree(engine.tasks, args.message_id)
    finally:
        await engine.aclose()
    if root is None or root.record is None:
        raise TaskNotFoundError(
            f"no task {args.message_id!r}: never sent, or its record is older than record_ttl"
        )
    return "\n".join([*describe(root.record), "", "tree:", *tree_lines(root)])


def describe(record: TaskRecord) -> list[str]:
    """The record, one field a line."""
    start = record.timeline[0][1] if record.timeline else record.created_at
    timeline = " -> ".join(
        f"{status.value} +{_precise(at - start)}" for status, at in record.timeline
    )
    rows = [
        ("task", record.message_id),
        ("agent type", record.agent_type),
        ("session", record.session_id),
        ("status", record.status.value),
        ("worker", record.worker_id or "-"),
        ("parent", record.parent_message_id or "-"),
        ("created", _time(record.created_at)),
        ("timeline", timeline or "-"),
        ("deliveries", str(record.delivery_count)),
        ("resumes", str(record.run)),
    ]
    if record.error:
        rows.append(("error", record.error))
    if record.result is not None:
        result = json.dumps(record.result.model_dump(mode="json"), ensure_ascii=False)
        if len(result) > RESULT_SHOWN:
            result = f"{result[:RESULT_SHOWN]}... ({len(result)} characters)"
        rows.append(("result", result))
    width = max(len(name) for name, _ in rows)
    return [f"{name:<{width}}  {value}" for name, value in rows]


def tree_lines(node: TaskNode, lead: str = "", branch: str = "") -> list[str]:
    """The task and its children, drawn as a tree."""
    lines = [f"{lead}{branch}{_node(node)}"]
    below = lead + ("" if not branch else "    " if branch == "└── " else "│   ")
    for i, child in enumerate(node.children):
        last = i == len(node.children) - 1
        lines.extend(tree_lines(child, below, "└── " if last else "├── "))
    return lines


def _node(node: TaskNode) -> str:
    record = node.record
    if record is None:
        return f"{node.message_id} (no record: expired)"
    took = ""
    if record.started_at is not None and record.finished_at is not None:
        took = f" in {_precise(record.finished_at - record.started_at)}"
    return f"{node.message_id} {record.agent_type} {record.status.value}{took}"


def _precise(seconds: float) -> str:
    """To the millisecond below 10 s: tasks are often that quick."""
    return f"{seconds:.3f}s" if seconds < 10 else duration(seconds)


def _time(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")
