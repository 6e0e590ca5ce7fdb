"""``config``: every setting's effective value and where it came from (a flag, an environment
variable, or the default), or with ``--reference`` the settings table of docs/configuration.md."""

import os
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from by_framework.cli.options import command_parser
from by_framework.cli.worker import worker_settings_options
from by_framework.history.backends import redact
from by_framework.settings import Settings, reference_table

SECRETS = {"redis_password", "signing_key"}
"""Settings whose values are never printed (URLs are printed without their password)."""
URLS = {"redis_url", "history_url"}


def config(argv: list[str]) -> None:
    parser = command_parser(
        "config",
        "Print every setting's effective value and its source: a flag (the worker's flags, "
        "given here), an environment variable, or the default.",
    )
    worker_settings_options(parser)
    parser.add_argument(
        "--reference",
        action="store_true",
        help="print the reference table instead: every setting, its variable, default, meaning",
    )
    args = parser.parse_args(argv)
    if args.reference:
        print(reference_table(), end="")
        return
    flags = {name: value for name, value in vars(args).items() if name != "reference"}
    print(effective_table(flags, os.environ), end="")


def effective_table(flags: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    """One line per setting: name, effective value, source. The values are those
    ``Settings.resolve`` makes of these flags and this environment (a bad one raises its
    ``ConfigurationError``), the sources follow its precedence: flag, then variable, then
    default."""
    explicit = {name: value for name, value in flags.items() if value is not None}
    settings = Settings.resolve(environ, **explicit)
    rows = [("setting", "value", "source")]
    for name, field in Settings.model_fields.items():
        extra = field.json_schema_extra
        env_name = extra.get("env") if isinstance(extra, dict) else None
        if name in explicit:
            source = f"flag --{name.replace('_', '-')}"
        elif isinstance(env_name, str) and environ.get(env_name):
            source = f"env {env_name}"
        else:
            source = "default"
        rows.append((name, _shown(name, getattr(settings, name)), source))
    width = [max(len(row[i]) for row in rows) for i in range(2)]
    return "".join(
        f"{name:<{width[0]}}  {value:<{width[1]}}  {source}\n" for name, value, source in rows
    )


def _shown(name: str, value: Any) -> str:
    if value is None:
        return "None"
    if name in SECRETS or isinstance(value, SecretStr):
        return "(set, hidden)"
    if name in URLS:
        return redact(str(value))
    return str(value)
