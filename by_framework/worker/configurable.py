"""A message's per-run values (``AskAgentCommand.configurable``) checked against the schema a
worker declares, before its agent runs; the adapters pass what comes out to their agent
(LangGraph's ``config["configurable"]``, ADK's session state)."""

import reprlib
from typing import Any

from pydantic import BaseModel, ValidationError


class InvalidConfigurableError(ValueError):
    """A message's configurable values the worker refuses: its task ends FAILED with this
    message, and its agent does not run."""


def validated_configurable(
    values: dict[str, Any], schema: type[BaseModel] | None
) -> dict[str, Any]:
    """``values`` as ``schema`` reads them, defaults filled in, as plain JSON (no schema: as
    sent); ``InvalidConfigurableError`` naming each bad field and what it needs."""
    if schema is None:
        return dict(values)
    try:
        model = schema.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(_problem(error) for error in exc.errors())
        raise InvalidConfigurableError(
            f"configurable does not fit {schema.__name__}: {problems}; "
            "send values that fit it, or leave them out for the defaults"
        ) from None
    return model.model_dump(mode="json")


def _problem(error: Any) -> str:
    field = ".".join(str(part) for part in error["loc"]) or "(the values)"
    if error["type"] == "missing":
        return f"{field}: {error['msg']}"
    return f"{field}: {error['msg']} (got {reprlib.repr(error['input'])})"
