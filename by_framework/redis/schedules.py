"""Scheduled runs in Redis: the definitions, a sorted set of when each fires next, and the ticks
being fired. Taking due ones is one script, so each tick is taken by one worker at a time; a
taker that dies holds it only until its lease runs out (docs/scheduling.md)."""

import logging
from typing import Any

from pydantic import ValidationError

from by_framework.ports import DueFiring
from by_framework.protocol.schedules import Schedule, ScheduleState
from by_framework.redis.batching import Batcher, evalsha
from by_framework.redis.keys import KeySpace
from by_framework.redis.scripts import (
    ADD_SCHEDULE,
    REMOVE_SCHEDULE,
    SETTLE_FIRING,
    TAKE_DUE,
    AddScheduleArgs,
    RemoveScheduleArgs,
    SettleFiringArgs,
    TakeDueArgs,
)

log = logging.getLogger(__name__)


class RedisSchedules:
    def __init__(self, batcher: Batcher, keys: KeySpace) -> None:
        self._batcher = batcher
        self._keys = [
            keys.schedules_due(),
            keys.schedules_firing(),
            keys.schedule_definitions(),
            keys.schedules_state(),
        ]

    async def add(self, schedule: Schedule, first_at: float) -> bool:
        (added,) = await self._batcher.execute(
            evalsha(
                ADD_SCHEDULE,
                self._keys,
                AddScheduleArgs(schedule.schedule_id, schedule.definition_json(), _ms(first_at)),
            )
        )
        return bool(added)

    async def take_due(self, now: float, lease: float, limit: int) -> list[DueFiring]:
        lease_end = _ms(now + lease)
        (taken,) = await self._batcher.execute(
            evalsha(TAKE_DUE, self._keys, TakeDueArgs(_ms(now), lease_end, limit))
        )
        states = await self._states([_text(taken[i]) for i in range(0, len(taken), 3)])
        firings = []
        for i in range(0, len(taken), 3):
            schedule_id, tick, definition = _text(taken[i]), float(taken[i + 1]), taken[i + 2]
            try:
                schedule = Schedule.model_validate_json(definition)
            except ValidationError as exc:  # left claimed: it is logged again each lease
                log.error(
                    "schedule %s cannot be read (%s); remove it with "
                    "`python -m by_framework schedule remove %s`",
                    schedule_id, _first_error(exc), schedule_id,
                )  # fmt: skip
                continue
            schedule.state = states.get(schedule_id, ScheduleState())
            firings.append(DueFiring(schedule, tick / 1000, lease_end))
        return firings

    async def settle(
        self, firing: DueFiring, next_at: float | None, state: ScheduleState, fired: bool
    ) -> bool:
        args = SettleFiringArgs(
            schedule_id=firing.schedule.schedule_id,
            lease_end_ms=firing.lease_end,
            next_ms="" if next_at is None else _ms(next_at),
            state=state.model_dump_json(),
            fired="1" if fired else "0",
        )
        (settled,) = await self._batcher.execute(evalsha(SETTLE_FIRING, self._keys, args))
        return bool(settled)

    async def remove(self, schedule_id: str) -> bool:
        (removed,) = await self._batcher.execute(
            evalsha(REMOVE_SCHEDULE, self._keys, RemoveScheduleArgs(schedule_id))
        )
        return bool(removed)

    async def all(self) -> list[Schedule]:
        due, firing, definitions, states = self._keys
        scores, ticks, stored, state_of = await self._batcher.execute(
            ("ZRANGE", due, 0, -1, "WITHSCORES"),
            ("HGETALL", firing),
            ("HGETALL", definitions),
            ("HGETALL", states),
        )
        next_at = {_text(key): float(score) / 1000 for key, score in _pairs(scores)}
        pending = {_text(key): float(tick) / 1000 for key, tick in _pairs(ticks)}
        raw_states = {_text(key): value for key, value in _pairs(state_of)}
        schedules = []
        for key, definition in _pairs(stored):
            try:
                schedule = Schedule.model_validate_json(definition)
                if (raw_state := raw_states.get(schedule.schedule_id)) is not None:
                    schedule.state = ScheduleState.model_validate_json(raw_state)
            except ValidationError as exc:
                log.error("schedule %s cannot be read: %s", _text(key), _first_error(exc))
                continue
            schedule.next_at = next_at.get(schedule.schedule_id)
            schedule.pending_tick = pending.get(schedule.schedule_id)
            schedules.append(schedule)
        return sorted(schedules, key=lambda s: (s.next_at or 0, s.schedule_id))

    async def _states(self, schedule_ids: list[str]) -> dict[str, ScheduleState]:
        if not schedule_ids:
            return {}
        (raw,) = await self._batcher.execute(("HMGET", self._keys[3], *schedule_ids))
        states: dict[str, ScheduleState] = {}
        for schedule_id, value in zip(schedule_ids, raw, strict=True):
            if value is None:
                continue
            try:
                states[schedule_id] = ScheduleState.model_validate_json(value)
            except ValidationError as exc:  # counts restart; the schedule still fires
                log.error("schedule %s's state cannot be read: %s", schedule_id, _first_error(exc))
        return states


def _ms(at: float) -> int:
    return round(at * 1000)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _pairs(reply: Any) -> list[tuple[Any, Any]]:
    """A reply of pairs (HGETALL, ZRANGE WITHSCORES): a flat list on RESP2; a map or a list of
    pairs on RESP3."""
    if isinstance(reply, dict):
        return list(reply.items())
    if reply and isinstance(reply[0], list):
        return [(key, value) for key, value in reply]
    return [(reply[i], reply[i + 1]) for i in range(0, len(reply), 2)]


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(part) for part in error['loc']) or 'JSON'}: {error['msg']}"
