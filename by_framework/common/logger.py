"""Logging set-up: plain text for terminals, one JSON object per line for log aggregation."""

import argparse
import asyncio
import json
import logging
import os
import sys
from typing import Any

from by_framework.settings import Settings

_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
"""What every LogRecord has: anything else on a record came from ``extra=`` and is a field."""


class JsonFormatter(logging.Formatter):
    """One JSON object per record; the fields a call passes in ``extra=`` become keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": record.created,
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRIBUTES:
                entry.setdefault(name, value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TurnBatchedStreamHandler(logging.StreamHandler[Any]):
    """A StreamHandler that writes the lines of one turn of an asyncio loop in one write.

    A busy worker logs a line per task end, many in one turn of its loop, and on a virtual
    machine each write is a costly system call (a worker draining no-op tasks spent about a
    tenth of its CPU on its log line, a quarter of that in the write). Lines emitted from a
    running loop wait for the end of that turn (``call_soon``); a line from anywhere else (a
    thread, no loop, another loop) writes the waiting ones first, then itself, so the order is
    kept. ``flush`` (and logging's own at exit) writes whatever waits.
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._waiting: list[str] = []
        self._turn: asyncio.AbstractEventLoop | None = None  # the loop whose turn they wait for

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
            try:
                loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is None or (self._waiting and loop is not self._turn):
                self._waiting.append(line)
                self._write_waiting()
                return
            if not self._waiting:
                self._turn = loop
                loop.call_soon(self._end_turn)
            self._waiting.append(line)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        self.acquire()
        try:
            if self._waiting:
                self._write_waiting()
        finally:
            self.release()
        super().flush()

    def _end_turn(self) -> None:
        """The turn's lines written. A stream that fails loses them and says so on stderr, as a
        StreamHandler's emit does; nothing is raised into the loop (whose report of it would be
        logged here, and fail again)."""
        self.acquire()
        try:
            if self._waiting:
                self._write_waiting()
        except Exception:
            self.handleError(logging.makeLogRecord({"msg": "the lines of a loop turn"}))
        finally:
            self.release()

    def _write_waiting(self) -> None:
        lines, self._waiting, self._turn = self._waiting, [], None
        self.stream.write("".join(lines))
        self.stream.flush()


def setup_logging(level: int | str = logging.INFO, use_json: bool = False) -> None:
    """Configure the root logger once (replacing its handlers)."""
    handler = TurnBatchedStreamHandler(sys.stderr)
    if use_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def add_log_options(parser: argparse.ArgumentParser) -> None:
    """``--log-level`` and ``--log-format``, which every command takes."""
    parser.add_argument(
        "--log-level",
        help="DEBUG, INFO, WARNING, ERROR or CRITICAL (env BYAI_LOG_LEVEL; default INFO)",
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="json: one JSON object per line (env BYAI_LOG_FORMAT; default text)",
    )


def setup_logging_from(argv: list[str]) -> list[str]:
    """Set logging up as ``--log-level`` / ``--log-format`` say, wherever they stand in the
    command line, else as ``BYAI_LOG_LEVEL`` / ``BYAI_LOG_FORMAT`` do (``Settings``), else INFO
    in text; return the command line without them, for the command's own parser."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    add_log_options(parser)
    args, rest = parser.parse_known_args(argv)
    # Only the logging variables: the others are judged with the command's own flags, later.
    environ = {name: value for name, value in os.environ.items() if name.startswith("BYAI_LOG_")}
    settings = Settings.resolve(environ, log_level=args.log_level, log_format=args.log_format)
    setup_logging(settings.log_level, use_json=settings.log_format == "json")
    return rest
