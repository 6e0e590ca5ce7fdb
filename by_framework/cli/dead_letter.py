"""``dead-letter list|show|replay|purge``: the dead-letter stream."""

import argparse
import asyncio
import json
from datetime import UTC, datetime

from by_framework.cli.options import checked_settings, command_parser, redis_options
from by_framework.engine import connect_engine
from by_framework.errors import DeadLetterNotFoundError


def dead_letter(argv: list[str]) -> None:
    asyncio.run(_dead_letter(_parser().parse_args(argv)))


def _parser() -> argparse.ArgumentParser:
    parser = command_parser("dead-letter", "Inspect, replay or purge the dead-letter stream.")
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="entries, oldest first")
    listing.add_argument("--count", type=int, default=50)
    actions.add_parser("show", help="one entry as JSON").add_argument("id")
    replay = actions.add_parser("replay", help="put an entry back on its stream, as a new entry")
    replay.add_argument("id")
    purge = actions.add_parser("purge", help="delete one entry, or all of them")
    which = purge.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?")
    which.add_argument("--all", action="store_true")
    for action in actions.choices.values():
        redis_options(action)
    return parser


async def _dead_letter(args: argparse.Namespace) -> None:
    settings = await checked_settings(args)
    engine = connect_engine(settings)
    dead_letters = engine.dead_letters
    try:
        if args.action == "list":
            for letter in await dead_letters.list(args.count):
                at = datetime.fromtimestamp(letter.at, UTC).isoformat(timespec="seconds")
                message = letter.message_id or "-"
                cut = f" [truncated: {letter.cut_note()}]" if letter.truncated else ""
                print(
                    f"{letter.id:<16} {at} {letter.stream:<40} {message:<32} {letter.reason}{cut}"
                )
        elif args.action == "show":
            shown = await dead_letters.get(args.id)
            if shown is None:
                raise DeadLetterNotFoundError(args.id)
            print(json.dumps(shown.as_dict(), indent=2, ensure_ascii=False))
        elif args.action == "replay":
            print(await dead_letters.replay(args.id))
        else:
            print(await dead_letters.purge(None if args.all else args.id))
    finally:
        await engine.aclose()
