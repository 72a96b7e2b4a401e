"""Reads of scheduling: DTOs, appointment lists for calendars and the board, free-slot search, realtime audience.

Lists that name patients get the names through ``ehr.selectors.patient_refs_get``, which audits the read; the rows
themselves carry ids only.
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from core.realtime.streams import StreamUser
from ehr.models import Role, User
from scheduling.availability import Exception_, Rule, working_intervals
from scheduling.dto import AppointmentRef, FreeSlot, HoldRef, ResourceRef
from scheduling.errors import BookingForbidden, InvalidBooking
from scheduling.models import (
    Appointment,
    AppointmentType,
    AvailabilityException,
    AvailabilityRule,
    Hold,
    ResourceKind,
    Schedule,
    Slot,
    SlotStatus,
    WaitlistEntry,
    WaitlistOffer,
)

BOARD_ROLES = (Role.SCHEDULER, Role.ADMIN, Role.NURSE, Role.PRACTITIONER)
STAFF_READERS = (Role.SCHEDULER, Role.ADMIN, Role.NURSE, Role.PRACTITIONER)
MAX_SEARCH_DAYS = 62


def db_id(value: Any) -> int | None:
    """An id as the database can compare it: an int in bigint's range, else None (which matches no row)."""
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
        return None
    return int(value)


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


# --- free-slot search ---------------------------------------------------------------------------------------------

# The starts each schedule could take, as multirange arithmetic in PostgreSQL (one round trip, a few hundred
# bounds back instead of every busy stretch of the month). A start t is allowed on a schedule when the visit
# [t, t + duration) lies in its working hours, i.e. t is in [work start, work end - duration] (the "work" pieces,
# computed in Python from the weekly rules and exceptions and passed as epoch bounds), and the busy period
# [t - before, t + duration + after) overlaps no blocking slot [s, e): t is not in the open range
# (s - duration - after, e + before). Closed pieces minus open ranges leave closed pieces, and unions and
# intersections of closed pieces stay closed, so every piece that comes back is [lo, hi] with both ends allowed.
# For each practitioner the answer is its allowed starts intersected with, for each other resource the type needs,
# the union over the candidate schedules at its location ("some room is free then"); the candidates' own pieces
# come back too, to pick which of them a start gets.
_ALLOWED_STARTS_SQL = """
WITH work(k, m) AS (
    SELECT k, range_agg(tstzrange(to_timestamp(a), to_timestamp(b), '[]'))
      FROM unnest(%(work_key)s::int[], %(work_lo)s::float8[], %(work_hi)s::float8[]) AS w(k, a, b)
     GROUP BY k
), blocked(schedule_id, m) AS (
    SELECT schedule_id,
           range_agg(tstzrange(lower(period) - %(lead)s::interval, upper(period) + %(trail)s::interval, '()'))
      FROM scheduling_slot
     WHERE schedule_id = ANY(%(ids)s::bigint[])
       AND status IN (%(busy)s, %(tentative)s)
       AND period && tstzrange(%(span_start)s, %(span_end)s, '[)')
       AND (status <> %(tentative)s OR expires_at > %(now)s)
     GROUP BY schedule_id
), allowed(id, m) AS (
    SELECT s.id, coalesce(work.m, '{}'::tstzmultirange) - coalesce(blocked.m, '{}'::tstzmultirange)
      FROM unnest(%(ids)s::bigint[], %(keys)s::int[]) AS s(id, k)
      LEFT JOIN work USING (k)
      LEFT JOIN blocked ON blocked.schedule_id = s.id
), grouped(g, m) AS (
    SELECT g, range_agg(allowed.m)
      FROM unnest(%(group_of)s::int[], %(group_member)s::bigint[]) AS gm(g, id) JOIN allowed USING (id)
     GROUP BY g
), combined(c, m) AS (
    SELECT c, range_intersect_agg(grouped.m)
      FROM unnest(%(combo_of)s::int[], %(combo_group)s::int[]) AS cg(c, g) JOIN grouped USING (g)
     GROUP BY c
), answer(id, m) AS (
    SELECT p.id, CASE WHEN p.c IS NULL THEN allowed.m ELSE allowed.m * combined.m END
      FROM unnest(%(practitioners)s::bigint[], %(practitioner_combo)s::int[]) AS p(id, c)
      JOIN allowed USING (id)
      LEFT JOIN combined ON combined.c = p.c
    UNION ALL
    SELECT id, m FROM allowed WHERE id = ANY(%(members)s::bigint[])
)
SELECT answer.id, pieces.lo, pieces.hi
  FROM answer,
       LATERAL (SELECT array_agg(date_part('epoch', lower(r)) ORDER BY n),
                       array_agg(date_part('epoch', upper(r)) ORDER BY n)
                  FROM unnest(answer.m) WITH ORDINALITY AS u(r, n)) AS pieces(lo, hi)
"""

