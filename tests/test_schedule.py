"""Business hours as pure functions of an instant: parsing, open/closed, next opening and closing, time zones,
holidays, DST. Every instant is given; nothing reads the clock."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from gateway.schedule import ScheduleError, describe_opening, parse_business_hours, parse_timezone

BERLIN = ZoneInfo("Europe/Berlin")
UTC = dt.UTC


def hours(text: str, zone: str = "Europe/Berlin"):  # type: ignore[no-untyped-def]
    return parse_business_hours(text, parse_timezone(zone))


def at(text: str, zone: ZoneInfo = BERLIN) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=zone)


# 2026-12-04 is a Friday.
@pytest.mark.parametrize(("instant", "open_"), [
    ("2026-12-04 07:59", False), ("2026-12-04 08:00", True), ("2026-12-04 17:59", True),
    ("2026-12-04 18:00", False), ("2026-12-05 10:00", False), ("2026-12-07 09:00", True),
])
def test_weekday_hours_open_and_close_on_the_minute(instant: str, open_: bool) -> None:
    assert hours("mon-fri 08:00-18:00").is_open(at(instant)) is open_


def test_the_zone_decides_not_the_instants_own_offset() -> None:
    schedule = hours("mon-fri 08:00-18:00")
    # 07:30 UTC is 08:30 in Berlin in winter: open; the same instant in UTC terms would be before 08:00.
    assert schedule.is_open(at("2026-12-04 07:30", UTC))
    assert not hours("mon-fri 08:00-18:00", "UTC").is_open(at("2026-12-04 07:30", UTC))


def test_friday_evening_opens_next_on_monday_morning_with_seconds_to_wait() -> None:
    schedule = hours("mon-fri 08:00-18:00")
    friday_evening = at("2026-12-04 18:00:01")
    opening = schedule.next_open(friday_evening)
    assert opening == at("2026-12-07 08:00")
    assert schedule.seconds_until_open(friday_evening) == 2 * 86400 + 14 * 3600 - 1
    assert describe_opening(opening) == "Monday 2026-12-07 08:00 Europe/Berlin (07:00 UTC)"
    assert describe_opening(opening.astimezone(parse_timezone("UTC"))) == "Monday 2026-12-07 07:00 UTC"


def test_holidays_close_the_whole_day_and_push_the_opening() -> None:
    schedule = hours("mon-fri 08:00-18:00, 2026-12-24, 2026-12-25")
    assert not schedule.is_open(at("2026-12-24 10:00"))
    assert schedule.next_open(at("2026-12-23 19:00")) == at("2026-12-28 08:00")
    # A holiday ends a round-the-clock run at its midnight.
    always = hours("mon-sun 00:00-24:00, 2026-12-25")
    assert always.next_close(at("2026-12-24 10:00")) == at("2026-12-25 00:00")
    assert always.next_open(at("2026-12-25 10:00")) == at("2026-12-26 00:00")


def test_several_ranges_add_up_and_touching_ranges_close_once() -> None:
    schedule = hours("mon-fri 08:00-12:00, mon-fri 12:00-18:00, sat 09:00-12:00")
    assert schedule.next_close(at("2026-12-04 09:00")) == at("2026-12-04 18:00")
    assert schedule.next_open(at("2026-12-04 19:00")) == at("2026-12-05 09:00")
    lunch = hours("mon-fri 08:00-12:00, mon-fri 13:00-18:00")
    assert not lunch.is_open(at("2026-12-04 12:30"))
    assert lunch.next_open(at("2026-12-04 12:30")) == at("2026-12-04 13:00")


def test_day_ranges_may_wrap_and_24_00_runs_into_the_next_day() -> None:
    schedule = hours("sat-sun 00:00-24:00")
    assert schedule.is_open(at("2026-12-06 23:59"))
    assert not schedule.is_open(at("2026-12-07 00:00"))
    assert schedule.next_close(at("2026-12-05 10:00")) == at("2026-12-07 00:00")


def test_open_instants_are_their_own_next_opening() -> None:
    schedule = hours("mon-fri 08:00-18:00")
    now = at("2026-12-04 10:00")
    assert schedule.next_open(now) == now and schedule.seconds_until_open(now) == 0


def test_a_dst_change_moves_the_opening_in_utc_not_in_local_time() -> None:
    schedule = hours("mon-fri 08:00-18:00")
    # Berlin leaves summer time on Sunday 2026-10-25: Friday's 08:00 is 06:00 UTC, Monday's is 07:00 UTC.
    assert schedule.next_open(at("2026-10-23 07:00")).astimezone(UTC).hour == 6
    assert schedule.next_open(at("2026-10-24 12:00")).astimezone(UTC) == dt.datetime(2026, 10, 26, 7, tzinfo=UTC)


@pytest.mark.parametrize(("text", "fragment"), [
    ("mon-fri 8-18", "'mon-fri 8-18' is malformed"),
    ("mon-fri 08:00-25:00", "'25:00' is not a time of day"),
    ("mon-fry 08:00-18:00", "'fry' is not a day"),
    ("mon-fri 18:00-08:00", "the end must be after the start"),
    ("2026-02-30", "not a real date"),
    ("2026-12-25", "no open range"),
    ("", "no open range"),
])
def test_malformed_hours_are_refused_naming_the_setting_and_the_item(text: str, fragment: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        hours(text)
    assert "SQLGATE_BUSINESS_HOURS" in str(caught.value) and fragment in str(caught.value)


def test_a_bad_zone_is_refused_naming_the_setting() -> None:
    with pytest.raises(ScheduleError, match="SQLGATE_TIMEZONE 'Europe/Atlantis' is not an IANA"):
        parse_timezone("Europe/Atlantis")
