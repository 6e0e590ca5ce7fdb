"""The entry point: picks the subcommand, or runs a worker when the first argument is an option
(``python -m by_framework --worker-class module.Class``), and turns expected errors into one
line and an exit status."""

import difflib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from by_framework.cli.admin import tasks, workers
from by_framework.cli.config import config
from by_framework.cli.dashboard import dashboard
from by_framework.cli.dead_letter import dead_letter
from by_framework.cli.demo import demo
from by_framework.cli.gateway import gateway
from by_framework.cli.options import PROG
from by_framework.cli.schedules import schedule
from by_framework.cli.sessions import send, tail
from by_framework.cli.status import status
from by_framework.cli.worker import dev, worker
from by_framework.common.logger import setup_logging_from
from by_framework.engine import REFUSALS, TRANSIENT_ERRORS
from by_framework.errors import ByFrameworkError, ConfigurationError
from by_framework.redis.embedded import EmbeddedRedisError
from by_framework.worker.run import EXIT_CONFIG

EXIT_USAGE = 2  # argparse's status for a command line it cannot read


@dataclass(frozen=True, slots=True)
class Subcommand:
    name: str
    summary: str
    run: Callable[[list[str]], None]


SUBCOMMANDS = (
    Subcommand("worker", "run a worker (the default when the first argument is an option)", worker),
    Subcommand("dev", "run a worker, starting an embedded Redis if none answers", dev),
    Subcommand("demo", "run the demo: a worker and a client in one process", demo),
    Subcommand("send", "send a task to an agent type, optionally following its output", send),
    Subcommand("tail", "print a session's events as JSON lines, live", tail),
    Subcommand("status", "workers, queues and recent outcomes of the fleet", status),
    Subcommand("workers", "drain, resume or evict a worker", workers),
    Subcommand("tasks", "show a task's record and its tree of sub-tasks", tasks),
    Subcommand("dead-letter", "list, show, replay or purge dead letters", dead_letter),
    Subcommand("schedule", "add, list or remove scheduled and recurring runs", schedule),
    Subcommand("gateway", "serve the HTTP gateway (extra [gateway])", gateway),
    Subcommand("dashboard", "serve the live web dashboard (extra [gateway])", dashboard),
    Subcommand("config", "every setting's value and its source (--reference: the table)", config),
)
_BY_NAME = {subcommand.name: subcommand for subcommand in SUBCOMMANDS}


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        argv = setup_logging_from(argv)  # --log-level / --log-format, whatever the command
        first, rest = (argv[0], argv[1:]) if argv else ("", [])
        if first in ("-h", "--help"):
            print(_usage())
        elif first == "--version":
            print(f"by-framework {_version()}")
        elif not first:
            print(_usage(), file=sys.stderr)
            raise SystemExit(EXIT_USAGE)
        elif first.startswith("-"):
            worker(argv)
        elif first in _BY_NAME:
            _BY_NAME[first].run(rest)
        else:
            print(f"by-framework: {_unknown(first)}", file=sys.stderr)
            raise SystemExit(EXIT_USAGE)
    except ConfigurationError as exc:
        print(f"by-framework: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None
    except (ByFrameworkError, EmbeddedRedisError) as exc:
        raise SystemExit(f"by-framework: {exc}") from None
    except TRANSIENT_ERRORS as exc:
        raise SystemExit(f"by-framework: cannot reach Redis ({exc})") from None
    except REFUSALS as exc:
        raise SystemExit(f"by-framework: Redis refused a command: {exc}") from None
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:  # the reader went away (`status | head`): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(1) from None


def _usage() -> str:
    width = max(len(subcommand.name) for subcommand in SUBCOMMANDS)
    lines = [
        f"usage: {PROG} COMMAND [options]",
        f"       {PROG} --worker-class module.Class [options]   (runs a worker)",
        "",
        "by-framework: a distributed agent scheduling engine on Redis Streams.",
        "",
        "commands:",
        *(f"  {s.name:<{width}}  {s.summary}" for s in SUBCOMMANDS),
        "",
        "options:",
        "  -h, --help  show this help and exit",
        "  --version   print the version and exit",
        "",
        f"`{PROG} COMMAND --help` describes a command's options.",
    ]
    return "\n".join(lines)


def _unknown(name: str) -> str:
    close = difflib.get_close_matches(name, list(_BY_NAME), n=1)
    if close:
        return f"unknown command {name!r}; did you mean {close[0]!r}?"
    return f"unknown command {name!r}; the commands are {', '.join(_BY_NAME)} (see --help)"


def _version() -> str:
    try:
        return version("by-framework")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"
