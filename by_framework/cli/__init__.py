"""``python -m by_framework``: run a worker, or one of the operator's subcommands (``--help``
lists them)."""

from by_framework.cli.main import main
from by_framework.cli.worker import load_worker_class

__all__ = ["load_worker_class", "main"]
