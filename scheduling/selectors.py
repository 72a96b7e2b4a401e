"""Reads of scheduling: DTOs, appointment lists for calendars and the board, free-slot search, realtime audience.

Lists that name patients get the names through ``ehr.selectors.patient_refs_get``, which audits the read; the rows
themselves carry ids only.
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import FloatField, Func, Q, QuerySet
from django.utils import timezone

from core.realtime.streams import StreamUser
from ehr.models import Role, User
from scheduling.availability import working_intervals
from scheduling.dto import AppointmentRef, FreeSlot, HoldRef, ResourceRef
from scheduling.errors import BookingForbidden, InvalidBooking
from scheduling.models import (
    Appointment,
    AppointmentType,
    AvailabilityException,
    AvailabilityRule,
    Hold,
    ResourceKind,
    ResourceRequirement,
    Schedule,
    Slot,
    SlotStatus,
    WaitlistEntry,
    WaitlistOffer,
)

BOARD_ROLES = (Role.SCHEDULER, Role.ADMIN, Role.NURSE, Role.PRACTITIONER)
STAFF_READERS = (Role.SCHEDULER, Role.ADMIN, Role.NURSE, Role.PRACTITIONER)
MAX_SEARCH_DAYS = 62


def _check_window(window_start: dt.datetime, window_end: dt.datetime) -> None:
    if window_end <= window_start or window_end - window_start > dt.timedelta(days=MAX_SEARCH_DAYS):
        raise InvalidBooking({"end": [f"Give a window of at most {MAX_SEARCH_DAYS} days."]})


def board_may_receive(user: StreamUser, name: str) -> bool:
    """Realtime authoriser for ``group:scheduling.*``: the board stream is for scheduling and clinical staff."""
    return name == "scheduling.board" and isinstance(user, User) and user.has_role(*BOARD_ROLES)


# --- DTOs -------------------------------------------------------------------------------------------------------


def _resource(schedule: Schedule) -> ResourceRef:
    return ResourceRef(schedule_id=schedule.pk, kind=schedule.kind, name=schedule.name)


def appointments_query() -> QuerySet[Appointment]:
    return Appointment.objects.select_related("appointment_type", "practitioner", "location")


def appointment_dto(appointment: Appointment, slots: Iterable[Slot] | None = None) -> AppointmentRef:
    """The DTO of one appointment. ``slots`` (with schedules selected) avoids a query when listing many."""
    if slots is None:
        slots = Slot.objects.filter(appointment=appointment).select_related("schedule")
    # A released appointment shows the resources it had; an active one those it holds.
    resources = tuple(sorted({_resource(s.schedule) for s in slots}, key=lambda r: (r.kind != "practitioner", r.name)))
    return AppointmentRef(
        id=appointment.pk,
        patient_id=appointment.patient_id,
        appointment_type_id=appointment.appointment_type_id,
        appointment_type_name=appointment.appointment_type.name,
        practitioner_id=appointment.practitioner_id,
        practitioner_display_name=appointment.practitioner.display_name,
        location_id=appointment.location_id,
        location_name=appointment.location.name,
        modality=appointment.modality,
        status=appointment.status,
        start=appointment.start,
        end=appointment.end,
        resources=resources,
        encounter_id=appointment.encounter_id,
        series_id=appointment.series_id,
        comment=appointment.comment,
        cancel_reason=appointment.cancel_reason,
        override_reason=appointment.override_reason,
        arrived_at=appointment.arrived_at,
        checked_in_at=appointment.checked_in_at,
        visit_started_at=appointment.visit_started_at,
        fulfilled_at=appointment.fulfilled_at,
        version=appointment.version,
        created_at=appointment.created_at,
        updated_at=appointment.updated_at,
    )


def appointment_dtos(appointments: list[Appointment]) -> list[AppointmentRef]:
    """DTOs of many appointments with one more query (their slots and schedules)."""
    by_appointment: dict[int, list[Slot]] = defaultdict(list)
    for slot in Slot.objects.filter(appointment_id__in=[a.pk for a in appointments]).select_related("schedule"):
        assert slot.appointment_id is not None
        by_appointment[slot.appointment_id].append(slot)
    return [appointment_dto(a, by_appointment[a.pk]) for a in appointments]


def hold_dto(hold: Hold) -> HoldRef:
    slots = Slot.objects.filter(hold=hold).select_related("schedule")
    return HoldRef(
        id=str(hold.pk),
        patient_id=hold.patient_id,
        appointment_type_id=hold.appointment_type_id,
        practitioner_id=hold.practitioner_id,
        location_id=hold.location_id,
        start=hold.start,
        end=hold.end,
        expires_at=hold.expires_at,
        resources=tuple(_resource(s.schedule) for s in slots),
    )


# --- lists ------------------------------------------------------------------------------------------------------


def appointment_list(
    *,
    actor: User,
    window_start: dt.datetime,
    window_end: dt.datetime,
    location_id: int | None = None,
    practitioner_id: int | None = None,
    schedule_id: int | None = None,
    statuses: list[str] | None = None,
) -> list[AppointmentRef]:
    """Appointments starting in the window (calendar, board), oldest first; staff only. Two queries."""
    if not actor.has_role(*STAFF_READERS):
        raise BookingForbidden("staff only")
    _check_window(window_start, window_end)
    query = appointments_query().filter(start__lt=window_end, end__gt=window_start)
    if location_id is not None:
        query = query.filter(location_id=location_id)
    if practitioner_id is not None:
        query = query.filter(practitioner_id=practitioner_id)
    if schedule_id is not None:
        query = query.filter(slots__schedule_id=schedule_id).distinct()
    if statuses:
        query = query.filter(status__in=statuses)
    return appointment_dtos(list(query.order_by("start", "id")[:2000]))


def appointment_list_for_patient(*, patient_id: int) -> list[AppointmentRef]:
    """A patient's appointments, newest first, including those booked under a duplicate record that was later
    merged into this one (the caller has checked it is the patient or their staff)."""
    query = appointments_query().filter(Q(patient_id=patient_id) | Q(patient__merged_into_id=patient_id))
    return appointment_dtos(list(query.order_by("-start", "-id")[:500]))


def appointment_get(*, appointment_id: int) -> AppointmentRef | None:
    appointment = appointments_query().filter(pk=appointment_id).first()
    return appointment_dto(appointment) if appointment is not None else None


def appointment_noshow_after_minutes(*, appointment_type_id: int) -> int | None:
    """How long after its start a booked appointment of this type becomes a no-show (telehealth closes check-in
    then); None for an unknown type. One query."""
    return AppointmentType.objects.filter(pk=appointment_type_id).values_list("noshow_after_minutes", flat=True).first()


# --- configuration and the waitlist ---------------------------------------------------------------------------


def appointment_type_list(*, actor: User) -> list[AppointmentType]:
    """Active appointment types with their requirements: staff see all, patients the ones they may self-book."""
    query = AppointmentType.objects.filter(active=True).prefetch_related("requirements")
    if not actor.has_role(*STAFF_READERS):
        query = query.filter(patient_bookable=True)
    return list(query)


def schedule_list(*, actor: User, kind: str | None = None, location_id: int | None = None) -> list[Schedule]:
    """Active resources by kind and name (patients see practitioners only: they choose a doctor, not a room)."""
    query = Schedule.objects.filter(active=True).select_related("location")
    if not actor.has_role(*STAFF_READERS):
        query = query.filter(kind=ResourceKind.PRACTITIONER)
    if kind is not None:
        query = query.filter(kind=kind)
    if location_id is not None:
        query = query.filter(location_id=location_id)
    return list(query.order_by("kind", "name"))


def availability_get(
    *, schedule_id: int
) -> tuple[Schedule, list[AvailabilityRule], list[AvailabilityException]] | None:
    """A schedule with its weekly rules and its exceptions that have not ended yet (None when unknown)."""
    schedule = Schedule.objects.filter(pk=schedule_id).first()
    if schedule is None:
        return None
    rules = list(AvailabilityRule.objects.filter(schedule=schedule))
    exceptions = list(AvailabilityException.objects.filter(schedule=schedule, end__gt=timezone.now()))
    return schedule, rules, exceptions


def waitlist_for_patient(*, patient_id: int) -> tuple[list[WaitlistEntry], list[WaitlistOffer]]:
    """A patient's latest 50 waitlist entries and offers, newest first (the caller checked it is the patient)."""
    entries = list(WaitlistEntry.objects.filter(patient_id=patient_id).order_by("-created_at")[:50])
    offers = list(WaitlistOffer.objects.filter(entry__patient_id=patient_id).order_by("-created_at")[:50])
    return entries, offers


