"""Running a worker: ``python -m by_framework --worker-class module.Class`` (or ``worker``),
and ``dev``, which starts an embedded Redis when none answers."""

import argparse
import importlib
import os
import sys

from by_framework.cli.options import command_parser, redis_for, redis_options
from by_framework.errors import ConfigurationError
from by_framework.worker.base import GatewayWorker
from by_framework.worker.run import run_worker


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


def worker_parser(name: str = "") -> argparse.ArgumentParser:
    """The worker's options (``name``: the subcommand it runs under, none by default)."""
    parser = command_parser(name, "Run a by-framework worker.")
    parser.add_argument("--worker-class", required=True, help="module.Class of a GatewayWorker")
    worker_settings_options(parser)
    return parser


def worker_settings_options(parser: argparse.ArgumentParser) -> None:
    """The flags that set a worker's settings, each named after its ``Settings`` field."""
    parser.add_argument("--worker-id")
    redis_options(parser)
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
    parser.add_argument("--schedule-interval", type=float)
    parser.add_argument("--max-deliveries", type=int)
    parser.add_argument("--task-timeout", type=float)
    parser.add_argument("--cancel-grace-seconds", type=float)
    parser.add_argument("--plugin-dir")
    parser.add_argument("--history-url", help="memory:// or postgresql://... (env BYF_HISTORY_URL)")
    parser.add_argument(
        "--metrics-port", type=int, help="serve /metrics, /healthz, /readyz here (extra [metrics])"
    )
    parser.add_argument("--metrics-host", help="address of the metrics port (default 127.0.0.1)")


def run_worker_from(args: argparse.Namespace, redis_url: str | None) -> None:
    options = {
        name: value
        for name, value in vars(args).items()
        if name not in {"worker_class", "redis_url", "command"} and value is not None
    }
    run_worker(load_worker_class(args.worker_class), redis_url=redis_url, **options)


def worker(argv: list[str]) -> None:
    args = worker_parser().parse_args(argv)
    run_worker_from(args, args.redis_url)


def dev(argv: list[str]) -> None:
    args = worker_parser("dev").parse_args(argv)
    with redis_for(args) as url:
        run_worker_from(args, url)
