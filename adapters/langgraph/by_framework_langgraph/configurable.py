"""A message's ``configurable`` for a graph run: checked (keys LangGraph reserves, the worker's
schema), and kept in the checkpoints' metadata, where a resumed run, whose command carries
none, reads the original task's values back."""

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from by_framework.backends import InvalidConfigurableError, validated_configurable

CONFIGURABLE_METADATA = "by_framework_configurable"
"""Checkpoint metadata key: the run's configurable values, as a JSON string (LangGraph keeps
only scalar metadata values)."""
RESERVED_KEYS = frozenset({"thread_id", "checkpoint_id", "checkpoint_ns", "checkpoint_map"})


def run_values(configurable: dict[str, Any], schema: type[BaseModel] | None) -> dict[str, Any]:
    """The values a message's run gets in ``config["configurable"]``;
    ``InvalidConfigurableError`` naming a key LangGraph reserves, or each field ``schema``
    refuses."""
    reserved = sorted(key for key in configurable if key in RESERVED_KEYS or key.startswith("__"))
    if reserved:
        raise InvalidConfigurableError(
            f"configurable names {', '.join(reserved)}: LangGraph reserves "
            f"{', '.join(sorted(RESERVED_KEYS))} and every key starting with '__' "
            "(the worker sets the thread from the session); leave them out"
        )
    return validated_configurable(configurable, schema)


def stored_values(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The values the run that wrote a checkpoint with this metadata had."""
    values: dict[str, Any] = json.loads(metadata.get(CONFIGURABLE_METADATA) or "{}")
    return values
