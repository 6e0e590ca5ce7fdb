"""Answers to ``QueryCommand``: what a worker says about a session's state."""

from typing import Any

from pydantic import BaseModel, ConfigDict

GET_STATE = "get_state"
GET_HISTORY = "get_history"
UPDATE_STATE = "update_state"


class QueryAnswer(BaseModel):
    """The value a worker's ``answer_query`` returned (plain JSON), or the error it raised."""

    model_config = ConfigDict(extra="ignore")

    value: Any = None
    error: str | None = None
