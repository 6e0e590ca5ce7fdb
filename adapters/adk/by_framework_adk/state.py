"""An ADK session's state for clients on other machines (``client.get_state``,
``get_history``, ``update_state``), read and written by the worker that holds the session
store."""

from typing import Any

from google.adk.events import Event, EventActions
from google.adk.sessions import BaseSessionService, Session

from by_framework import QueryError
from by_framework.backends import GET_HISTORY, GET_STATE, UPDATE_STATE
from by_framework_adk.questions import live_events

HISTORY_PAGE_MAX = 200
UPDATE_AUTHOR = "user"


def event_json(event: Event) -> dict[str, Any]:
    """An event of the session as a client reads it."""
    data: dict[str, Any] = event.model_dump(mode="json", exclude_none=True, by_alias=False)
    return data


async def answer(
    service: BaseSessionService, session: Session, name: str, args: dict[str, Any]
) -> Any:
    """The answer to a client's question ``name`` about ``session``."""
    events = live_events(session.events)
    if name == GET_STATE:
        return {
            "session_id": session.id,
            "user_id": session.user_id,
            "state": dict(session.state),
            "events": len(events),
            "last_update_time": session.last_update_time,
        }
    if name == GET_HISTORY:
        limit = args.get("limit", 20)
        if not isinstance(limit, int) or not 0 < limit <= HISTORY_PAGE_MAX:
            raise QueryError(f"limit must be a whole number from 1 to {HISTORY_PAGE_MAX}")
        newest_first = list(reversed(events))
        before = args.get("before")
        if before is not None:
            ids = [event.id for event in newest_first]
            if before not in ids:
                raise QueryError(f"no event {before!r} in session {session.id!r}")
            newest_first = newest_first[ids.index(before) + 1 :]
        return [event_json(event) for event in newest_first[:limit]]
    if name == UPDATE_STATE:
        values = args.get("values")
        if not isinstance(values, dict) or not values:
            raise QueryError("values must be an object: the state keys to set")
        event = Event(
            author=UPDATE_AUTHOR,
            invocation_id=Event.new_id(),
            actions=EventActions(state_delta=values),
        )
        await service.append_event(session, event)
        return {"session_id": session.id, "event_id": event.id}
    raise QueryError(
        f"an ADK worker answers {GET_STATE}, {GET_HISTORY} and {UPDATE_STATE}, not {name!r}"
    )
