"""Business hours: when the model is meant to be up, in the team's time zone.

Pure functions over aware datetimes; nothing here reads a clock (callers pass `now`), so tests inject any instant.
Imports nothing of the package: the gateway, the scheduler (launch/scheduler.py) and settings all use it.

Grammar of SQLGATE_BUSINESS_HOURS, comma-separated items:
  `mon-fri 08:00-18:00`   days (one day, or a range that may wrap: `fri-mon`) and a time range (end may be 24:00)
  `sat 09:00-12:00`       several items add up; adjacent or overlapping ranges merge
  `2026-12-25`            a holiday: closed that whole (local) day
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Whatever the schedule, the next opening or closing is within a year and a week (a year of holidays at most).
SEARCH_DAYS = 380

_RANGE = re.compile(r"^(?P<days>[a-z]{3}(?:-[a-z]{3})?)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class ScheduleError(ValueError):
    """A business-hours string or time-zone name that can't be used; the message says what to write instead."""


@dataclass(frozen=True)
class OpenRange:
    """Open on `weekdays` (0 = Monday) from `start_min` to `end_min`, minutes after local midnight."""

    weekdays: frozenset[int]
    start_min: int
    end_min: int


@dataclass(frozen=True)
class BusinessHours:
    """Weekly open ranges, holidays, and the zone they are read in."""

    ranges: tuple[OpenRange, ...]
    holidays: frozenset[dt.date]
    zone: ZoneInfo
    text: str

    def is_open(self, now: dt.datetime) -> bool:
        """True when `now` (any aware datetime) falls in an open range of its local day."""
        local = now.astimezone(self.zone)
        if local.date() in self.holidays:
            return False
        minute = local.hour * 60 + local.minute
        return any(local.weekday() in r.weekdays and r.start_min <= minute < r.end_min for r in self.ranges)

    def next_open(self, now: dt.datetime) -> dt.datetime:
        """The first opening at or after `now` (`now` itself when open), in the schedule's zone."""
        if self.is_open(now):
            return now.astimezone(self.zone)
        return self._next_edge(now, opening=True)

    def next_close(self, now: dt.datetime) -> dt.datetime:
        """The first closing at or after `now` (`now` itself when closed), ranges that touch counted as one."""
        if not self.is_open(now):
            return now.astimezone(self.zone)
        return self._next_edge(now, opening=False)

    def seconds_until_open(self, now: dt.datetime) -> int:
        """Whole seconds until the next opening, rounded up (a Retry-After value); 0 when open."""
        delta = (self.next_open(now) - now).total_seconds()
        return max(0, int(-(-delta // 1)))

    def _next_edge(self, now: dt.datetime, *, opening: bool) -> dt.datetime:
        """Scan range boundaries day by day from `now`'s local date; the first where openness flips."""
        local_now = now.astimezone(self.zone)
        for offset in range(SEARCH_DAYS):
            day = local_now.date() + dt.timedelta(days=offset)
            minutes = sorted({m for r in self.ranges if day.weekday() in r.weekdays
                              for m in ((r.start_min,) if opening else (r.end_min,))})
            for minute in minutes:
                edge = _local_instant(day, minute, self.zone)
                if edge <= local_now:
                    continue
                if self.is_open(edge) == opening:
                    return edge
        raise ScheduleError(f"SQLGATE_BUSINESS_HOURS '{self.text}' never {'opens' if opening else 'closes'}")


def _local_instant(day: dt.date, minute: int, zone: ZoneInfo) -> dt.datetime:
    """`minute` after midnight of `day` in `zone`; a wall time skipped by a DST change lands after the gap."""
    naive = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minute)
    instant = naive.replace(tzinfo=zone)
    # Round-trip through UTC: a non-existent wall time comes back normalised to a real instant.
    return instant.astimezone(dt.UTC).astimezone(zone)


def parse_timezone(name: str) -> ZoneInfo:
    """An IANA zone; a bad name is refused naming the setting."""
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"SQLGATE_TIMEZONE '{name}' is not an IANA time-zone name (e.g. Europe/Berlin, America/New_York, UTC)"
        ) from None


def parse_business_hours(text: str, zone: ZoneInfo) -> BusinessHours:
    """Parse SQLGATE_BUSINESS_HOURS (grammar in the module docstring); malformed text is refused with the item."""
    ranges: list[OpenRange] = []
    holidays: set[dt.date] = set()
    for raw in text.split(","):
        item = " ".join(raw.strip().lower().split())
        if not item:
            continue
        if _DATE.match(item):
            try:
                holidays.add(dt.date.fromisoformat(item))
            except ValueError:
                raise _bad(text, item, "not a real date") from None
            continue
        match = _RANGE.match(item)
        if match is None:
            raise _bad(text, item, "expected `mon-fri 08:00-18:00` or a holiday `2026-12-25`")
        start, end = _minutes(text, item, match["start"]), _minutes(text, item, match["end"])
        if end <= start:
            raise _bad(text, item, "the end must be after the start (split a range that crosses midnight)")
        ranges.append(OpenRange(_weekdays(text, item, match["days"]), start, end))
    if not ranges:
        raise ScheduleError(f"SQLGATE_BUSINESS_HOURS '{text}' has no open range (e.g. `mon-fri 08:00-18:00`); "
                            "leave it unset to stay open all the time")
    return BusinessHours(tuple(ranges), frozenset(holidays), zone, text)


def _bad(text: str, item: str, why: str) -> ScheduleError:
    return ScheduleError(f"SQLGATE_BUSINESS_HOURS '{text}': '{item}' is malformed: {why}")


def _minutes(text: str, item: str, clock: str) -> int:
    hours, minutes = (int(part) for part in clock.split(":"))
    if minutes >= 60 or hours > 24 or (hours == 24 and minutes):
        raise _bad(text, item, f"'{clock}' is not a time of day (00:00..24:00)")
    return hours * 60 + minutes


def _weekdays(text: str, item: str, spec: str) -> frozenset[int]:
    first, _, last = spec.partition("-")
    for name in (first, last or first):
        if name not in DAYS:
            raise _bad(text, item, f"'{name}' is not a day (mon tue wed thu fri sat sun)")
    start, stop = DAYS.index(first), DAYS.index(last or first)
    return frozenset((start + step) % 7 for step in range((stop - start) % 7 + 1))


def describe_opening(opening: dt.datetime) -> str:
    """`Monday 2026-12-07 08:00 Europe/Berlin (07:00 UTC)`: when the model opens, as the team reads it."""
    utc = opening.astimezone(dt.UTC)
    local = f"{opening:%A %Y-%m-%d %H:%M} {opening.tzinfo}"
    return local if str(opening.tzinfo) in ("UTC", "Etc/UTC") else f"{local} ({utc:%H:%M} UTC)"