_RuleRow = tuple[int, dt.time, dt.time, dt.date, dt.date | None]
_ExceptionRow = tuple[str, dt.datetime, dt.datetime]


def _working_keys(
    schedules: Iterable[_Searched],
    rules: dict[int, list[_RuleRow]],
    exceptions: dict[int, list[_ExceptionRow]],
    span_start: dt.datetime,
    span_end: dt.datetime,
) -> tuple[dict[int, tuple[object, ...]], dict[tuple[object, ...], list[tuple[float, float]]]]:
    """Working intervals per schedule as epoch seconds, shared: schedules with the same zone, weekly rules and
    exceptions (most schedules of a clinic) get one key and one expansion, since the result depends on nothing
    else. Rules and exceptions come as plain rows; model objects are built only for the few distinct keys that
    are expanded."""
    keys: dict[int, tuple[object, ...]] = {}
    expanded: dict[tuple[object, ...], list[tuple[float, float]]] = {}
    for s in schedules:
        key = (
            s.time_zone,
            tuple(sorted(rules.get(s.pk, ()), key=lambda r: (r[0], r[1], r[2], r[3], r[4] or dt.date.max))),
            tuple(sorted(exceptions.get(s.pk, ()))),
        )
        keys[s.pk] = key
        if key not in expanded:
            working = working_intervals(
                time_zone=s.time_zone,
                rules=[Rule(*rule) for rule in rules.get(s.pk, ())],
                exceptions=[Exception_(*exception) for exception in exceptions.get(s.pk, ())],
                window_start=span_start,
                window_end=span_end,
            )
            expanded[key] = [(a.timestamp(), b.timestamp()) for a, b in working]
    return keys, expanded


class _Searched(NamedTuple):
    """A schedule as the search reads it (plain values, no model)."""

    pk: int
    kind: str
    name: str
    category: str
    location_id: int
    time_zone: str
    practitioner_id: int | None
    display_name: str


