"""What every subcommand's parser shares: its name, the Redis connection options, and the
settings they resolve to."""

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from by_framework.common.logger import add_log_options
from by_framework.engine import check_engine
from by_framework.redis.embedded import resolve_redis_url
from by_framework.settings import Settings

PROG = "python -m by_framework"


def command_parser(name: str, description: str) -> argparse.ArgumentParser:
    """The parser of one subcommand (every subcommand's parser is made here)."""
    parser = argparse.ArgumentParser(prog=f"{PROG} {name}".strip(), description=description)
    add_log_options(parser)  # for --help: ``main`` takes them out of the command line first
    return parser


def redis_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis-url",
        help="redis://, rediss:// or redis+cluster://host:port,... URL (env REDIS_URL)",
    )
    parser.add_argument("--redis-host")
    parser.add_argument("--redis-port", type=int)
    parser.add_argument(
        "--redis-cluster",
        action="store_true",
        default=None,
        help="--redis-host/--redis-port name a node of a Redis Cluster (env BYAI_REDIS_CLUSTER)",
    )
    parser.add_argument("--redis-db", type=int)
    parser.add_argument("--redis-password")
    parser.add_argument("--redis-username")
    parser.add_argument("--key-prefix", help="prefix of every key (env BYAI_KEY_PREFIX)")
    parser.add_argument("--redis-ssl-ca-certs", help="CA bundle for a rediss:// server")
    parser.add_argument("--redis-ssl-certfile", help="client certificate (rediss://)")
    parser.add_argument("--redis-ssl-keyfile", help="client certificate key (rediss://)")


def client_settings(args: argparse.Namespace) -> Settings:
    return Settings.resolve(
        redis_url=args.redis_url,
        redis_host=args.redis_host,
        redis_port=args.redis_port,
        redis_cluster=args.redis_cluster,
        redis_db=args.redis_db,
        redis_password=args.redis_password,
        redis_username=args.redis_username,
        key_prefix=args.key_prefix,
        redis_ssl_ca_certs=args.redis_ssl_ca_certs,
        redis_ssl_certfile=args.redis_ssl_certfile,
        redis_ssl_keyfile=args.redis_ssl_keyfile,
    )


async def checked_settings(args: argparse.Namespace) -> Settings:
    """The client settings, once Redis has answered a first PING with them."""
    settings = client_settings(args)
    await check_engine(settings)
    return settings


@contextmanager
def redis_for(args: argparse.Namespace) -> Iterator[str]:
    """The Redis URL to use, starting an embedded server when none is configured or running
    (never for ``--redis-cluster``: its host and port name a node of the cluster)."""
    if args.redis_cluster and not (args.redis_url or os.environ.get("REDIS_URL")):
        yield f"redis+cluster://{args.redis_host or '127.0.0.1'}:{args.redis_port or 6379}"
        return
    url, server = resolve_redis_url(args.redis_url, args.redis_host, args.redis_port)
    if server is not None:
        print(
            f"by-framework: no Redis configured or answering on 127.0.0.1:6379; started one at "
            f"{url} ({server.executable}), stopped on exit",
            file=sys.stderr,
        )
    elif not (args.redis_url or os.environ.get("REDIS_URL") or args.redis_host or args.redis_port):
        print(
            f"by-framework: no Redis configured; using the one answering at {url}", file=sys.stderr
        )
    try:
        yield url
    finally:
        if server is not None:
            server.stop()
