"""``schedule add|list|remove``: scheduled and recurring runs."""

import argparse
import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from by_framework.cli.options import checked_settings, command_parser, redis_options
from by_framework.cli.table import table
from by_framework.client.gateway import GatewayClient
from by_framework.errors import InvalidScheduleError
from by_framework.protocol.schedules import Schedule


def schedule(argv: list[str]) -> None:
    asyncio.run(_schedule(_parser().parse_args(argv)))


def _parser() -> argparse.ArgumentParser:
    parser = command_parser("schedule", "Add, list or remove scheduled and recurring runs.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="send a task at a time, or on every tick of a cron")
    add.add_argument("agent_type")
    add.add_argument("content", help="JSON, or plain text")
    add.add_argument("--session", required=True, help="the session each run is a task of")
    when = add.add_mutually_exclusive_group(required=True)
    when.add_argument("--at", help="once, at this ISO 8601 time with its zone (…Z or …+01:00)")
    when.add_argument("--cron", help='on every tick, e.g. "0 9 * * *" (09:00 every day)')
    add.add_argument("--timezone", default="UTC", help="the cron's time zone (IANA name)")
    add.add_argument("--user-code")
    listing = actions.add_parser("list", help="every schedule, soonest first")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    actions.add_parser("remove", help="remove a schedule").add_argument("schedule_id")
    for action in actions.choices.values():
        redis_options(action)
    return parser


async def _schedule(args: argparse.Namespace) -> None:
    client = GatewayClient.connect(await checked_settings(args))
    try:
        if args.action == "add":
            made = await _add(client, args)
            print(json.dumps({"schedule_id": made.schedule_id, "next_at": _iso(made.next_at)}))
        elif args.action == "list":
            schedules = await client.list_schedules()
            if args.json:
                for each in schedules:
                    print(each.model_dump_json())
            else:
                print(table(_HEADERS, [_row(each) for each in schedules]))
        elif not await client.cancel_schedule(args.schedule_id):
            raise SystemExit(f"by-framework: no schedule {args.schedule_id!r}")
        else:
            print(f"removed schedule {args.schedule_id}")
    finally:
        await client.aclose()


async def _add(client: GatewayClient, args: argparse.Namespace) -> Schedule:
    try:
        content: Any = json.loads(args.content)
    except ValueError:
        content = args.content
    task = (args.agent_type, args.session, content)
    if args.cron is not None:
        return await client.schedule_cron(
            args.cron, *task, timezone=args.timezone, user_code=args.user_code
        )
    try:
        at = datetime.fromisoformat(args.at)
    except ValueError:
        raise InvalidScheduleError(
            f"--at {args.at!r} is not an ISO 8601 time (e.g. 2027-01-04T09:00:00+01:00)"
        ) from None
    return await client.schedule(*task, at=at, user_code=args.user_code)


_HEADERS = ("ID", "AGENT TYPE", "SESSION", "WHEN", "NEXT", "FIRED", "LAST TASK", "LAST ERROR")


def _row(each: Schedule) -> list[str]:
    when = f"{each.cron} ({each.timezone})" if each.cron else f"once at {_iso(each.at)}"
    state = each.state
    return [
        each.schedule_id,
        each.target_agent_type,
        each.session_id,
        when,
        _iso(each.next_at),
        str(state.fired),
        state.last_message_id or "-",
        state.last_error or "-",
    ]


def _iso(at: float | None) -> str:
    if at is None:
        return "-"
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")
