"""Each Lua script reads what its argument NamedTuple declares: every field's ``ARGV[n]`` is
read, and nothing past them unless the script takes a tail. With the type checker holding the
callers to the NamedTuple, a field added, dropped or moved on one side only fails here."""

import re
from types import ModuleType
from typing import Any

import pytest

from by_framework.redis import dead_letter, discovery, scripts
from by_framework.redis.scripts import Script

MODULES: tuple[ModuleType, ...] = (scripts, dead_letter, discovery)
SCRIPTS = sorted(
    (value for module in MODULES for value in vars(module).values() if isinstance(value, Script)),
    key=lambda script: script.name,
)


def argv_read(source: str) -> set[int]:
    return {int(index) for index in re.findall(r"ARGV\[(\d+)\]", source)}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda script: script.name)
def test_the_script_reads_its_declared_arguments(script: Script[Any]) -> None:
    declared = set(range(1, len(script.args._fields) + 1))
    read = argv_read(script.source)
    if script.tail:
        assert declared <= read, f"{script.name} never reads ARGV {sorted(declared - read)}"
        assert "#ARGV" in script.source or "unpack(ARGV" in script.source
    else:
        assert read == declared, f"{script.name} reads ARGV {sorted(read)}, declares {declared}"


def test_every_script_is_seen_with_its_arguments() -> None:
    names = {script.name for script in SCRIPTS}
    assert {"begin", "finish", "dispatch", "requeue_failed", "discovery_register"} <= names
    assert len(SCRIPTS) == len(scripts.ALL_SCRIPTS) + 4  # requeue_failed, discovery's three
    assert scripts.BEGIN.args._fields[12] == "send_id"
    assert argv_read(scripts.BEGIN.source) == set(range(1, 14))
