"""A new schedule, checked before it is stored: everything a send checks, and its times."""

import time
from datetime import UTC, datetime
from typing import Any

from by_framework.client.validation import new_header
from by_framework.errors import InvalidScheduleError
from by_framework.protocol.ids import new_id
from by_framework.protocol.plain_json import require_json
from by_framework.protocol.schedules import Schedule
from by_framework.scheduling.cron import Cron


def new_schedule(
    target_agent_type: str,
    session_id: str,
    content: Any,
    user_code: str | None,
    metadata: dict[str, Any] | None,
    *,
    at: datetime | float | None = None,
    cron: str | None = None,
    timezone: str = "UTC",
) -> tuple[Schedule, float]:
    """The schedule (one time ``at``, or ``cron`` in ``timezone``) and when it fires first."""
    require_json(content=content, metadata=metadata)
    header = new_header(
        "schedule this message",
        session_id=session_id,
        target_agent_type=target_agent_type,
        user_code=user_code,
        metadata=dict(metadata or {}),
    )
    now = time.time()
    if cron is not None:  # its ticks fall on whole seconds, as stored
        parsed = Cron.parse(cron, timezone)
        first = parsed.next_after(datetime.fromtimestamp(now, UTC)).timestamp()
        when: dict[str, Any] = {"cron": parsed.expression, "timezone": parsed.timezone}
    else:
        first = _unix_time(at)
        if first < now - 1:  # a second's grace: "now" computed by the caller a moment ago
            raise InvalidScheduleError(
                f"cannot schedule this message at {at!r}: that is in the past; send it now "
                "with send_message"
            )
        first = round(first * 1000) / 1000  # as it is stored: to the millisecond
        when = {"at": first}
    schedule = Schedule(
        schedule_id=new_id(),
        target_agent_type=header.target_agent_type,
        session_id=header.session_id,
        content=content,
        metadata=header.metadata,
        user_code=header.user_code,
        created_at=now,
        **when,
    )
    return schedule, first


def _unix_time(at: datetime | float | None) -> float:
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise InvalidScheduleError(
                f"cannot schedule this message at {at!r}: give a time zone "
                "(datetime.now(UTC) + timedelta(...), not datetime.now())"
            )
        return at.timestamp()
    if isinstance(at, int | float) and not isinstance(at, bool):
        return float(at)
    raise InvalidScheduleError(
        f"cannot schedule this message at {at!r}: give a datetime with a time zone, or Unix time"
    )