# What the search reads besides the busy time, in one round trip: the type (if active); the practitioners'
# schedules (active, optionally one practitioner or one location) with their names; the type's requirements; the
# active schedules of the required kinds at those practitioners' locations (candidates, by name then id); and the
# weekly rules and the exceptions in the span of every active schedule at those locations (a superset: rules of
# schedules the search does not use are not looked at).
_SEARCH_READS_SQL = """
SELECT duration_minutes, buffer_before_minutes, buffer_after_minutes, slot_interval_minutes, min_notice_minutes,
       horizon_days, patient_bookable
  FROM scheduling_appointmenttype WHERE id = %(type)s AND active;
WITH practitioners AS (
    SELECT id FROM scheduling_schedule
     WHERE kind = %(practitioner_kind)s AND active
       AND (%(practitioner)s::bigint IS NULL OR practitioner_id = %(practitioner)s::bigint)
       AND (%(location)s::bigint IS NULL OR location_id = %(location)s::bigint)
)
SELECT s.id, s.kind, s.name, s.category, s.location_id, s.time_zone, s.practitioner_id,
       u.username, u.first_name, u.last_name
  FROM scheduling_schedule AS s LEFT JOIN ehr_user AS u ON u.id = s.practitioner_id
 WHERE s.id IN (SELECT id FROM practitioners)
 ORDER BY s.kind, s.name, s.id;
SELECT id, kind, category FROM scheduling_resourcerequirement
 WHERE appointment_type_id = %(type)s AND kind <> %(practitioner_kind)s AND NOT optional
 ORDER BY id;
WITH places AS (
    SELECT location_id FROM scheduling_schedule
     WHERE kind = %(practitioner_kind)s AND active
       AND (%(practitioner)s::bigint IS NULL OR practitioner_id = %(practitioner)s::bigint)
       AND (%(location)s::bigint IS NULL OR location_id = %(location)s::bigint)
)
SELECT id, kind, name, category, location_id, time_zone, practitioner_id
  FROM scheduling_schedule
 WHERE active AND location_id IN (SELECT location_id FROM places)
   AND kind IN (SELECT kind FROM scheduling_resourcerequirement
                 WHERE appointment_type_id = %(type)s AND kind <> %(practitioner_kind)s AND NOT optional)
 ORDER BY name, id;
WITH places AS (
    SELECT location_id FROM scheduling_schedule
     WHERE kind = %(practitioner_kind)s AND active
       AND (%(practitioner)s::bigint IS NULL OR practitioner_id = %(practitioner)s::bigint)
       AND (%(location)s::bigint IS NULL OR location_id = %(location)s::bigint)
)
SELECT r.schedule_id, r.weekday, r.start_time, r.end_time, r.effective_from, r.effective_until
  FROM scheduling_availabilityrule AS r JOIN scheduling_schedule AS s ON s.id = r.schedule_id
 WHERE s.active AND s.location_id IN (SELECT location_id FROM places);
WITH places AS (
    SELECT location_id FROM scheduling_schedule
     WHERE kind = %(practitioner_kind)s AND active
       AND (%(practitioner)s::bigint IS NULL OR practitioner_id = %(practitioner)s::bigint)
       AND (%(location)s::bigint IS NULL OR location_id = %(location)s::bigint)
)
SELECT x.schedule_id, x.kind, x.start, x."end"
  FROM scheduling_availabilityexception AS x JOIN scheduling_schedule AS s ON s.id = x.schedule_id
 WHERE s.active AND s.location_id IN (SELECT location_id FROM places)
   AND x.start < %(span_end)s AND x."end" > %(span_start)s
"""
# The span the rules and exceptions are read for: the widest any type can need (window start minus the
# longest buffer, end plus the longest visit and buffer), so the read does not wait for the type.
_SEARCH_SPAN_MARGIN = dt.timedelta(days=2)


def _display_name(username: str | None, first_name: str | None, last_name: str | None) -> str:
    """``User.display_name`` from its columns."""
    if username is None:
        return ""
    return f"{first_name or ''} {last_name or ''}".strip() or username


