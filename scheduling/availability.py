"""When a schedule can be booked: weekly rules expanded in the schedule's time zone, plus extra sessions, minus
time off and blocked time. Pure reads; the booking services and slot search share them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import NamedTuple, Protocol
from zoneinfo import ZoneInfo

from scheduling.models import AvailabilityException, AvailabilityRule, ExceptionKind, Schedule
from scheduling.timeutil import Interval, merge, subtract, wall_to_utc_lenient


class RuleLike(Protocol):
    """What the expansion reads of a weekly rule: an ``AvailabilityRule`` or a ``Rule`` read as a plain row."""

    @property
    def weekday(self) -> int: ...
    @property
    def start_time(self) -> dt.time: ...
    @property
    def end_time(self) -> dt.time: ...
    @property
    def effective_from(self) -> dt.date: ...
    @property
    def effective_until(self) -> dt.date | None: ...


class ExceptionLike(Protocol):
    """What the expansion reads of an exception: an ``AvailabilityException`` or an ``Exception_`` row."""

    @property
    def kind(self) -> str: ...
    @property
    def start(self) -> dt.datetime: ...
    @property
    def end(self) -> dt.datetime: ...


class Rule(NamedTuple):
    """A weekly rule as read by hot paths (no model instance)."""

    weekday: int
    start_time: dt.time
    end_time: dt.time
    effective_from: dt.date
    effective_until: dt.date | None


class Exception_(NamedTuple):  # noqa: N801 -- "Exception" is the builtin
    """An availability exception as read by hot paths (no model instance)."""

    kind: str
    start: dt.datetime
    end: dt.datetime


def expand_rules(
    rules: Iterable[RuleLike], time_zone: str, window_start: dt.datetime, window_end: dt.datetime
) -> list[Interval]:
    """The weekly rules as UTC intervals overlapping [window_start, window_end). Each rule's wall-clock hours are
    converted on their own date, so 09:00-17:00 stays 09:00-17:00 local on both sides of a DST change."""
    tz = ZoneInfo(time_zone)
    by_weekday: dict[int, list[RuleLike]] = {}
    for rule in rules:
        by_weekday.setdefault(rule.weekday, []).append(rule)
    day = window_start.astimezone(tz).date() - dt.timedelta(days=1)
    last = window_end.astimezone(tz).date() + dt.timedelta(days=1)
    out: list[Interval] = []
    while day <= last:
        for rule in by_weekday.get(day.weekday(), ()):
            if day < rule.effective_from or (rule.effective_until is not None and day >= rule.effective_until):
                continue
            start = wall_to_utc_lenient(dt.datetime.combine(day, rule.start_time), tz)
            end = wall_to_utc_lenient(dt.datetime.combine(day, rule.end_time), tz)
            if start < window_end and end > window_start and start < end:
                out.append((start, end))
        day += dt.timedelta(days=1)
    return merge(out)


def working_intervals(
    *,
    time_zone: str,
    rules: Iterable[RuleLike],
    exceptions: Iterable[ExceptionLike],
    window_start: dt.datetime,
    window_end: dt.datetime,
) -> list[Interval]:
    """When the schedule works in the window: rules plus extra sessions minus unavailable exceptions, clipped."""
    exceptions = list(exceptions)
    base = expand_rules(rules, time_zone, window_start, window_end)
    base = merge(base + [(e.start, e.end) for e in exceptions if e.kind == ExceptionKind.AVAILABLE])
    base = subtract(base, [(e.start, e.end) for e in exceptions if e.kind == ExceptionKind.UNAVAILABLE])
    return [(max(s, window_start), min(e, window_end)) for s, e in base if e > window_start and s < window_end]


def schedule_working_intervals(
    schedule: Schedule, window_start: dt.datetime, window_end: dt.datetime
) -> list[Interval]:
    """``working_intervals`` of one schedule, with its rules and exceptions fetched (two queries)."""
    return working_intervals(
        time_zone=schedule.time_zone,
        rules=AvailabilityRule.objects.filter(schedule=schedule),
        exceptions=AvailabilityException.objects.filter(schedule=schedule, start__lt=window_end, end__gt=window_start),
        window_start=window_start,
        window_end=window_end,
    )
