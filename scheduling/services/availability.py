"""Setting when resources can be booked: weekly hours (replaced as a whole) and dated exceptions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction

from ehr.models import Role, User
from scheduling.errors import BookingForbidden, InvalidBooking, NotFound
from scheduling.models import AvailabilityException, AvailabilityRule, ExceptionKind, Schedule

MANAGERS = (Role.SCHEDULER, Role.ADMIN)


@dataclass(frozen=True)
class WeeklyHours:
    weekday: int
    start_time: dt.time
    end_time: dt.time
    effective_from: dt.date
    effective_until: dt.date | None = None


def _schedule_for_manager(actor: User, schedule_id: int) -> Schedule:
    if not actor.has_role(*MANAGERS):
        raise BookingForbidden("only schedulers and administrators manage availability")
    schedule = Schedule.objects.select_for_update().filter(pk=schedule_id).first()
    if schedule is None:
        raise NotFound("Schedule", schedule_id)
    return schedule


def availability_set(*, actor: User, schedule_id: int, rules: list[WeeklyHours]) -> list[AvailabilityRule]:
    """Replace a schedule's weekly hours. Rules of one weekday must not overlap in time and dates; existing
    bookings are kept (a booking outside the new hours stays booked). Schedulers and admins."""
    errors: dict[str, list[str]] = {}
    for index, rule in enumerate(rules):
        if rule.start_time >= rule.end_time:
            errors[f"rules[{index}]"] = ["Start must be before end."]
        if rule.effective_until is not None and rule.effective_until <= rule.effective_from:
            errors[f"rules[{index}]"] = ["effective_until must be after effective_from."]
    for i, a in enumerate(rules):
        for j in range(i + 1, len(rules)):
            b = rules[j]
            dates_overlap = (b.effective_until is None or a.effective_from < b.effective_until) and (
                a.effective_until is None or b.effective_from < a.effective_until
            )
            if a.weekday == b.weekday and dates_overlap and a.start_time < b.end_time and b.start_time < a.end_time:
                errors[f"rules[{j}]"] = [f"Overlaps rules[{i}] on the same weekday."]
    if errors:
        raise InvalidBooking(errors)
    with transaction.atomic():
        schedule = _schedule_for_manager(actor, schedule_id)
        AvailabilityRule.objects.filter(schedule=schedule).delete()
        return AvailabilityRule.objects.bulk_create(
            [
                AvailabilityRule(
                    schedule=schedule,
                    weekday=r.weekday,
                    start_time=r.start_time,
                    end_time=r.end_time,
                    effective_from=r.effective_from,
                    effective_until=r.effective_until,
                )
                for r in rules
            ]
        )


def availability_exception_add(
    *, actor: User, schedule_id: int, kind: str, start: dt.datetime, end: dt.datetime, reason: str = ""
) -> AvailabilityException:
    """Block time / time off (``unavailable``) or an extra session (``available``). Bookings already in blocked
    time are kept; new ones cannot be made there. Schedulers and admins."""
    if kind not in ExceptionKind.values:
        raise InvalidBooking({"kind": [f"One of {', '.join(ExceptionKind.values)}."]})
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise InvalidBooking({"end": ["Give instants with offsets, end after start."]})
    if end - start > dt.timedelta(days=366):
        raise InvalidBooking({"end": ["At most a year at a time."]})
    with transaction.atomic():
        schedule = _schedule_for_manager(actor, schedule_id)
        return AvailabilityException.objects.create(
            schedule=schedule, kind=kind, start=start, end=end, reason=(reason or "").strip()[:200], created_by=actor
        )


def availability_exception_remove(*, actor: User, exception_id: int) -> None:
    with transaction.atomic():
        exception = AvailabilityException.objects.filter(pk=exception_id).first()
        if exception is None:
            raise NotFound("AvailabilityException", exception_id)
        _schedule_for_manager(actor, exception.schedule_id)
        exception.delete()
