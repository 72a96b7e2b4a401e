"""Wall-clock ↔ instant conversion that refuses times a time zone skips (DST gap) or repeats (DST fold), and
half-open interval arithmetic on instants."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from scheduling.errors import AmbiguousLocalTime, NonexistentLocalTime

UTC = dt.UTC
Interval = tuple[dt.datetime, dt.datetime]


def local_to_utc(local: dt.datetime, time_zone: str) -> dt.datetime:
    """The instant of naive wall-clock ``local`` in ``time_zone``. Raises ``NonexistentLocalTime`` for a time in a
    spring-forward gap and ``AmbiguousLocalTime`` for one in an autumn fold (the caller must say which)."""
    if local.tzinfo is not None:
        raise ValueError("local_to_utc takes a naive wall-clock time")
    tz = ZoneInfo(time_zone)
    first = local.replace(tzinfo=tz, fold=0)
    second = local.replace(tzinfo=tz, fold=1)
    if first.utcoffset() != second.utcoffset():
        # Either a gap or a fold. In a gap the wall time does not survive a round trip through UTC.
        if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != local:
            raise NonexistentLocalTime(f"{local.isoformat()} does not exist in {time_zone}")
        raise AmbiguousLocalTime(f"{local.isoformat()} happens twice in {time_zone}")
    return first.astimezone(UTC)


def wall_to_utc_lenient(local: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """For expanding working hours: a wall time in a spring-forward gap maps past the jump (with PEP 495's fold=0,
    02:30 in a 02:00→03:00 gap becomes 03:30), a time in a fold takes its first occurrence."""
    return local.replace(tzinfo=tz, fold=0).astimezone(UTC)


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping union (touching intervals join)."""
    out: list[Interval] = []
    for start, end in sorted(intervals):
        if start >= end:
            continue
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def subtract(base: list[Interval], cuts: Iterable[Interval]) -> list[Interval]:
    """``base`` (merged) minus every interval of ``cuts``."""
    result = base
    for cut_start, cut_end in merge(cuts):
        next_result: list[Interval] = []
        for start, end in result:
            if cut_end <= start or cut_start >= end:
                next_result.append((start, end))
                continue
            if start < cut_start:
                next_result.append((start, cut_start))
            if cut_end < end:
                next_result.append((cut_end, end))
        result = next_result
    return result


def covers(intervals: list[Interval], start: dt.datetime, end: dt.datetime) -> bool:
    """Whether one interval of the merged list contains [start, end)."""
    return any(s <= start and end <= e for s, e in intervals)
