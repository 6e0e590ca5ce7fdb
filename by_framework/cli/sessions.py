"""``send`` and ``tail``: a task sent, and a session's events as JSON lines."""

import argparse
import asyncio
import json
from typing import Any

from by_framework.cli.options import checked_settings, command_parser, redis_options
from by_framework.client.gateway import GatewayClient
from by_framework.protocol import EventGap, SessionEvent, TaskEndEvent


def send(argv: list[str]) -> None:
    parser = command_parser("send", "Send a task to an agent type, optionally following it.")
    parser.add_argument("agent_type")
    parser.add_argument("content", help="JSON, or plain text")
    parser.add_argument("--session", required=True)
    parser.add_argument("--user-code")
    parser.add_argument("--worker-id", help="route to this worker (debug path)")
    parser.add_argument("--follow", action="store_true", help="stream the task's output")
    parser.add_argument(
        "--wait-for-worker",
        type=float,
        metavar="SECONDS",
        help="how long to wait for an online worker (default: worker_wait_seconds)",
    )
    redis_options(parser)
    asyncio.run(_send(parser.parse_args(argv)))


def tail(argv: list[str]) -> None:
    parser = command_parser("tail", "Print a session's events as JSON lines, live.")
    parser.add_argument("session")
    parser.add_argument("--after", default="0-0", help="resume after this stream id")
    parser.add_argument(
        "--until-end",
        action="store_true",
        help="stop at the end of the session's newest task (as it is when tail starts)",
    )
    parser.add_argument("--until", metavar="MESSAGE_ID", help="stop at the end of this task")
    redis_options(parser)
    asyncio.run(_tail(parser.parse_args(argv)))


def _print_event(item: SessionEvent | EventGap) -> None:
    if isinstance(item, EventGap):
        _print_gap(item)
        return
    print(
        json.dumps(
            {"id": item.stream_id, "task": item.message_id, **item.event.model_dump(mode="json")},
            ensure_ascii=False,
        ),
        flush=True,
    )


def _print_gap(gap: EventGap) -> None:
    """A line of its own in the event lines' format: how many events the reader missed."""
    line = {
        "type": "events_trimmed",
        "trimmed": gap.trimmed,
        "tasks": list(gap.message_ids),
        "after": gap.after,
        "before": gap.before,
        "message": gap.describe(),
    }
    print(json.dumps(line), flush=True)


async def _send(args: argparse.Namespace) -> None:
    client = GatewayClient.connect(await checked_settings(args))
    try:
        try:
            content: Any = json.loads(args.content)
        except ValueError:
            content = args.content
        position = await client.last_event_id(args.session)
        sent = await client.send_message(
            args.agent_type,
            args.session,
            content,
            user_code=args.user_code,
            target_worker_id=args.worker_id,
            wait_for_worker=args.wait_for_worker,
        )
        print(
            json.dumps({"message_id": sent.message_id, "session_id": sent.session_id}), flush=True
        )
        if args.follow:
            events = client.events(args.session, position, until_message_id=sent.message_id)
            async for item in events:
                _print_event(item)
    finally:
        await client.aclose()


async def _tail(args: argparse.Namespace) -> None:
    client = GatewayClient.connect(await checked_settings(args))
    try:
        until = args.until
        if until is None and args.until_end:
            until = await _newest_task(client, args.session)
        async for item in client.events(args.session, args.after, until_message_id=until):
            _print_event(item)
            if (
                args.until_end
                and until is None
                and isinstance(item, SessionEvent)
                and isinstance(item.event, TaskEndEvent)
            ):
                return
    finally:
        await client.aclose()


async def _newest_task(client: GatewayClient, session_id: str) -> str | None:
    """The message id of the session's newest top-level task (a tree's root ends after its
    sub-calls), or None when the session has no task on record yet: then the first task end
    seen ends the tail."""
    records = await client.list_session_tasks(session_id)
    roots = [record for record in records if record.parent_message_id is None] or records
    return max(roots, key=lambda record: record.created_at).message_id if roots else None