# --- free-slot search -------------------------------------------------------------------------------------------


class _Timeline:
    """Working and busy intervals of one schedule as sorted epoch seconds, for O(log n) checks. Busy intervals
    are merged (sorted, non-overlapping), so only the last one starting before a period's end can overlap it."""

    __slots__ = ("busy_ends", "busy_starts", "work_ends", "work_starts")

    def __init__(self, work: tuple[list[float], list[float]], busy: tuple[list[float], list[float]]) -> None:
        self.work_starts, self.work_ends = work
        self.busy_starts, self.busy_ends = busy

    def works(self, start: float, end: float) -> bool:
        i = bisect_right(self.work_starts, start) - 1
        return i >= 0 and self.work_ends[i] >= end

    def free(self, start: float, end: float) -> bool:
        i = bisect_left(self.busy_starts, end) - 1
        return i < 0 or self.busy_ends[i] <= start


class _Epoch(Func):
    """Seconds since 1970 of a timestamptz, as a float (what ``datetime.timestamp()`` gives, without building
    datetimes and ranges in Python for every busy slot)."""

    template = "EXTRACT(EPOCH FROM %(expressions)s)::float8"
    output_field = FloatField()


def _busy_timelines(
    schedule_ids: list[int], span_start: dt.datetime, span_end: dt.datetime, now: dt.datetime
) -> dict[int, tuple[list[float], list[float]]]:
    """Merged blocking periods per schedule overlapping the span (expired holds do not block), as epoch seconds.
    One query: PostgreSQL merges each schedule's periods itself (``range_agg`` joins overlapping and touching
    ranges, as ``timeutil.merge`` does) and returns one row per schedule with the bounds as two float arrays, so
    thousands of busy slots a month cost two array parses instead of a row, two datetimes and a range each."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT schedule_id,
                   array_agg(EXTRACT(EPOCH FROM lower(stretch))::float8 ORDER BY stretch),
                   array_agg(EXTRACT(EPOCH FROM upper(stretch))::float8 ORDER BY stretch)
              FROM (SELECT schedule_id, unnest(range_agg(period)) AS stretch
                      FROM scheduling_slot
                     WHERE schedule_id = ANY(%s)
                       AND status IN (%s, %s)
                       AND period && tstzrange(%s, %s, '[)')
                       AND (status <> %s OR expires_at > %s)
                     GROUP BY schedule_id) AS merged
             GROUP BY schedule_id
            """,
            [
                schedule_ids,
                SlotStatus.BUSY,
                SlotStatus.BUSY_TENTATIVE,
                span_start,
                span_end,
                SlotStatus.BUSY_TENTATIVE,
                now,
            ],
        )
        return {schedule_id: (list(los), list(his)) for schedule_id, los, his in cursor.fetchall()}