def _aligned(first: float, tz: ZoneInfo, step: int) -> float:
    """The first start at or after ``first`` that lies on the type's grid: a whole number of ``step`` seconds
    after local midnight in ``tz`` (grids are whole seconds, so the answer is rounded to one: no float noise
    from a window that starts at ``now``)."""
    local = dt.datetime.fromtimestamp(first, tz)
    into_day = (local.hour * 60 + local.minute) * 60 + local.second + local.microsecond / 1e6
    return float(round(first + (-into_day % step)))


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
    are aligned to the type's interval in the practitioner's time zone, counted from local midnight of the day
    each working interval (or the window) begins. Of a resource's candidates (by name, then id) a start gets the
    first one free then. Patients see only patient-bookable types and starts after the minimum notice. A constant
    number of queries whatever the window (docs/scheduling.md); PostgreSQL does the interval arithmetic, so the
    Python work grows with the number of free starts, not with the number of candidate starts.
    """
    rules: dict[int, list[_RuleRow]] = defaultdict(list)
    exceptions: dict[int, list[_ExceptionRow]] = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(
            _SEARCH_READS_SQL,
            {
                "type": db_id(appointment_type_id),
                "practitioner_kind": ResourceKind.PRACTITIONER,
                "practitioner": db_id(practitioner_id),
                "location": db_id(location_id),
                "span_start": window_start - _SEARCH_SPAN_MARGIN,
                "span_end": window_end + _SEARCH_SPAN_MARGIN,
            },
        )
        type_row = cursor.fetchone()
        cursor.nextset()
        practitioner_rows = cursor.fetchall()
        cursor.nextset()
        requirement_rows = cursor.fetchall()
        cursor.nextset()
        other_rows = cursor.fetchall()
        cursor.nextset()
        for schedule_id, *rule in cursor.fetchall():
            rules[schedule_id].append(tuple(rule))  # type: ignore[arg-type]
        cursor.nextset()
        for schedule_id, *exc in cursor.fetchall():
            exceptions[schedule_id].append(tuple(exc))  # type: ignore[arg-type]
    if type_row is None:
        raise InvalidBooking({"appointment_type_id": ["Unknown or inactive appointment type."]})
    (
        duration_minutes,
        buffer_before_minutes,
        buffer_after_minutes,
        slot_interval_minutes,
        min_notice_minutes,
        horizon_days,
        patient_bookable,
    ) = type_row
    is_staff = actor.has_role(*STAFF_READERS)
    if not is_staff and not patient_bookable:
        raise BookingForbidden("patients cannot book this appointment type themselves")
    _check_window(window_start, window_end)
    now = timezone.now()
    earliest = now + dt.timedelta(minutes=0 if is_staff else min_notice_minutes)
    latest = now + dt.timedelta(days=horizon_days)
    start_bound = max(window_start, earliest)
    end_bound = min(window_end, latest)
    if end_bound <= start_bound:
        return []

    practitioner_list = [
        _Searched(pk, kind, name, category, where, zone, user_id, _display_name(username, first, last))
        for pk, kind, name, category, where, zone, user_id, username, first, last in practitioner_rows
    ]
    if not practitioner_list:
        return []
    requirements = [(pk, kind, category) for pk, kind, category in requirement_rows]
    locations = {p.location_id for p in practitioner_list}
    others: dict[tuple[int, int], list[_Searched]] = defaultdict(list)  # (requirement id, location) -> schedules
    for pk, kind, name, category, where, zone, user_id in other_rows:
        schedule = _Searched(pk, kind, name, category, where, zone, user_id, "")
        for r_pk, r_kind, r_category in requirements:
            if kind == r_kind and (not r_category or category == r_category):
                others[(r_pk, where)].append(schedule)
    # A practitioner is searched only where every resource the type needs has a candidate at its location.
    practitioner_list = [p for p in practitioner_list if all(others.get((r[0], p.location_id)) for r in requirements)]
    if not practitioner_list:
        return []
    members = {s.pk: s for group in others.values() for s in group}
    unique = {s.pk: s for s in practitioner_list} | members
    ids = list(unique)

    before = dt.timedelta(minutes=buffer_before_minutes)
    after = dt.timedelta(minutes=buffer_after_minutes)
    duration = dt.timedelta(minutes=duration_minutes)
    span_start, span_end = start_bound - before, end_bound + duration + after
    step = slot_interval_minutes * 60
    dur = duration.total_seconds()
    lo, hi = start_bound.timestamp(), end_bound.timestamp()
    # The exceptions were read for a wider span: those outside this one cannot matter (working_intervals clips).
    keys, expanded = _working_keys(unique.values(), rules, exceptions, span_start, span_end)

    # The start pieces of each working interval: [first start, last start], clipped to the window. Practitioners'
    # pieces begin on their grid (their aligned first starts), the candidates' at the window or their hours.
    grids: dict[tuple[object, ...], tuple[list[float], list[float]]] = {}  # practitioner key -> (grid starts, ends)
    piece_key: dict[tuple[bool, tuple[object, ...]], int] = {}
    work_key: list[int] = []
    work_lo: list[float] = []
    work_hi: list[float] = []

    def pieces_of(key: tuple[object, ...], on_grid: bool) -> int:
        index = piece_key.get((on_grid, key))
        if index is not None:
            return index
        index = piece_key[(on_grid, key)] = len(piece_key)
        tz = ZoneInfo(str(key[0]))
        starts: list[float] = []
        ends: list[float] = []
        for work_start, work_end in expanded[key]:
            first = max(work_start, lo)
            last = min(work_end - dur, hi)
            if on_grid:
                first = _aligned(first, tz, step)
            if first > last:
                continue
            starts.append(first)
            ends.append(last)
            work_key.append(index)
            work_lo.append(first)
            work_hi.append(last)
        if on_grid:
            grids[key] = (starts, ends)
        return index

    schedule_keys = [pieces_of(keys[pk], pk not in members) for pk in ids]
    group_index = {group: g for g, group in enumerate(others)}
    combo_index: dict[int, int] = {}
    combo_of: list[int] = []
    combo_group: list[int] = []
    for where in sorted(locations):
        if requirements and all(others.get((r[0], where)) for r in requirements):
            combo_index[where] = len(combo_index)
            for r in requirements:
                combo_of.append(combo_index[where])
                combo_group.append(group_index[(r[0], where)])
    with connection.cursor() as cursor:
        cursor.execute(
            _ALLOWED_STARTS_SQL,
            {
                "work_key": work_key,
                "work_lo": work_lo,
                "work_hi": work_hi,
                "lead": f"{(duration + after).total_seconds()} seconds",
                "trail": f"{before.total_seconds()} seconds",
                "ids": ids,
                "keys": schedule_keys,
                "busy": SlotStatus.BUSY,
                "tentative": SlotStatus.BUSY_TENTATIVE,
                "span_start": span_start,
                "span_end": span_end,
                "now": now,
                "group_of": [group_index[key] for key, group in others.items() for _ in group],
                "group_member": [s.pk for group in others.values() for s in group],
                "combo_of": combo_of,
                "combo_group": combo_group,
                "practitioners": [p.pk for p in practitioner_list],
                "practitioner_combo": [combo_index.get(p.location_id) for p in practitioner_list],
                "members": list(members),
            },
        )
        allowed: dict[int, tuple[list[float], list[float]]] = {
            pk: (los or [], his or []) for pk, los, his in cursor.fetchall()
        }

    # Every grid start inside a practitioner's allowed pieces is a free slot (the pieces lie within one working
    # interval each, whose grid they are walked on).
    found: list[tuple[float, int, int]] = []  # (start, practitioner schedule, location)
    for practitioner in practitioner_list:
        grid_starts, _ends = grids[keys[practitioner.pk]]
        pk, where = practitioner.pk, practitioner.location_id
        for a, b in zip(*allowed.get(pk, ([], [])), strict=True):
            origin = grid_starts[bisect_right(grid_starts, a) - 1]
            k = math.ceil((a - origin) / step) if a > origin else 0
            if origin + k * step < a:
                k += 1
            t = origin + k * step
            while t <= b and t < hi:
                found.append((t, pk, where))
                k += 1
                t = origin + k * step
    found.sort()

    def takes(schedule_pk: int, t: float) -> bool:
        starts, ends = allowed.get(schedule_pk, ([], []))
        i = bisect_right(starts, t) - 1
        return i >= 0 and t <= ends[i]

    # Which schedule of each resource group a start gets depends only on the location and the start, not on the
    # practitioner: decided once per (location, start), with the start's instants, and shared by the practitioners
    # there (several practitioners usually share a start).
    refs = {pk: ResourceRef(schedule_id=pk, kind=s.kind, name=s.name) for pk, s in members.items()}
    groups_at = {
        where: [[s.pk for s in others[(r[0], where)]] for r in requirements]
        for where in {where for _t, _pk, where in found}
    }
    resources: dict[tuple[int, ...], tuple[ResourceRef, ...]] = {}
    at: dict[tuple[int, float], tuple[dt.datetime, dt.datetime, tuple[ResourceRef, ...]] | None] = {}
    names = {p.pk: (p.practitioner_id or 0, p.display_name) for p in practitioner_list}
    results: list[FreeSlot] = []
    for t, pk, where in found:
        place = (where, t)
        if place not in at:
            picked = tuple(next((s for s in group if takes(s, t)), 0) for group in groups_at[where])
            if 0 in picked:  # cannot happen: t lies in every group's union
                at[place] = None
            else:
                if picked not in resources:
                    resources[picked] = tuple(refs[i] for i in picked)
                start = dt.datetime.fromtimestamp(t, dt.UTC)
                at[place] = (start, start + duration, resources[picked])
        slot = at[place]
        if slot is not None:
            user_id, display_name = names[pk]
            results.append(FreeSlot(slot[0], slot[1], user_id, display_name, where, slot[2]))
    return results
