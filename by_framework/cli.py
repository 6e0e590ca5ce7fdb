"""``python -m by_framework``: run a worker, or one of ``dev demo send tail config dead-letter
gateway``."""

import argparse
import asyncio
import importlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from by_framework.client.gateway import GatewayClient
from by_framework.errors import ByFrameworkError, ConfigurationError
from by_framework.protocol import EventGap, SessionEvent, TaskEndEvent
from by_framework.redis.dead_letter import DeadLetterNotFoundError, DeadLetters
from by_framework.redis.embedded import EmbeddedRedisError, resolve_redis_url
from by_framework.redis.engine import RedisEngine
from by_framework.redis.probe import check_redis
from by_framework.settings import Settings, reference_table
from by_framework.worker.base import GatewayWorker
from by_framework.worker.run import EXIT_CONFIG, run_worker

SUBCOMMANDS = ("config", "dev", "demo", "send", "tail", "dead-letter", "gateway")


def load_worker_class(path: str) -> type[GatewayWorker] | GatewayWorker:
    """``package.module.Class`` or ``package.module:Class`` (or a worker instance made there,
    e.g. a ``CallableWorker``), importable from the current dir."""
    module_name, _, class_name = path.replace(":", ".").rpartition(".")
    if not module_name:
        raise ConfigurationError(f"--worker-class wants module.Class, got {path!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        worker_class = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(
            f"--worker-class {path!r} cannot be loaded ({exc}); give a module.Class importable "
            "from the current directory"
        ) from None
    if isinstance(worker_class, GatewayWorker):
        return worker_class
    if not (isinstance(worker_class, type) and issubclass(worker_class, GatewayWorker)):
        raise ConfigurationError(
            f"--worker-class {path!r} is not a GatewayWorker subclass or instance"
        )
    return worker_class


def _redis_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", help="redis:// or rediss:// URL (env REDIS_URL)")
    parser.add_argument("--redis-host")
    parser.add_argument("--redis-port", type=int)
    parser.add_argument("--redis-db", type=int)
    parser.add_argument("--redis-password")
    parser.add_argument("--redis-username")
    parser.add_argument("--key-prefix", help="prefix of every key (env BYAI_KEY_PREFIX)")
    parser.add_argument("--redis-ssl-ca-certs", help="CA bundle for a rediss:// server")
    parser.add_argument("--redis-ssl-certfile", help="client certificate (rediss://)")
    parser.add_argument("--redis-ssl-keyfile", help="client certificate key (rediss://)")


def _worker_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Run a by-framework worker.")
    parser.add_argument("--worker-class", required=True, help="module.Class of a GatewayWorker")
    parser.add_argument("--worker-id")
    _redis_options(parser)
    parser.add_argument("--redis-max-connections", type=int)
    parser.add_argument("--workspace-dir")
    parser.add_argument("--consumer-group")
    parser.add_argument("--max-concurrency", type=int)
    parser.add_argument("--fetch-count", type=int)
    parser.add_argument("--heartbeat-interval", type=float)
    parser.add_argument("--heartbeat-ttl", type=float)
    parser.add_argument("--shutdown-timeout", type=float)
    parser.add_argument("--lease-seconds", type=float)
    parser.add_argument("--sweep-interval", type=float)
    parser.add_argument("--max-deliveries", type=int)
    parser.add_argument("--task-timeout", type=float)
    parser.add_argument("--cancel-grace-seconds", type=float)
    parser.add_argument("--plugin-dir")
    parser.add_argument("--history-url", help="memory:// or postgresql://... (env BYF_HISTORY_URL)")
    return parser


def _run_worker(args: argparse.Namespace, redis_url: str | None) -> None:
    options = {
        name: value
        for name, value in vars(args).items()
        if name not in {"worker_class", "redis_url", "command"} and value is not None
    }
    run_worker(load_worker_class(args.worker_class), redis_url=redis_url, **options)


def _client_settings(args: argparse.Namespace) -> Settings:
    return Settings.resolve(
        redis_url=args.redis_url,
        redis_host=args.redis_host,
        redis_port=args.redis_port,
        redis_db=args.redis_db,
        redis_password=args.redis_password,
        redis_username=args.redis_username,
        key_prefix=args.key_prefix,
        redis_ssl_ca_certs=args.redis_ssl_ca_certs,
        redis_ssl_certfile=args.redis_ssl_certfile,
        redis_ssl_keyfile=args.redis_ssl_keyfile,
    )


async def _checked_settings(args: argparse.Namespace) -> Settings:
    """The client settings, once Redis has answered a first PING with them."""
    settings = _client_settings(args)
    await check_redis(settings)
    return settings


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
    client = GatewayClient.connect(await _checked_settings(args))
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
    client = GatewayClient.connect(await _checked_settings(args))
    try:
        async for item in client.events(args.session, args.after):
            _print_event(item)
            if (
                args.until_end
                and isinstance(item, SessionEvent)
                and isinstance(item.event, TaskEndEvent)
            ):
                return
    finally:
        await client.aclose()