def _working_timelines(
    schedules: Iterable[Schedule],
    rules: dict[int, list[AvailabilityRule]],
    exceptions: dict[int, list[AvailabilityException]],
    span_start: dt.datetime,
    span_end: dt.datetime,
) -> dict[int, tuple[list[float], list[float]]]:
    """Working intervals per schedule as epoch seconds. Schedules with the same zone, weekly rules and exceptions
    (most practitioners of a clinic) share one expansion: the result depends on nothing else."""
    expanded: dict[tuple[object, ...], tuple[list[float], list[float]]] = {}
    out: dict[int, tuple[list[float], list[float]]] = {}
    for s in schedules:
        key = (
            s.time_zone,
            tuple(
                sorted(
                    (r.weekday, r.start_time, r.end_time, r.effective_from, r.effective_until or dt.date.max)
                    for r in rules[s.pk]
                )
            ),
            tuple(sorted((e.kind, e.start, e.end) for e in exceptions[s.pk])),
        )
        if key not in expanded:
            working = working_intervals(
                time_zone=s.time_zone,
                rules=rules[s.pk],
                exceptions=exceptions[s.pk],
                window_start=span_start,
                window_end=span_end,
            )
            expanded[key] = ([a.timestamp() for a, _ in working], [b.timestamp() for _, b in working])
        out[s.pk] = expanded[key]
    return out


