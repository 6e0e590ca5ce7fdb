"""What a sender may put in content, metadata and payloads: plain JSON values only.

The encoder would turn a datetime, a UUID, bytes or a set into a string or a list without a
word, and the agent would then read something else than was sent (a LangGraph graph finds no
messages in a datetime's string). So a send refuses them, naming where they are, and the caller
converts them as it means to (``datetime.isoformat()``, ``str(uuid)``...).
"""

import math
from collections.abc import Mapping
from typing import Any

from by_framework.errors import InvalidContentError

_SCALARS = (str, int, bool, type(None))


def json_problem(value: Any, where: str) -> str | None:
    """Why ``value`` is not plain JSON (dicts with string keys, lists, tuples, strings, finite
    numbers, booleans, None), naming the first place it fails; None when it is."""
    if isinstance(value, _SCALARS):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where} is {value}, which JSON cannot hold"
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where} has a key {key!r} that is not a string"
            problem = json_problem(item, f"{where}[{key!r}]")
            if problem is not None:
                return problem
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            problem = json_problem(item, f"{where}[{index}]")
            if problem is not None:
                return problem
        return None
    return f"{where} is of type {type(value).__name__}, which is not JSON"


def require_json(**values: Any) -> None:
    """Raise ``InvalidContentError`` naming the first of ``values`` that is not plain JSON."""
    for name, value in values.items():
        problem = json_problem(value, name)
        if problem is not None:
            raise InvalidContentError(
                f"cannot send this message: {problem}; send str, numbers, booleans, None, lists "
                "or dicts with str keys (convert others first, e.g. datetime.isoformat())"
            )
