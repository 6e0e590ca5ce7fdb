"""``status``: the fleet as a table, as JSON (``--json``), or redrawn in place (``--watch``)."""

import argparse
import asyncio
import json
import re
import sys

from by_framework.cli.options import checked_settings, command_parser, redis_options
from by_framework.cli.table import age, duration, table
from by_framework.engine import connect_engine
from by_framework.fleet import FleetStatus, fleet_status
from by_framework.worker.activity import MINUTES_KEPT

CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear the screen
_WINDOW = re.compile(r"(\d+(?:\.\d+)?)([smh]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}


def status(argv: list[str]) -> None:
    parser = command_parser(
        "status", "Workers, agent types' queues and the tasks ended lately, read from Redis."
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document (docs/operations.md)"
    )
    parser.add_argument(
        "--window",
        type=window_seconds,
        default=300.0,
        help=f"how far back to count ended tasks: 30s, 5m (default), 1h (at most {MINUTES_KEPT}m)",
    )
    parser.add_argument(
        "--watch",
        type=float,
        nargs="?",
        const=2.0,
        metavar="SECONDS",
        help="redraw every SECONDS (2) until Ctrl-C",
    )
    redis_options(parser)
    args = parser.parse_args(argv)
    if args.watch is not None and args.watch <= 0:
        parser.error("--watch wants a positive number of seconds")
    asyncio.run(_status(args))


def window_seconds(text: str) -> float:
    match = _WINDOW.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30s, 5m or 1h")
    seconds = float(match[1]) * _UNITS[match[2]]
    if not 0 < seconds <= MINUTES_KEPT * 60:
        raise argparse.ArgumentTypeError(f"the window must be within 1s and {MINUTES_KEPT}m")
    return seconds


async def _status(args: argparse.Namespace) -> None:
    engine = connect_engine(await checked_settings(args))
    try:
        while True:
            shown = await fleet_status(engine.fleet, args.window)
            text = json.dumps(shown.as_dict(), indent=2) if args.json else render(shown)
            if args.watch is None:
                print(text)
                return
            sys.stdout.write(f"{CLEAR}{text}\n")
            sys.stdout.flush()
            await asyncio.sleep(args.watch)
    finally:
        await engine.aclose()


def render(shown: FleetStatus) -> str:
    """The status as text tables."""
    headers = ("WORKER", "STATE", "AGENT TYPES", "HOST/PID", "UPTIME", "IN FLIGHT", "HEARTBEAT")
    workers = table(
        (*headers, "CONFIG"),
        [
            (
                w.worker_id,
                w.state,
                ",".join(w.agent_types) or "-",
                f"{w.host}/{w.pid}" if w.host is not None else "-",
                duration(w.uptime),
                f"{_dash(w.in_flight)}/{_dash(w.slots)}",
                age(w.heartbeat_age),
                _dash(w.config_version),
            )
            for w in shown.workers
        ],
    )
    agent_types = table(
        ("AGENT TYPE", "WORKERS", "QUEUED", "PENDING", "OLDEST PENDING"),
        [
            (
                a.agent_type,
                str(a.online_workers),
                str(a.queued) if a.queued is not None else f"<={a.length}",
                str(a.pending),
                duration(a.oldest_pending_age),
            )
            for a in shown.agent_types
        ],
    )
    ended = ", ".join(f"{status} {count}" for status, count in sorted(shown.tasks.items()))
    return "\n".join(
        [
            f"WORKERS ({len(shown.workers)})",
            workers,
            "",
            f"AGENT TYPES ({len(shown.agent_types)})",
            agent_types,
            "",
            f"TASKS ENDED (last {duration(shown.window)}): {ended or 'none'}",
            f"DEAD LETTERS: {shown.dead_letters}",
        ]
    )


def _dash(value: object) -> str:
    return "-" if value is None else str(value)
