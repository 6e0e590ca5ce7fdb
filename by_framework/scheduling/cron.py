"""Cron expressions: parsing and the next fire time after a given instant."""

from __future__ import annotations

import calendar
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from by_framework.errors import InvalidScheduleError

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# Spelled out rather than taken from calendar.month_abbr, which follows the process locale.
_MONTH_NAMES = {
    name: i
    for i, name in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}
_WEEKDAY_NAMES = {
    name: i for i, name in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])
}
# Longest length of each month, from leap year 2000 so that February 29 counts.
_MONTH_MAX_DAYS = {m: calendar.monthrange(2000, m)[1] for m in range(1, 13)}


@dataclass(frozen=True, slots=True)
class _FieldSpec:
    name: str
    low: int
    high: int
    names: dict[str, int]


_SECOND = _FieldSpec("second", 0, 59, {})
_MINUTE = _FieldSpec("minute", 0, 59, {})
_HOUR = _FieldSpec("hour", 0, 23, {})
_DAY = _FieldSpec("day-of-month", 1, 31, {})
_MONTH = _FieldSpec("month", 1, 12, _MONTH_NAMES)
# 7 is accepted as Sunday and folded onto 0 after parsing.
_WEEKDAY = _FieldSpec("day-of-week", 0, 7, _WEEKDAY_NAMES)


@dataclass(frozen=True, slots=True)
class Cron:
    """A parsed cron expression whose ticks are wall-clock times in `timezone`.

    Five fields (minute hour day-of-month month day-of-week) or six (a leading seconds
    field); with five fields every tick is on second 0. When both day-of-month and
    day-of-week are restricted (neither is `*`), a day matches if either matches (Vixie
    cron); otherwise the restricted one decides.

    Daylight saving time: a local tick that does not exist on a day (the spring-forward
    gap) is skipped that day; a local tick that occurs twice (the fall-back repeat) fires
    once, at its first occurrence.
    """

    expression: str
    timezone: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday ... 6 = Saturday
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, expression: str, timezone: str = "UTC") -> Cron:
        expression = expression.strip()
        prefix = f"cron {expression!r}"
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidScheduleError(f"{prefix}: unknown time zone {timezone!r}") from None
        text = expression
        if text.startswith("@"):
            if text.lower() not in _MACROS:
                raise InvalidScheduleError(
                    f"{prefix}: unknown macro, expected one of {', '.join(_MACROS)}"
                )
            text = _MACROS[text.lower()]
        parts = text.split()
        if len(parts) == 5:
            parts.insert(0, "0")
        elif len(parts) != 6:
            raise InvalidScheduleError(f"{prefix}: expected 5 or 6 fields, got {len(parts)}")
        specs = (_SECOND, _MINUTE, _HOUR, _DAY, _MONTH, _WEEKDAY)
        sec, minute, hour, day, month, weekday = (
            _parse_field(prefix, part, spec) for part, spec in zip(parts, specs, strict=True)
        )
        weekday = frozenset(0 if d == 7 else d for d in weekday)
        cron = cls(
            expression=expression,
            timezone=timezone,
            seconds=sec,
            minutes=minute,
            hours=hour,
            days=day,
            months=month,
            weekdays=weekday,
            days_restricted=parts[3] != "*",
            weekdays_restricted=parts[5] != "*",
        )
        # Only a restricted day-of-month alone can rule out every day: any weekday occurs in
        # every month. February 29 counts, as it recurs every 4 to 8 years.
        if cron.days_restricted and not cron.weekdays_restricted:
            if not any(d <= _MONTH_MAX_DAYS[m] for m in month for d in day):
                raise InvalidScheduleError(
                    f"{prefix}: never fires, no selected month has any of the selected days"
                )
        return cron

    def next_after(self, after: datetime) -> datetime:
        """The first tick strictly after `after` (aware), in UTC with microsecond 0."""
        if after.tzinfo is None or after.utcoffset() is None:
            raise ValueError(f"next_after needs an aware datetime, got naive {after}")
        zone = ZoneInfo(self.timezone)
        local = after.astimezone(zone)
        # Wall times on or before `local`'s are no later than `after` (with fold=0, existing
        # wall times map to instants in order), so the first day's search starts past it.
        floor = local.replace(tzinfo=None)
        day = floor.date()
        while True:
            if day.month not in self.months:
                day = _first_of_next_month(day)
                continue
            if self._day_matches(day):
                for wall in self._times_on(day, floor):
                    tick = wall.replace(tzinfo=zone)
                    utc = tick.astimezone(UTC)
                    # A wall time in the spring-forward gap does not survive the round trip.
                    if utc.astimezone(zone).replace(tzinfo=None) != wall:
                        continue
                    if utc > after:
                        return utc
            day += timedelta(days=1)

    def _day_matches(self, day: date) -> bool:
        in_days = day.day in self.days
        in_weekdays = (day.weekday() + 1) % 7 in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_days or in_weekdays
        return in_days and in_weekdays

    def _times_on(self, day: date, floor: datetime) -> Iterator[datetime]:
        """The day's wall-clock ticks in order, leaving out those on or before `floor`."""
        hours = sorted(self.hours)
        if day == floor.date():
            hours = hours[bisect_left(hours, floor.hour) :]
        for h in hours:
            for m in sorted(self.minutes):
                if day == floor.date() and (h, m) < (floor.hour, floor.minute):
                    continue
                for s in sorted(self.seconds):
                    wall = datetime.combine(day, time(h, m, s))
                    if wall > floor:
                        yield wall


def _first_of_next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _parse_field(prefix: str, text: str, spec: _FieldSpec) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise InvalidScheduleError(f"{prefix}: {spec.name} {text!r} has an empty list item")
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            step = _number(prefix, step_text, spec, "step")
            if step == 0:
                raise InvalidScheduleError(f"{prefix}: {spec.name} step 0 in {item!r}")
        if base == "*":
            low, high = spec.low, spec.high
        elif "-" in base:
            low_text, _, high_text = base.partition("-")
            low, high = _value(prefix, low_text, spec), _value(prefix, high_text, spec)
            if low > high:
                raise InvalidScheduleError(f"{prefix}: {spec.name} range {base!r} is reversed")
        else:
            low = _value(prefix, base, spec)
            # "a/n" runs from a to the field's maximum; a bare "a" is just a.
            high = spec.high if slash else low
        values.update(range(low, high + 1, step))
    return frozenset(values)


def _value(prefix: str, text: str, spec: _FieldSpec) -> int:
    if text.lower() in spec.names:
        return spec.names[text.lower()]
    value = _number(prefix, text, spec, "value")
    if not spec.low <= value <= spec.high:
        raise InvalidScheduleError(
            f"{prefix}: {spec.name} {value} is out of range {spec.low}-{spec.high}"
        )
    return value


def _number(prefix: str, text: str, spec: _FieldSpec, what: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise InvalidScheduleError(f"{prefix}: {spec.name} {what} {text!r} is not valid")
    return int(text)