def free_slot_search(
    *,
    actor: User,
    appointment_type_id: int,
    window_start: dt.datetime,
    window_end: dt.datetime,
    practitioner_id: int | None = None,
    location_id: int | None = None,
) -> list[FreeSlot]:
    """Every bookable start of an appointment type in the window, across all practitioners (or one) and with one
    free schedule for each other resource the type needs, in start order.

    A start qualifies when the visit lies inside the working hours of the practitioner and of each chosen resource,
    and the busy period (buffers included) overlaps no blocking slot of theirs (expired holds do not block). Starts
    are aligned to the type's interval in the practitioner's time zone. Patients see only patient-bookable types and
    starts after the minimum notice. A constant number of queries whatever the window (docs/scheduling.md).
    """
    appointment_type = AppointmentType.objects.filter(pk=appointment_type_id, active=True).first()
    if appointment_type is None:
        raise InvalidBooking({"appointment_type_id": ["Unknown or inactive appointment type."]})
    is_staff = actor.has_role(*STAFF_READERS)
    if not is_staff and not appointment_type.patient_bookable:
        raise BookingForbidden("patients cannot book this appointment type themselves")
    _check_window(window_start, window_end)
    now = timezone.now()
    earliest = now + dt.timedelta(minutes=0 if is_staff else appointment_type.min_notice_minutes)
    latest = now + dt.timedelta(days=appointment_type.horizon_days)
    start_bound = max(window_start, earliest)
    end_bound = min(window_end, latest)
    if end_bound <= start_bound:
        return []

    practitioners = Schedule.objects.filter(kind=ResourceKind.PRACTITIONER, active=True).select_related("practitioner")
    if practitioner_id is not None:
        practitioners = practitioners.filter(practitioner_id=practitioner_id)
    if location_id is not None:
        practitioners = practitioners.filter(location_id=location_id)
    practitioner_list = list(practitioners)
    if not practitioner_list:
        return []
    requirements = [
        r
        for r in ResourceRequirement.objects.filter(appointment_type=appointment_type)
        if r.kind != ResourceKind.PRACTITIONER and not r.optional
    ]
    locations = {p.location_id for p in practitioner_list}
    others: dict[tuple[int, int], list[Schedule]] = defaultdict(list)  # (requirement id, location) -> schedules
    if requirements:
        for schedule in Schedule.objects.filter(
            kind__in={r.kind for r in requirements}, location_id__in=locations, active=True
        ).order_by("name", "id"):
            for r in requirements:
                if schedule.kind == r.kind and (not r.category or schedule.category == r.category):
                    others[(r.pk, schedule.location_id)].append(schedule)
    schedules = practitioner_list + [s for group in others.values() for s in group]
    ids = list({s.pk for s in schedules})

    before = dt.timedelta(minutes=appointment_type.buffer_before_minutes)
    after = dt.timedelta(minutes=appointment_type.buffer_after_minutes)
    duration = dt.timedelta(minutes=appointment_type.duration_minutes)
    span_start, span_end = start_bound - before, end_bound + duration + after
    rules: dict[int, list[AvailabilityRule]] = defaultdict(list)
    for rule in AvailabilityRule.objects.filter(schedule_id__in=ids):
        rules[rule.schedule_id].append(rule)
    exceptions: dict[int, list[AvailabilityException]] = defaultdict(list)
    for exc in AvailabilityException.objects.filter(schedule_id__in=ids, start__lt=span_end, end__gt=span_start):
        exceptions[exc.schedule_id].append(exc)
    unique = {s.pk: s for s in schedules}
    working = _working_timelines(unique.values(), rules, exceptions, span_start, span_end)
    busy = _busy_timelines(ids, span_start, span_end, now)
    no_busy: tuple[list[float], list[float]] = ([], [])
    timelines = {pk: _Timeline(working[pk], busy.get(pk, no_busy)) for pk in unique}

    step = appointment_type.slot_interval_minutes * 60
    dur, bb, ba = duration.total_seconds(), before.total_seconds(), after.total_seconds()
    lo, hi = start_bound.timestamp(), end_bound.timestamp()
    found: list[tuple[float, int, tuple[Schedule, ...]]] = []
    # Which schedule of a resource group a start gets depends only on the group and the start, not on the
    # practitioner: decided once per (requirement, location, start) and reused by every practitioner there.
    choices: dict[tuple[int, int, float], Schedule | None] = {}
    group_timelines = defaultdict(list, {key: [(s, timelines[s.pk]) for s in group] for key, group in others.items()})
    for practitioner in practitioner_list:
        timeline = timelines[practitioner.pk]
        tz = ZoneInfo(practitioner.time_zone)
        groups = [(r.pk, group_timelines[(r.pk, practitioner.location_id)]) for r in requirements]
        if any(not g for _, g in groups):
            continue
        where, practitioner_pk = practitioner.location_id, practitioner.pk
        busy_starts, busy_ends = timeline.busy_starts, timeline.busy_ends
        n_busy = len(busy_ends)
        for work_start, work_end in zip(timeline.work_starts, timeline.work_ends, strict=True):
            first = max(work_start, lo)
            local = dt.datetime.fromtimestamp(first, tz)
            offset_minutes = local.hour * 60 + local.minute
            misalignment = (offset_minutes * 60 + local.second + local.microsecond / 1e6) % step
            t = first + ((step - misalignment) % step)
            # The practitioner's own busy stretches are walked with a pointer (starts only move forward), which
            # is ``timeline.free`` without a search per start: j is the first stretch ending after the busy start.
            j = bisect_right(busy_ends, t - bb)
            while t + dur <= work_end and t < hi:
                visit_end, busy_start, busy_end = t + dur, t - bb, t + dur + ba
                while j < n_busy and busy_ends[j] <= busy_start:
                    j += 1
                if j < n_busy and busy_starts[j] < busy_end:
                    # Busy: every aligned start before this stretch's end (plus the buffer) overlaps it too.
                    t += max(1, math.ceil((busy_ends[j] + bb - t) / step)) * step
                    continue
                picked: list[Schedule] = []
                for requirement_pk, group in groups:
                    key = (requirement_pk, where, t)
                    if key in choices:
                        choice = choices[key]
                    else:
                        choice = choices[key] = next(
                            (s for s, line in group if line.works(t, visit_end) and line.free(busy_start, busy_end)),
                            None,
                        )
                    if choice is None:
                        break
                    picked.append(choice)
                else:
                    found.append((t, practitioner_pk, tuple(picked)))
                t += step
    found.sort(key=lambda item: (item[0], item[1]))
    by_id = {
        p.pk: (p.practitioner_id or 0, p.practitioner.display_name if p.practitioner else "", p.location_id)
        for p in practitioner_list
    }
    refs = {s.pk: _resource(s) for group in others.values() for s in group}
    resources: dict[tuple[int, ...], tuple[ResourceRef, ...]] = {}
    results: list[FreeSlot] = []
    for t, schedule_pk, picked_set in found:
        user_id, display_name, practitioner_location = by_id[schedule_pk]
        ids_key = tuple(s.pk for s in picked_set)
        if ids_key not in resources:
            resources[ids_key] = tuple(refs[i] for i in ids_key)
        start = dt.datetime.fromtimestamp(t, dt.UTC)
        results.append(
            FreeSlot(
                start=start,
                end=start + duration,
                practitioner_id=user_id,
                practitioner_display_name=display_name,
                location_id=practitioner_location,
                resources=resources[ids_key],
            )
        )
    return results
