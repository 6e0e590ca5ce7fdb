"""Cron parsing and next fire times: syntax, day rules, time zones and DST, errors."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from by_framework.errors import InvalidScheduleError
from by_framework.scheduling.cron import Cron


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def nxt(expression: str, after: datetime, tz: str = "UTC") -> datetime:
    return Cron.parse(expression, tz).next_after(after)


def test_star_fires_next_minute() -> None:
    assert nxt("* * * * *", at(2027, 1, 1, 10, 0, 30)) == at(2027, 1, 1, 10, 1)


def test_number_range_step_and_list() -> None:
    assert nxt("15 * * * *", at(2027, 1, 1, 10, 20)) == at(2027, 1, 1, 11, 15)
    assert nxt("10-12 * * * *", at(2027, 1, 1, 10, 11)) == at(2027, 1, 1, 10, 12)
    assert nxt("10-12 * * * *", at(2027, 1, 1, 10, 12)) == at(2027, 1, 1, 11, 10)
    assert nxt("*/15 * * * *", at(2027, 1, 1, 10, 16)) == at(2027, 1, 1, 10, 30)
    assert nxt("10-40/20 * * * *", at(2027, 1, 1, 10, 11)) == at(2027, 1, 1, 10, 30)
    assert nxt("50/5 * * * *", at(2027, 1, 1, 10, 56)) == at(2027, 1, 1, 11, 50)
    assert nxt("5,7,1-2 * * * *", at(2027, 1, 1, 10, 5)) == at(2027, 1, 1, 10, 7)
    assert Cron.parse("5,7,1-2 * * * *").minutes == frozenset({1, 2, 5, 7})


def test_month_and_weekday_names() -> None:
    cron = Cron.parse("0 0 1 JAN,mar * ")
    assert cron.expression == "0 0 1 JAN,mar *"
    assert cron.months == frozenset({1, 3})
    assert Cron.parse("0 0 * * mon-fri").weekdays == frozenset({1, 2, 3, 4, 5})
    # 2027-01-01 is a Friday: the next weekday is Monday the 4th.
    assert nxt("0 9 * * Mon-Fri", at(2027, 1, 1, 9)) == at(2027, 1, 4, 9)


def test_zero_and_seven_are_sunday() -> None:
    assert Cron.parse("0 0 * * 0").weekdays == frozenset({0})
    assert Cron.parse("0 0 * * 7").weekdays == frozenset({0})
    assert Cron.parse("0 0 * * 5-7").weekdays == frozenset({5, 6, 0})
    assert nxt("0 0 * * 7", at(2027, 1, 1)) == at(2027, 1, 3)


def test_day_of_month_or_weekday_when_both_restricted() -> None:
    # The 15th or any Monday: from Friday 2027-01-01, Monday the 4th comes first.
    assert nxt("0 0 15 * mon", at(2027, 1, 1)) == at(2027, 1, 4)
    assert nxt("0 0 15 * mon", at(2027, 1, 12)) == at(2027, 1, 15)


def test_only_the_restricted_day_field_decides() -> None:
    assert nxt("0 0 15 * *", at(2027, 1, 1)) == at(2027, 1, 15)
    assert nxt("0 0 * * mon", at(2027, 1, 5)) == at(2027, 1, 11)


def test_six_fields_have_seconds() -> None:
    assert nxt("*/2 * * * * *", at(2027, 1, 1, 10, 0, 1)) == at(2027, 1, 1, 10, 0, 2)
    assert nxt("*/2 * * * * *", at(2027, 1, 1, 10, 0, 58)) == at(2027, 1, 1, 10, 1)
    assert nxt("30 0 12 * * *", at(2027, 1, 1, 12, 0, 30)) == at(2027, 1, 2, 12, 0, 30)


def test_macros() -> None:
    start = at(2027, 5, 5, 5, 5)
    assert nxt("@yearly", start) == at(2028, 1, 1)
    assert nxt("@annually", start) == at(2028, 1, 1)
    assert nxt("@monthly", start) == at(2027, 6, 1)
    assert nxt("@weekly", start) == at(2027, 5, 9)
    assert nxt("@daily", start) == at(2027, 5, 6)
    assert nxt("@midnight", start) == at(2027, 5, 6)
    assert nxt("@HOURLY", start) == at(2027, 5, 5, 6)


def test_month_and_year_rollover() -> None:
    assert nxt("0 0 1 * *", at(2027, 1, 31, 23, 59)) == at(2027, 2, 1)
    assert nxt("59 23 31 12 *", at(2027, 12, 31, 23, 59)) == at(2028, 12, 31, 23, 59)
    assert nxt("0 0 31 * *", at(2027, 4, 1)) == at(2027, 5, 31)


def test_february_29_waits_for_a_leap_year() -> None:
    assert nxt("0 0 29 2 *", at(2027, 3, 1)) == at(2028, 2, 29)
    # 2100 is not a leap year: 2096 is followed by 2104.
    assert nxt("0 0 29 2 *", at(2096, 3, 1)) == at(2104, 2, 29)


def test_strictly_after_a_tick() -> None:
    assert nxt("0 * * * *", at(2027, 1, 1, 10)) == at(2027, 1, 1, 11)
    assert nxt("0 * * * *", at(2027, 1, 1, 10, 0, 0, 1)) == at(2027, 1, 1, 11)


def test_result_is_utc_with_no_microseconds() -> None:
    after = datetime(2027, 1, 1, 12, 0, 0, 500, tzinfo=timezone(timedelta(hours=2)))
    result = nxt("* * * * *", after)
    assert result == at(2027, 1, 1, 10, 1)
    assert result.tzinfo is UTC
    assert result.microsecond == 0


def test_time_zone_winter_and_summer() -> None:
    assert nxt("0 9 * * *", at(2027, 1, 10), "Europe/Paris") == at(2027, 1, 10, 8)
    assert nxt("0 9 * * *", at(2027, 7, 10), "Europe/Paris") == at(2027, 7, 10, 7)


def test_dst_gap_skips_the_missing_time() -> None:
    # 2027-03-28 Paris jumps from 02:00 to 03:00: 02:30 does not exist that day.
    assert nxt("30 2 * * *", at(2027, 3, 27, 2), "Europe/Paris") == at(2027, 3, 29, 0, 30)
    # An hourly tick goes straight from 01:00 CET to 03:00 CEST.
    assert nxt("0 * * * *", at(2027, 3, 28, 0), "Europe/Paris") == at(2027, 3, 28, 1)


def test_dst_repeat_fires_once_at_the_first_occurrence() -> None:
    # 2027-10-31 Paris repeats 02:00-03:00: 02:30 CEST (00:30 UTC) then 02:30 CET (01:30 UTC).
    first = nxt("30 2 * * *", at(2027, 10, 30, 12), "Europe/Paris")
    assert first == at(2027, 10, 31, 0, 30)
    assert nxt("30 2 * * *", first, "Europe/Paris") == at(2027, 11, 1, 1, 30)
    # From inside the repeated hour (second pass), the next tick is the next day's.
    assert nxt("30 2 * * *", at(2027, 10, 31, 1, 0), "Europe/Paris") == at(2027, 11, 1, 1, 30)
    # An every-15-minutes tick runs the repeated hour once, then continues after it.
    assert nxt("*/15 * * * *", at(2027, 10, 31, 0, 45), "Europe/Paris") == at(2027, 10, 31, 2)


@pytest.mark.parametrize(
    ("expression", "timezone_name", "message"),
    [
        ("61 * * * *", "UTC", r"cron '61 \* \* \* \*': minute 61 is out of range 0-59"),
        ("0 24 * * *", "UTC", r"hour 24 is out of range 0-23"),
        ("0 0 0 * *", "UTC", r"day-of-month 0 is out of range 1-31"),
        ("0 0 * 13 *", "UTC", r"month 13 is out of range 1-12"),
        ("0 0 * * 8", "UTC", r"day-of-week 8 is out of range 0-7"),
        ("60 * * * * *", "UTC", r"second 60 is out of range 0-59"),
        ("0 0 * * *", "Mars/Olympus", r"unknown time zone 'Mars/Olympus'"),
        ("* * * *", "UTC", r"expected 5 or 6 fields, got 4"),
        ("* * * * * * *", "UTC", r"expected 5 or 6 fields, got 7"),
        ("0 0 30 2 *", "UTC", r"cron '0 0 30 2 \*': never fires"),
        ("0 0 31 4,6,9,11 *", "UTC", r"never fires"),
        ("*/0 * * * *", "UTC", r"minute step 0 in '\*/0'"),
        ("5-1 * * * *", "UTC", r"minute range '5-1' is reversed"),
        ("1,,2 * * * *", "UTC", r"minute '1,,2' has an empty list item"),
        ("1, * * * *", "UTC", r"minute '1,' has an empty list item"),
        ("x * * * *", "UTC", r"minute value 'x' is not valid"),
        ("0 0 * foo *", "UTC", r"month value 'foo' is not valid"),
        ("*/a * * * *", "UTC", r"minute step 'a' is not valid"),
        ("1-2-3 * * * *", "UTC", r"minute value '2-3' is not valid"),
        ("@often", "UTC", r"cron '@often': unknown macro"),
    ],
)
def test_invalid_expressions(expression: str, timezone_name: str, message: str) -> None:
    with pytest.raises(InvalidScheduleError, match=message):
        Cron.parse(expression, timezone_name)


def test_feb_30_with_a_weekday_does_fire() -> None:
    # Both restricted: the OR rule lets every Monday in February fire.
    assert nxt("0 0 30 2 mon", at(2027, 1, 1)) == at(2027, 2, 1)


def test_naive_datetime_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        Cron.parse("* * * * *").next_after(datetime(2027, 1, 1))