def _dead_letter_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m by_framework dead-letter",
        description="Inspect, replay or purge the dead-letter stream.",
    )
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
        _redis_options(action)
    return parser


async def _dead_letter(args: argparse.Namespace) -> None:
    settings = await _checked_settings(args)
    engine = RedisEngine.connect(settings)
    dead_letters = DeadLetters(
        engine.redis, engine.keys, settings.consumer_group, settings.signing_key_bytes
    )
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
            letter = await dead_letters.get(args.id)
            if letter is None:
                raise DeadLetterNotFoundError(args.id)
            print(json.dumps(letter.as_dict(), indent=2, ensure_ascii=False))
        elif args.action == "replay":
            print(await dead_letters.replay(args.id))
        else:
            print(await dead_letters.purge(None if args.all else args.id))
    finally:
        await engine.aclose()


def _gateway_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m by_framework gateway",
        description="Serve the HTTP gateway (extra [gateway]). Auth is set by env "
        "BYAI_GATEWAY_API_KEYS / BYAI_GATEWAY_JWT_SECRET / BYAI_GATEWAY_JWT_PUBLIC_KEY "
        "(see docs/gateway.md), not by flags: flags show in the process list.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--insecure", action="store_true", default=None, help="serve without auth on any host"
    )
    parser.add_argument("--cors-origins", help="comma-separated origins CORS allows")
    parser.add_argument("--max-body-bytes", type=int)
    parser.add_argument("--heartbeat-seconds", type=float, help="SSE keep-alive while idle")
    parser.add_argument("--rate", type=float, help="requests per second per caller")
    parser.add_argument("--burst", type=int, help="rate limit's bucket size")
    _redis_options(parser)
    return parser


def _gateway(args: argparse.Namespace) -> None:
    try:
        from by_framework.gateway.serve import serve
    except ImportError as exc:
        raise ConfigurationError(
            f"the gateway needs the [gateway] extra ({exc}): pip install 'by-framework[gateway]'"
        ) from None
    from by_framework.gateway.settings import GatewaySettings

    gateway = GatewaySettings.resolve(
        insecure=args.insecure,
        cors_origins=args.cors_origins,
        max_body_bytes=args.max_body_bytes,
        heartbeat_seconds=args.heartbeat_seconds,
        rate=args.rate,
        burst=args.burst,
    )
    gateway.check_host(args.host)
    settings = asyncio.run(_checked_settings(args))
    serve(settings, gateway, args.host, args.port)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    try:
        if command not in SUBCOMMANDS:
            args = _worker_parser("python -m by_framework").parse_args(argv)
            _run_worker(args, args.redis_url)
        elif command == "config":
            print(reference_table(), end="")
        elif command == "dev":
            args = _worker_parser("python -m by_framework dev").parse_args(rest)
            with _redis_for(args) as url:
                _run_worker(args, url)
        elif command == "demo":
            parser = argparse.ArgumentParser(prog="python -m by_framework demo")
            _redis_options(parser)
            parser.add_argument("--topic", default="Redis Streams")
            args = parser.parse_args(rest)
            from by_framework.demo import run_demo

            with _redis_for(args) as url:
                asyncio.run(run_demo(url, args.topic, args.key_prefix))
        elif command == "send":
            parser = argparse.ArgumentParser(prog="python -m by_framework send")
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
            _redis_options(parser)
            asyncio.run(_send(parser.parse_args(rest)))
        elif command == "dead-letter":
            asyncio.run(_dead_letter(_dead_letter_parser().parse_args(rest)))
        elif command == "gateway":
            _gateway(_gateway_parser().parse_args(rest))
        else:
            parser = argparse.ArgumentParser(prog="python -m by_framework tail")
            parser.add_argument("session")
            parser.add_argument("--after", default="0-0", help="resume after this stream id")
            parser.add_argument("--until-end", action="store_true", help="stop at a task's end")
            _redis_options(parser)
            asyncio.run(_tail(parser.parse_args(rest)))
    except ConfigurationError as exc:
        print(f"by-framework: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None
    except (ByFrameworkError, EmbeddedRedisError) as exc:
        raise SystemExit(f"by-framework: {exc}") from None
    except RedisEngine.transient_errors as exc:
        raise SystemExit(f"by-framework: cannot reach Redis ({exc})") from None
    except KeyboardInterrupt:
        pass


@contextmanager
def _redis_for(args: argparse.Namespace) -> Iterator[str]:
    """The Redis URL to use, starting an embedded server when none is configured or running."""
    url, server = resolve_redis_url(args.redis_url, args.redis_host, args.redis_port)
    if server is not None:
        print(f"by-framework: no Redis configured; started one at {url}", file=sys.stderr)
    try:
        yield url
    finally:
        if server is not None:
            server.stop()
