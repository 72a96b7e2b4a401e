"""Holds and bookings: every required resource is taken atomically, or nothing is.

Correctness does not rest on the checks in this module. Each booking inserts one ``Slot`` per resource; the
``slot_no_double_booking`` exclusion constraint in PostgreSQL rejects an overlap with any blocking slot, whatever
the interleaving of concurrent transactions (docs/concurrency.md). The checks here (availability, notice, who may
book) produce clear errors; the constraint produces the guarantee. All slots of a booking are inserted in one
statement, so a conflict on any resource leaves nothing behind. A booking claims its time first (a hold with its
tentative slots, committed at once, so racers learn they lost without waiting), then writes the appointment and
everything that goes with it in a second transaction that turns the claim into the booking.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import DatabaseError, IntegrityError, OperationalError, connection, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from psycopg.types.range import TimestamptzRange as DateTimeTZRange

from ehr.access import PatientAction, patient_access_check
from ehr.errors import AccessDenied, InvalidClinicalData
from ehr.errors import InvalidTransition as EhrInvalidTransition
from ehr.errors import PatientMerged as EhrPatientMerged
from ehr.models import Location, Patient, PatientStatus, Role, User
from ehr.services.clinical import encounter_cancel, encounter_plan, encounter_replan
from scheduling.availability import Exception_, Rule, working_intervals
from scheduling.dto import AppointmentRef, HoldRef
from scheduling.errors import (
    BeyondHorizon,
    BookingForbidden,
    BookingInPast,
    HoldExpired,
    HoldNotActive,
    InvalidBooking,
    MissingResource,
    NotFound,
    OutsideAvailability,
    PatientRecordMerged,
    SlotUnavailable,
    TooLate,
    VersionConflict,
)
from scheduling.events import appointment_event_record
from scheduling.models import (
    BLOCKING_SLOT_STATUSES,
    Appointment,
    AppointmentStatus,
    AppointmentType,
    AvailabilityException,
    AvailabilityRule,
    Hold,
    HoldStatus,
    Modality,
    ResourceKind,
    ResourceRequirement,
    Schedule,
    Slot,
    SlotStatus,
)
from scheduling.reminders import reminders_plan, reminders_replan, reminders_withdraw
from scheduling.selectors import appointment_dto, db_id, hold_dto
from scheduling.services.transitions import appointment_transition
from scheduling.timeutil import Interval, covers

logger = logging.getLogger(__name__)

STAFF_BOOKERS = (Role.SCHEDULER, Role.ADMIN, Role.PRACTITIONER, Role.NURSE)
OVERRIDERS = (Role.SCHEDULER, Role.ADMIN)
EXCLUSION_CONSTRAINT = "slot_no_double_booking"
# Two-key advisory locks (SCHEDULE_LOCK_SPACE, schedule id) queue the slot inserts of one schedule (_insert_slots).
SCHEDULE_LOCK_SPACE = 5_172_041
DEADLOCK_DETECTED = "40P01"
_CONFLICT_KEY = re.compile(r"\(schedule_id, period\)=\((\d+),")
# Auto-chosen rooms/equipment: when a racing booking takes the one we picked, try the next free one.
AUTO_PICK_ATTEMPTS = 3


def is_staff_booker(actor: User) -> bool:
    return actor.has_role(*STAFF_BOOKERS)


def hold_ttl() -> dt.timedelta:
    return dt.timedelta(seconds=settings.SCHEDULING_HOLD_TTL_SECONDS)


def claim_ttl() -> dt.timedelta:
    """How long a booking's claim on its time lasts if the booking never completes (a crashed worker)."""
    return dt.timedelta(seconds=settings.SCHEDULING_BOOKING_CLAIM_SECONDS)


@dataclass
class _Plan:
    """A validated booking request: the type, the visit, the busy period (buffers included) and the schedules."""

    appointment_type: AppointmentType
    patient_id: int
    start: dt.datetime
    end: dt.datetime
    busy_start: dt.datetime
    busy_end: dt.datetime
    practitioner_schedule: Schedule
    others: list[Schedule] = field(default_factory=list)
    auto_picked: dict[int, list[Schedule]] = field(default_factory=dict)  # requirement id -> remaining candidates

    @property
    def schedules(self) -> list[Schedule]:
        return [self.practitioner_schedule, *self.others]


# --- validation ------------------------------------------------------------------------------------------------


def authorise_booking(*, actor: User, patient_id: int, request: HttpRequest | None) -> int | None:
    """Who may book for whom: the patient for themselves, staff for patients they may schedule (``ehr.access``
    ``SCHEDULE``). Audited by the access module when denied. Raises ``BookingForbidden`` or ``NotFound``. Returns
    the patient's portal user id (None without one), read with the record's status: the booking's live pushes
    need it."""
    _authorise_access(actor=actor, patient_id=patient_id, request=request)
    return _check_patient(patient_id, Patient.objects.filter(pk=patient_id).values_list("status", "user_id").first())


def _authorise_access(*, actor: User, patient_id: int, request: HttpRequest | None) -> None:
    """``authorise_booking`` before it reads the record: the actor's role and the access check (audited)."""
    if not actor.has_role(*STAFF_BOOKERS, Role.PATIENT):
        raise BookingForbidden("your role cannot book appointments")
    try:
        patient_access_check(actor=actor, patient_id=patient_id, action=PatientAction.SCHEDULE, request=request)
    except AccessDenied as exc:
        raise BookingForbidden("you may not book appointments for this patient") from exc


def _check_patient(patient_id: int, row: tuple[str, int | None] | None) -> int | None:
    """The record (status, portal user id) must exist and be active; returns the user id."""
    if row is None:
        raise NotFound("Patient", patient_id)
    status, user_id = row
    if status != PatientStatus.ACTIVE:
        raise InvalidBooking({"patient_id": ["This patient record is not active."]})
    return user_id


def _appointment_type(appointment_type_id: int, actor: User) -> AppointmentType:
    return _check_type(AppointmentType.objects.filter(pk=appointment_type_id, active=True).first(), actor)


def _check_type(appointment_type: AppointmentType | None, actor: User) -> AppointmentType:
    """The type (None: unknown or inactive) must exist and be one the actor may book."""
    if appointment_type is None:
        raise InvalidBooking({"appointment_type_id": ["Unknown or inactive appointment type."]})
    if not is_staff_booker(actor) and not appointment_type.patient_bookable:
        raise BookingForbidden("patients cannot book this appointment type themselves")
    return appointment_type


def _check_time(appointment_type: AppointmentType, start: dt.datetime, actor: User, practitioner_tz: str) -> None:
    if start.tzinfo is None:
        raise InvalidBooking({"start": ["Give the start as an instant with a UTC offset."]})
    now = timezone.now()
    if start <= now:
        raise BookingInPast("the start is in the past")
    if start > now + dt.timedelta(days=appointment_type.horizon_days):
        raise BeyondHorizon(f"bookings open {appointment_type.horizon_days} days ahead")
    if not is_staff_booker(actor):
        if start < now + dt.timedelta(minutes=appointment_type.min_notice_minutes):
            raise TooLate(f"book at least {appointment_type.min_notice_minutes} minutes ahead")
        local = start.astimezone(ZoneInfo(practitioner_tz))
        minutes = local.hour * 60 + local.minute
        if local.second or local.microsecond or minutes % appointment_type.slot_interval_minutes:
            raise InvalidBooking({"start": ["Choose one of the offered start times."]})


def _schedules(
    practitioner_id: int | None, resource_ids: set[int], reads: _Reads | None = None
) -> tuple[Schedule, list[Schedule]]:
    """The practitioner's active schedule and the named active resources, in one query (the practitioner's user
    and location come with it: the booking's answer shows them), or from ``reads``."""
    if practitioner_id is None or isinstance(practitioner_id, bool) or not isinstance(practitioner_id, int):
        raise MissingResource(ResourceKind.PRACTITIONER)
    wanted = Q(kind=ResourceKind.PRACTITIONER, practitioner_id=practitioner_id)
    if resource_ids:
        wanted |= Q(pk__in=resource_ids)
    found = (
        reads.schedules
        if reads is not None
        else list(Schedule.objects.filter(wanted, active=True).select_related("practitioner", "location"))
    )
    schedule = next(
        (s for s in found if s.kind == ResourceKind.PRACTITIONER and s.practitioner_id == practitioner_id), None
    )
    if schedule is None:
        raise InvalidBooking({"practitioner_id": ["This practitioner has no bookable schedule."]})
    return schedule, [s for s in found if s.pk in resource_ids]


# Everything a booking reads before its transaction, in one round trip of nine statements: the patient's status
# and portal user; the type (if active); the practitioner's schedule and the named resources (active), the
# practitioner's name and the schedules' locations; their weekly rules, the exceptions around the visit [start,
# start + duration) and whether they are taken in the busy period (blocking slots; expired holds do not block);
# and the type's resource requirements. The windows come from the type's duration and buffers, in SQL, so no
# statement waits for an earlier answer. Every statement names the schedules the same way ("chosen").
_BOOKING_READS_SQL = """
SELECT status, user_id FROM ehr_patient WHERE id = %(patient)s;
SELECT * FROM scheduling_appointmenttype WHERE id = %(type)s AND active;
WITH chosen AS (
    SELECT id FROM scheduling_schedule
     WHERE active AND ((kind = %(practitioner_kind)s AND practitioner_id = %(practitioner)s)
                       OR id = ANY(%(resources)s::bigint[]))
)
SELECT * FROM scheduling_schedule WHERE id IN (SELECT id FROM chosen);
WITH chosen AS (
    SELECT id, practitioner_id, location_id FROM scheduling_schedule
     WHERE active AND ((kind = %(practitioner_kind)s AND practitioner_id = %(practitioner)s)
                       OR id = ANY(%(resources)s::bigint[]))
)
SELECT id, username, first_name, last_name FROM ehr_user WHERE id IN (SELECT practitioner_id FROM chosen);
WITH chosen AS (
    SELECT id, practitioner_id, location_id FROM scheduling_schedule
     WHERE active AND ((kind = %(practitioner_kind)s AND practitioner_id = %(practitioner)s)
                       OR id = ANY(%(resources)s::bigint[]))
)
SELECT * FROM ehr_location WHERE id IN (SELECT location_id FROM chosen);
WITH chosen AS (
    SELECT id FROM scheduling_schedule
     WHERE active AND ((kind = %(practitioner_kind)s AND practitioner_id = %(practitioner)s)
                       OR id = ANY(%(resources)s::bigint[]))
)
SELECT schedule_id, weekday, start_time, end_time, effective_from, effective_until
  FROM scheduling_availabilityrule WHERE schedule_id IN (SELECT id FROM chosen);
WITH chosen AS (
    SELECT id FROM scheduling_schedule
     WHERE active AND ((kind = %(practitioner_kind)s AND practitioner_id = %(practitioner)s)
                       OR id = ANY(%(resources)s::bigint[]))
), visit AS (
    SELECT %(start)s::timestamptz AS start,
           %(start)s::timestamptz + make_interval(mins => duration_minutes) AS "end"
      FROM scheduling_appointmenttype WHERE id = %(type)s
)
SELECT x.schedule_id, x.kind, x.start, x."end"
  FROM scheduling_availabilityexception AS x, visit
 WHERE x.schedule_id IN (SELECT id FROM chosen) AND x.start < visit."end" AND x."end" > visit.start;
WITH chosen AS (
    SELECT id FROM scheduling_schedule
     WHERE active AND ((kind = %(practitioner_kind)s AND practitioner_id = %(practitioner)s)
                       OR id = ANY(%(resources)s::bigint[]))
), busy AS (
    SELECT tstzrange(
               %(start)s::timestamptz - make_interval(mins => buffer_before_minutes),
               %(start)s::timestamptz + make_interval(mins => duration_minutes + buffer_after_minutes),
               '[)') AS period
      FROM scheduling_appointmenttype WHERE id = %(type)s
)
SELECT DISTINCT slot.schedule_id
  FROM scheduling_slot AS slot, busy
 WHERE slot.schedule_id IN (SELECT id FROM chosen)
   AND slot.status IN (%(busy)s, %(tentative)s)
   AND slot.period && busy.period
   AND (slot.status <> %(tentative)s OR slot.expires_at > %(now)s);
SELECT id, kind, category, optional
  FROM scheduling_resourcerequirement WHERE appointment_type_id = %(type)s ORDER BY id
"""


def _rows_as(model: type[Any], cursor: Any) -> list[Any]:
    """The current result set (``SELECT *`` of ``model``'s table) as model instances."""
    # from_db takes the values in the model's field order, which need not be the table's column order.
    position = {column.name: index for index, column in enumerate(cursor.description)}
    fields = [f.attname for f in model._meta.concrete_fields]
    order = [position[f.column] for f in model._meta.concrete_fields]
    return [model.from_db("default", fields, [row[i] for i in order]) for row in cursor.fetchall()]


@dataclass
class _Reads:
    """What ``_booking_reads`` found (see ``_BOOKING_READS_SQL``)."""

    patient: tuple[str, int | None] | None
    appointment_type: AppointmentType | None
    schedules: list[Schedule]
    rules: dict[int, list[Rule]]
    exceptions: dict[int, list[Exception_]]
    taken: set[int]
    requirements: list[tuple[int, str, str, bool]]


def _booking_reads(
    *, patient_id: int, appointment_type_id: int, practitioner_id: Any, resource_ids: list[int], start: dt.datetime
) -> _Reads:
    practitioner = db_id(practitioner_id)
    rules: dict[int, list[Rule]] = defaultdict(list)
    exceptions: dict[int, list[Exception_]] = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(
            _BOOKING_READS_SQL,
            {
                "patient": db_id(patient_id),
                "type": db_id(appointment_type_id),
                "practitioner_kind": ResourceKind.PRACTITIONER,
                "practitioner": practitioner,
                "resources": sorted({i for i in map(db_id, resource_ids) if i is not None}),
                "start": start,
                "busy": SlotStatus.BUSY,
                "tentative": SlotStatus.BUSY_TENTATIVE,
                "now": timezone.now(),
            },
        )
        patient = cursor.fetchone()
        cursor.nextset()
        types = _rows_as(AppointmentType, cursor)
        cursor.nextset()
        schedules = _rows_as(Schedule, cursor)
        cursor.nextset()
        names = ["id", "username", "first_name", "last_name"]
        users = {row[0]: User.from_db("default", names, row) for row in cursor.fetchall()}
        cursor.nextset()
        places = {location.pk: location for location in _rows_as(Location, cursor)}
        for schedule in schedules:
            if schedule.practitioner_id is not None and schedule.practitioner_id in users:
                schedule.practitioner = users[schedule.practitioner_id]
            schedule.location = places[schedule.location_id]
        cursor.nextset()
        for schedule_id, *rule in cursor.fetchall():
            rules[schedule_id].append(Rule(*rule))
        cursor.nextset()
        for schedule_id, *exception in cursor.fetchall():
            exceptions[schedule_id].append(Exception_(*exception))
        cursor.nextset()
        taken = {schedule_id for (schedule_id,) in cursor.fetchall()}
        cursor.nextset()
        requirements = [tuple(row) for row in cursor.fetchall()]
    return _Reads(
        patient=tuple(patient) if patient else None,  # type: ignore[arg-type]
        appointment_type=types[0] if types else None,
        schedules=schedules,
        rules=rules,
        exceptions=exceptions,
        taken=taken,
        requirements=requirements,  # type: ignore[arg-type]
    )


# Everything the checks of a booking read about its schedules, as four statements sent in one round trip: weekly
# rules, exceptions around the visit, which schedules are taken in the busy period (blocking slots; expired holds
# do not block) and the type's resource requirements (in the model's order).
_FACTS_SQL = """
SELECT schedule_id, weekday, start_time, end_time, effective_from, effective_until
  FROM scheduling_availabilityrule WHERE schedule_id = ANY(%(ids)s);
SELECT schedule_id, kind, start, "end"
  FROM scheduling_availabilityexception WHERE schedule_id = ANY(%(ids)s) AND start < %(end)s AND "end" > %(start)s;
SELECT DISTINCT schedule_id
  FROM scheduling_slot
 WHERE schedule_id = ANY(%(ids)s)
   AND status IN (%(busy)s, %(tentative)s)
   AND period && tstzrange(%(busy_start)s, %(busy_end)s, '[)')
   AND (status <> %(tentative)s OR expires_at > %(now)s);
SELECT id, kind, category, optional
  FROM scheduling_resourcerequirement WHERE appointment_type_id = %(type)s ORDER BY id
"""


@dataclass
class _Facts:
    working: dict[int, list[tuple[Any, Any]]]
    taken: set[int]
    requirements: list[ResourceRequirement]


def _facts(
    schedules: list[Schedule],
    appointment_type: AppointmentType,
    start: dt.datetime,
    end: dt.datetime,
    busy: Interval,
    reads: _Reads | None = None,
) -> _Facts:
    """Working intervals around the visit [start, end) of each schedule, those taken in the busy period (advisory:
    the constraint decides) and the type's requirements: one round trip instead of five queries, or none with
    ``reads`` (which read the same for the same schedules)."""
    if reads is None:
        rules: dict[int, list[Rule]] = defaultdict(list)
        exceptions: dict[int, list[Exception_]] = defaultdict(list)
        with connection.cursor() as cursor:
            cursor.execute(
                _FACTS_SQL,
                {
                    "ids": [s.pk for s in schedules],
                    "start": start,
                    "end": end,
                    "busy": SlotStatus.BUSY,
                    "tentative": SlotStatus.BUSY_TENTATIVE,
                    "busy_start": busy[0],
                    "busy_end": busy[1],
                    "now": timezone.now(),
                    "type": appointment_type.pk,
                },
            )
            for schedule_id, *rule in cursor.fetchall():
                rules[schedule_id].append(Rule(*rule))
            cursor.nextset()
            for schedule_id, *exception in cursor.fetchall():
                exceptions[schedule_id].append(Exception_(*exception))
            cursor.nextset()
            taken = {schedule_id for (schedule_id,) in cursor.fetchall()}
            cursor.nextset()
            requirements = [tuple(row) for row in cursor.fetchall()]
        reads = _Reads(
            patient=None,
            appointment_type=appointment_type,
            schedules=schedules,
            rules=rules,
            exceptions=exceptions,
            taken=taken,
            requirements=requirements,  # type: ignore[arg-type]
        )
    return _Facts(
        working={
            s.pk: working_intervals(
                time_zone=s.time_zone,
                rules=reads.rules.get(s.pk, []),
                exceptions=reads.exceptions.get(s.pk, []),
                window_start=start,
                window_end=end,
            )
            for s in schedules
        },
        taken=reads.taken,
        requirements=[
            ResourceRequirement(
                pk=pk, appointment_type=appointment_type, kind=kind, category=category, optional=optional
            )
            for pk, kind, category, optional in reads.requirements
        ],
    )


def _working(schedules: list[Schedule], start: dt.datetime, end: dt.datetime) -> dict[int, list[tuple[Any, Any]]]:
    """Working intervals around [start, end) of each schedule (two queries for all of them)."""
    ids = [s.pk for s in schedules]
    rules: dict[int, list[AvailabilityRule]] = {i: [] for i in ids}
    for rule in AvailabilityRule.objects.filter(schedule_id__in=ids):
        rules[rule.schedule_id].append(rule)
    exceptions: dict[int, list[AvailabilityException]] = {i: [] for i in ids}
    for exc in AvailabilityException.objects.filter(schedule_id__in=ids, start__lt=end, end__gt=start):
        exceptions[exc.schedule_id].append(exc)
    return {
        s.pk: working_intervals(
            time_zone=s.time_zone, rules=rules[s.pk], exceptions=exceptions[s.pk], window_start=start, window_end=end
        )
        for s in schedules
    }


def _busy_schedule_ids(schedule_ids: list[int], start: dt.datetime, end: dt.datetime) -> set[int]:
    """Schedules with a blocking (and, for holds, unexpired) slot overlapping [start, end). Advisory only: used to
    pick free rooms; the constraint decides."""
    now = timezone.now()
    return set(
        Slot.objects.filter(
            schedule_id__in=schedule_ids,
            status__in=BLOCKING_SLOT_STATUSES,
            period__overlap=DateTimeTZRange(start, end, "[)"),
        )
        .exclude(status=SlotStatus.BUSY_TENTATIVE, expires_at__lte=now)
        .values_list("schedule_id", flat=True)
    )


def plan_booking(
    *,
    actor: User,
    appointment_type: AppointmentType,
    patient_id: int,
    start: dt.datetime,
    practitioner_id: int | None,
    resource_ids: list[int],
    override: bool,
    reads: _Reads | None = None,
) -> _Plan:
    """Validate a booking request and choose its schedules. Raises the typed errors of ``scheduling.errors``.
    ``reads``: what ``_booking_reads`` read for this very request (then no query is made here, unless resources
    are auto-picked).

    Without ``reads``, reads in two round trips whatever the outcome (the schedules, then ``_facts``). Checks in a
    fixed order:
    the practitioner's schedule, the time, the practitioner's hours and busy time (the usual loser of a race for a
    doctor's time stops there), the named resources, the other resources' hours, then whether anything chosen is
    taken. Auto-picked rooms and equipment cost two more queries."""
    wanted = set(resource_ids)
    practitioner_schedule, explicit = _schedules(practitioner_id, wanted, reads)
    _check_time(appointment_type, start, actor, practitioner_schedule.time_zone)
    end = start + dt.timedelta(minutes=appointment_type.duration_minutes)
    busy_start = start - dt.timedelta(minutes=appointment_type.buffer_before_minutes)
    busy_end = end + dt.timedelta(minutes=appointment_type.buffer_after_minutes)
    facts = _facts([practitioner_schedule, *explicit], appointment_type, start, end, (busy_start, busy_end), reads)
    if not override:
        # The doctor first: outside their hours, or (the usual loser of a race for a doctor's time) already taken.
        if not covers(facts.working[practitioner_schedule.pk], start, end):
            raise OutsideAvailability(practitioner_schedule.pk, practitioner_schedule.name)
        if practitioner_schedule.pk in facts.taken:
            raise SlotUnavailable(practitioner_schedule.pk, practitioner_schedule.name)
    plan = _Plan(
        appointment_type=appointment_type,
        patient_id=patient_id,
        start=start,
        end=end,
        busy_start=busy_start,
        busy_end=busy_end,
        practitioner_schedule=practitioner_schedule,
    )
    if len(explicit) != len(wanted):
        raise InvalidBooking({"resource_ids": ["Unknown or inactive resource."]})
    requirements = [r for r in facts.requirements if r.kind != ResourceKind.PRACTITIONER]
    unused = {s.pk: s for s in explicit}
    needs_pick: list[ResourceRequirement] = []
    for requirement in requirements:
        match = next(
            (
                s
                for s in unused.values()
                if s.kind == requirement.kind and (not requirement.category or s.category == requirement.category)
            ),
            None,
        )
        if match is not None:
            plan.others.append(unused.pop(match.pk))
        elif not requirement.optional:
            needs_pick.append(requirement)
    if unused:
        raise InvalidBooking({"resource_ids": ["This appointment type does not use these resources."]})
    if not override:  # the named resources' hours (the practitioner's were checked above)
        for schedule in plan.others:
            if not covers(facts.working[schedule.pk], start, end):
                raise OutsideAvailability(schedule.pk, schedule.name)
    for requirement in needs_pick:
        candidates = list(
            Schedule.objects.filter(
                kind=requirement.kind,
                location_id=practitioner_schedule.location_id,
                active=True,
                **({"category": requirement.category} if requirement.category else {}),
            ).order_by("name", "id")
        )
        if candidates:
            working = _working(candidates, start, end)
            candidates = [c for c in candidates if covers(working[c.pk], start, end)]
            busy = _busy_schedule_ids([c.pk for c in candidates], plan.busy_start, plan.busy_end)
            candidates = [c for c in candidates if c.pk not in busy]
        if not candidates:
            raise MissingResource(requirement.kind, requirement.category)
        plan.others.append(candidates[0])
        plan.auto_picked[candidates[0].pk] = candidates[1:]
    if not override:
        # Early and advisory: time already taken by a committed booking or a live hold is refused before anything
        # is written (the common loser, cheaply). Racers that all get past this are decided by the constraint.
        # Auto-picked resources were chosen among the free ones just above.
        taken = facts.taken & {s.pk for s in plan.schedules}
        if taken:
            conflict = min((s for s in plan.schedules if s.pk in taken), key=lambda s: s.pk)
            raise SlotUnavailable(conflict.pk, conflict.name)
    return plan


# Expired holds in the way are released (the holds marked expired, then their tentative slots deleted) so the time
# can be taken; then one slot per schedule is inserted. Run after the schedules' booking locks, in the same round
# trip. Holds before slots, in two statements: the order hold_confirm and the sweeper lock them in, so a booker
# releasing a hold cannot deadlock with its owner confirming it or with the sweeper.
_RELEASE_AND_INSERT_SQL = """
UPDATE scheduling_hold SET status = %(hold_expired)s
 WHERE status = %(hold_active)s
   AND id IN (SELECT hold_id FROM scheduling_slot
               WHERE schedule_id = ANY(%(ids)s::bigint[])
                 AND status = %(tentative)s
                 AND expires_at <= %(now)s
                 AND period && tstzrange(%(busy_start)s, %(busy_end)s, '[)'));
DELETE FROM scheduling_slot
 WHERE hold_id IN (SELECT hold_id FROM scheduling_slot
                    WHERE schedule_id = ANY(%(ids)s::bigint[])
                      AND status = %(tentative)s
                      AND expires_at <= %(now)s
                      AND period && tstzrange(%(busy_start)s, %(busy_end)s, '[)'));
WITH {claim}owner AS MATERIALIZED (
    SELECT coalesce(
               %(appointment_id)s::bigint,
               CASE WHEN %(claim)s THEN nextval(pg_get_serial_sequence(%(table)s, 'id')) END
           ) AS id
)
INSERT INTO scheduling_slot (schedule_id, period, status, appointment_id, hold_id, expires_at, override)
SELECT s.id, tstzrange(%(busy_start)s, %(busy_end)s, '[)'), %(status)s,
       CASE WHEN %(hold_id)s::uuid IS NULL THEN owner.id END, %(hold_id)s::uuid, %(expires_at)s, %(override)s
  FROM unnest(%(ids)s::bigint[]) WITH ORDINALITY AS s(id, n) CROSS JOIN owner
 ORDER BY s.n
RETURNING id, schedule_id, coalesce(appointment_id, (SELECT id FROM owner))
"""


# A booking's claim: the hold that owns its tentative slots, inserted in the same statement as the slots.
_CLAIM_SQL = """claim AS (
    INSERT INTO scheduling_hold (id, patient_id, appointment_type_id, practitioner_id, location_id, start, "end",
                                 status, expires_at, created_by_id, created_at)
    VALUES (%(hold_id)s::uuid, %(claim_patient)s, %(claim_type)s, %(claim_practitioner)s, %(claim_location)s,
            %(claim_start)s, %(claim_end)s, %(hold_active)s, %(expires_at)s, %(claim_actor)s, %(now)s)
), """


@dataclass
class _Taken:
    slots: list[Slot]
    # A claim's new appointment id (drawn, not stored on the slots), else the one given
    appointment_id: int | None


def _insert_slots(
    plan: _Plan,
    *,
    status: str,
    appointment_id: int | None = None,
    hold_id: UUID | None = None,
    expires_at: dt.datetime | None = None,
    override: bool = False,
    claim_by: User | None = None,
) -> _Taken:
    """Insert one slot per schedule in one statement; an exclusion violation becomes ``SlotUnavailable`` naming
    the resource. When an auto-picked resource lost a race, retry with the next free candidate. One round trip per
    attempt: the booking locks, the release of expired holds in the way and the insert.

    Before inserting, each attempt takes the booking lock of every schedule it inserts on, in schedule-id order
    (the global lock order), and inserts the rows in that order too. The locks only queue the inserters of one
    schedule: without them, two transactions inserting overlapping slots at the same moment can each find the
    other's uncommitted row and wait for each other, and PostgreSQL breaks that deadlock by failing one of them
    with an error that is not an exclusion violation. The constraint still decides who gets the time. A deadlock
    that remains possible (two reschedules swapping times, each holding the slot it released) is reported as
    ``SlotUnavailable`` like any lost race.

    ``claim_by``: the slots are a booking's claim (``appointment_book``): tentative, owned by a new hold with id
    ``hold_id`` made by ``claim_by`` for the plan's patient, type, practitioner and time, inserted in the same
    statement (the slots' foreign key to it is checked at commit). The new appointment's id is drawn from its
    sequence here and returned, not stored on the slots (``_claim_convert`` does that), so a lost race stops before
    anything else of the booking is written.

    A savepoint is taken only when there is an alternative to retry with: otherwise a conflict ends the caller's
    transaction (or its savepoint), which the raised error rolls back anyway."""
    for _attempt in range(AUTO_PICK_ATTEMPTS):
        ordered = sorted(plan.schedules, key=lambda schedule: schedule.pk)
        retryable = any(plan.auto_picked.get(schedule.pk) for schedule in ordered)
        params: dict[str, Any] = {
            "ids": [schedule.pk for schedule in ordered],
            "tentative": SlotStatus.BUSY_TENTATIVE,
            "now": timezone.now(),
            "busy_start": plan.busy_start,
            "busy_end": plan.busy_end,
            "hold_expired": HoldStatus.EXPIRED,
            "hold_active": HoldStatus.ACTIVE,
            "appointment_id": appointment_id,
            "claim": claim_by is not None,
            "table": Appointment._meta.db_table,
            "status": status,
            "hold_id": hold_id,
            "expires_at": expires_at,
            "override": override,
        }
        if claim_by is not None:
            params.update(
                claim_patient=plan.patient_id,
                claim_type=plan.appointment_type.pk,
                claim_practitioner=plan.practitioner_schedule.practitioner_id,
                claim_location=plan.practitioner_schedule.location_id,
                claim_start=plan.start,
                claim_end=plan.end,
                claim_actor=claim_by.pk,
            )
        insert = _RELEASE_AND_INSERT_SQL.replace("{claim}", _CLAIM_SQL if claim_by is not None else "")
        locks = _lock_schedules_sql([schedule.pk for schedule in ordered], params)
        try:
            with transaction.atomic() if retryable else contextlib.nullcontext(), connection.cursor() as cursor:
                cursor.execute(locks + insert, params)
                while cursor.nextset():
                    pass
                rows = cursor.fetchall()
        except IntegrityError as exc:
            conflict = _conflicting_schedule(exc, plan)
            if conflict is None:
                raise
            alternatives = plan.auto_picked.get(conflict.pk)
            if not alternatives or not retryable:
                raise SlotUnavailable(conflict.pk, conflict.name) from None
            replacement = alternatives.pop(0)
            plan.auto_picked[replacement.pk] = alternatives
            plan.others = [replacement if s.pk == conflict.pk else s for s in plan.others]
            continue
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != DEADLOCK_DETECTED:
                raise
            if not retryable:  # the transaction is aborted: nothing more can be read in it
                raise SlotUnavailable(plan.practitioner_schedule.pk, plan.practitioner_schedule.name) from None
            busy = _busy_schedule_ids([s.pk for s in plan.schedules], plan.busy_start, plan.busy_end)
            conflict = next((s for s in plan.schedules if s.pk in busy), plan.practitioner_schedule)
            raise SlotUnavailable(conflict.pk, conflict.name) from None
        by_id = {schedule.pk: schedule for schedule in ordered}
        period = _range(plan)
        slots = [
            Slot(
                pk=slot_id,
                schedule=by_id[schedule_id],
                period=period,
                status=status,
                appointment_id=None if hold_id is not None else owner,
                hold_id=hold_id,
                expires_at=expires_at,
                override=override,
            )
            for slot_id, schedule_id, owner in rows
        ]
        return _Taken(slots=slots, appointment_id=rows[0][2] if rows else appointment_id)
    raise SlotUnavailable(plan.others[-1].pk, plan.others[-1].name)


# A hold becomes a booking, under the booking locks of its schedules: the hold first (holds before slots, the order
# the sweeper and a booker releasing expired holds lock them in), consumed by the appointment (a patient's hold) or
# deleted (a booking's own claim); then its tentative slots become the appointment's busy slots in place. No slot
# moves unless this very statement took the hold: one expired and released meanwhile keeps nothing.
_HOLD_CONSUME_SQL = """
UPDATE scheduling_hold SET status = %(consumed)s, appointment_id = %(appointment)s
 WHERE id = %(hold)s AND status = %(active)s;
UPDATE scheduling_slot
   SET status = %(busy)s, appointment_id = %(appointment)s, hold_id = NULL, expires_at = NULL
 WHERE hold_id = %(hold)s
   AND EXISTS (SELECT 1 FROM scheduling_hold WHERE id = %(hold)s AND status = %(consumed)s
                                               AND appointment_id = %(appointment)s)
RETURNING id
"""
_CLAIM_CONSUME_SQL = """
DELETE FROM scheduling_hold WHERE id = %(hold)s AND status = %(active)s;
UPDATE scheduling_slot
   SET status = %(busy)s, appointment_id = %(appointment)s, hold_id = NULL, expires_at = NULL
 WHERE hold_id = %(hold)s AND NOT EXISTS (SELECT 1 FROM scheduling_hold WHERE id = %(hold)s)
RETURNING id
"""


def _lock_schedules_sql(schedule_ids: list[int], params: dict[str, Any]) -> str:
    """The booking locks of ``schedule_ids``, in schedule-id order (the global lock order), as statements; their
    parameters are added to ``params``."""
    params["space"] = SCHEDULE_LOCK_SPACE
    locks = []
    for index, schedule_id in enumerate(sorted(schedule_ids)):
        params[f"lock{index}"] = schedule_id % 2**31  # ids past 2^31 share a queue, harmlessly
        locks.append(f"SELECT pg_advisory_xact_lock(%(space)s::integer, %(lock{index})s::integer);")
    return "\n".join(locks)


def _hold_convert(*, hold_id: UUID, appointment_id: int, schedule_ids: list[int], claim: bool) -> set[int]:
    """Turn hold ``hold_id`` into the busy slots of appointment ``appointment_id``, in the caller's transaction, as
    its last write: the booking locks of the hold's schedules (``schedule_ids``) are held only from here to commit.
    ``claim``: the hold is a booking's own claim and is deleted; otherwise it is kept, consumed. Returns the ids of
    the slots converted: none when the hold was no longer active.

    Under the booking locks because the update writes new versions of the slots, which the exclusion constraint
    checks: a racer inserting on the same time at that moment would wait for this transaction while this one waits
    for the racer's row, a deadlock that PostgreSQL breaks only after a second. With the locks, a racer inserts
    either before (and fails against the committed hold at once) or after (and fails against the booking)."""
    params: dict[str, Any] = {
        "hold": hold_id,
        "active": HoldStatus.ACTIVE,
        "consumed": HoldStatus.CONSUMED,
        "appointment": appointment_id,
        "busy": SlotStatus.BUSY,
    }
    locks = _lock_schedules_sql(schedule_ids, params)
    with connection.cursor() as cursor:
        cursor.execute(locks + (_CLAIM_CONSUME_SQL if claim else _HOLD_CONSUME_SQL), params)
        while cursor.nextset():
            pass
        return {slot_id for (slot_id,) in cursor.fetchall()}


def _claim_convert(hold_id: UUID, plan: _Plan, claimed: _Taken) -> list[Slot]:
    """Turn a booking's claim (``claimed``, the slots ``_insert_slots`` inserted for it) into the busy slots of
    the appointment whose id the claim drew. Raises ``SlotUnavailable`` if the claim expired and was released
    before this ran."""
    assert claimed.appointment_id is not None
    converted = _hold_convert(
        hold_id=hold_id,
        appointment_id=claimed.appointment_id,
        schedule_ids=[slot.schedule_id for slot in claimed.slots],
        claim=True,
    )
    if converted != {slot.pk for slot in claimed.slots}:
        raise SlotUnavailable(plan.practitioner_schedule.pk, plan.practitioner_schedule.name)
    for slot in claimed.slots:
        slot.status, slot.appointment_id, slot.hold_id, slot.expires_at = (
            SlotStatus.BUSY,
            claimed.appointment_id,
            None,
            None,
        )
    return claimed.slots


def _claim_withdraw(hold_id: UUID) -> None:
    """Give a failed booking's claimed time back at once. Best effort: if this cannot run (the caller's own
    transaction is broken and will roll the claim back, or the database is gone), the claim's expiry frees the
    time."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM scheduling_hold WHERE id = %(hold)s AND status = %(active)s;"
                " DELETE FROM scheduling_slot WHERE hold_id = %(hold)s"
                " AND NOT EXISTS (SELECT 1 FROM scheduling_hold WHERE id = %(hold)s)",
                {"hold": hold_id, "active": HoldStatus.ACTIVE},
            )
    except DatabaseError:
        logger.warning("booking claim %s not withdrawn; it frees its time when it expires", hold_id)


def _conflicting_schedule(exc: IntegrityError, plan: _Plan) -> Schedule | None:
    cause = exc.__cause__
    diag = getattr(cause, "diag", None)
    if diag is None or getattr(diag, "constraint_name", None) != EXCLUSION_CONSTRAINT:
        return None
    match = _CONFLICT_KEY.search(getattr(diag, "message_detail", "") or "")
    by_id = {s.pk: s for s in plan.schedules}
    if match and int(match.group(1)) in by_id:
        return by_id[int(match.group(1))]
    return plan.practitioner_schedule


def _range(plan: _Plan) -> DateTimeTZRange:
    return DateTimeTZRange(plan.busy_start, plan.busy_end, "[)")


def _encounter_modality(appointment_type: AppointmentType) -> str:
    return "virtual" if appointment_type.modality == Modality.VIDEO else "in-person"


# --- holds ------------------------------------------------------------------------------------------------------


def hold_create(
    *,
    actor: User,
    appointment_type_id: int,
    patient_id: int,
    start: dt.datetime,
    practitioner_id: int | None,
    resource_ids: list[int] | None = None,
    request: HttpRequest | None = None,
) -> HoldRef:
    """Reserve every resource of a booking for ``SCHEDULING_HOLD_TTL_SECONDS`` while the patient confirms.
    Tentative slots block others exactly like a booking (same constraint). Raises like ``appointment_book``."""
    authorise_booking(actor=actor, patient_id=patient_id, request=request)
    appointment_type = _appointment_type(appointment_type_id, actor)
    plan = plan_booking(
        actor=actor,
        appointment_type=appointment_type,
        patient_id=patient_id,
        start=start,
        practitioner_id=practitioner_id,
        resource_ids=list(resource_ids or []),
        override=False,
    )
    with transaction.atomic():
        now = timezone.now()
        assert plan.practitioner_schedule.practitioner_id is not None  # CHECK: practitioner schedules name one
        hold = Hold.objects.create(
            patient_id=patient_id,
            appointment_type=appointment_type,
            practitioner_id=plan.practitioner_schedule.practitioner_id,
            location_id=plan.practitioner_schedule.location_id,
            start=plan.start,
            end=plan.end,
            expires_at=now + hold_ttl(),
            created_by=actor,
            created_at=now,
        )
        _insert_slots(plan, status=SlotStatus.BUSY_TENTATIVE, hold_id=hold.pk, expires_at=hold.expires_at)
    return hold_dto(hold)


def _hold_for_update(hold_id: UUID | str, actor: User) -> Hold:
    try:
        hold = Hold.objects.select_for_update().filter(pk=hold_id).first()
    except (ValueError, TypeError):
        hold = None
    if hold is None or (hold.created_by_id != actor.pk and not actor.has_role(*OVERRIDERS)):
        raise NotFound("Hold", hold_id)
    return hold


def hold_release(*, actor: User, hold_id: UUID | str) -> None:
    """Give a hold's resources back now (the patient changed their mind). Idempotent for a released hold."""
    with transaction.atomic():
        hold = _hold_for_update(hold_id, actor)
        if hold.status == HoldStatus.ACTIVE:
            Slot.objects.filter(hold=hold).delete()
            hold.status = HoldStatus.RELEASED
            hold.save(update_fields=["status"])


def holds_release_expired(*, limit: int = 1000) -> int:
    """Delete the slots of expired holds and mark them expired (the one-minute beat task). Safe to run anywhere,
    any number of times at once (``skip_locked``)."""
    with transaction.atomic():
        ids = list(
            Hold.objects.select_for_update(skip_locked=True)
            .filter(status=HoldStatus.ACTIVE, expires_at__lte=timezone.now())
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            Slot.objects.filter(hold_id__in=ids).delete()
            Hold.objects.filter(pk__in=ids).update(status=HoldStatus.EXPIRED)
    return len(ids)


def hold_confirm(
    *, actor: User, hold_id: UUID | str, comment: str = "", request: HttpRequest | None = None
) -> AppointmentRef:
    """Turn an active, unexpired hold into a booked appointment: its tentative slots become the appointment's busy
    slots in place (no moment without a reservation), as the transaction's last write. Raises ``NotFound`` (not
    yours), ``HoldNotActive`` (already used or released), ``HoldExpired``; a confirmation that loses to another
    (a double click) or to the hold's release raises the same and writes nothing."""
    comment = _clean_comment(comment)
    hold = Hold.objects.filter(pk=hold_id).select_related("appointment_type").first() if is_uuid(hold_id) else None
    if hold is None:
        raise NotFound("Hold", hold_id)
    patient_user_id = authorise_booking(actor=actor, patient_id=hold.patient_id, request=request)
    if hold.created_by_id != actor.pk and not actor.has_role(*OVERRIDERS):
        raise NotFound("Hold", hold_id)
    _check_hold_usable(hold)
    schedule_ids = list(Slot.objects.filter(hold=hold).values_list("schedule_id", flat=True))
    with transaction.atomic():
        appointment = _create_appointment(
            actor=actor,
            appointment_type=hold.appointment_type,
            patient_id=hold.patient_id,
            practitioner_id=hold.practitioner_id,
            location_id=hold.location_id,
            start=hold.start,
            end=hold.end,
            comment=comment,
            override_reason="",
        )
        appointment.encounter_id = _plan_encounter(
            actor=actor,
            appointment_id=appointment.pk,
            appointment_type=appointment.appointment_type,
            patient_id=appointment.patient_id,
            practitioner_id=appointment.practitioner_id,
            location_id=appointment.location_id,
            start=appointment.start,
            end=appointment.end,
            request=request,
        )
        appointment.save(update_fields=["encounter_id"])

        def convert() -> None:
            if not _hold_convert(
                hold_id=hold.pk, appointment_id=appointment.pk, schedule_ids=schedule_ids, claim=False
            ):
                # Released, expired or confirmed by someone else since the checks above: as if it had been then.
                hold.refresh_from_db(fields=["status", "expires_at"])
                _check_hold_usable(hold)
                raise HoldNotActive(f"the hold is {hold.status}")

        _record_booked(
            actor=actor,
            appointment=appointment,
            data={"hold": str(hold.pk)},
            patient_user_id=patient_user_id,
            convert=convert,
        )
    return appointment_dto(appointment)


def _check_hold_usable(hold: Hold) -> None:
    if hold.status == HoldStatus.EXPIRED or (hold.status == HoldStatus.ACTIVE and hold.expires_at <= timezone.now()):
        raise HoldExpired("the hold expired; choose the time again")
    if hold.status != HoldStatus.ACTIVE:
        raise HoldNotActive(f"the hold is {hold.status}")


def is_uuid(value: object) -> bool:
    """Whether ``value`` names a UUID (hold and offer ids), so a malformed id is a 404, never a database error."""
    try:
        UUID(str(value))
    except ValueError:
        return False
    return True


# --- booking ----------------------------------------------------------------------------------------------------


def _clean_override(actor: User, override_reason: str) -> str:
    """A deliberate double booking's reason: schedulers and admins only, at most 500 characters."""
    override_reason = override_reason.strip() if isinstance(override_reason, str) else ""
    if override_reason and not actor.has_role(*OVERRIDERS):
        raise BookingForbidden("only schedulers and administrators may override double-booking rules")
    if len(override_reason) > 500:
        raise InvalidBooking({"override_reason": ["At most 500 characters."]})
    return override_reason


def _clean_comment(comment: str) -> str:
    if not isinstance(comment, str) or len(comment) > 500:
        raise InvalidBooking({"comment": ["At most 500 characters."]})
    return comment.strip()


def _create_appointment(
    *,
    actor: User,
    appointment_type: AppointmentType,
    patient_id: int,
    practitioner_id: int,
    location_id: int,
    start: dt.datetime,
    end: dt.datetime,
    comment: str,
    override_reason: str,
    series_id: int | None = None,
    pk: int | None = None,
    encounter_id: int | None = None,
) -> Appointment:
    now = timezone.now()
    return Appointment.objects.create(
        pk=pk,
        patient_id=patient_id,
        appointment_type=appointment_type,
        practitioner_id=practitioner_id,
        location_id=location_id,
        modality=appointment_type.modality,
        status=AppointmentStatus.BOOKED,
        start=start,
        end=end,
        series_id=series_id,
        encounter_id=encounter_id,
        comment=comment,
        override_reason=override_reason,
        booked_by=actor,
        created_at=now,
        updated_at=now,
    )


def _plan_encounter(
    *,
    actor: User,
    appointment_id: int,
    appointment_type: AppointmentType,
    patient_id: int,
    practitioner_id: int,
    location_id: int,
    start: dt.datetime,
    end: dt.datetime,
    request: HttpRequest | None,
) -> int:
    """The planned encounter in the EHR (the appointment on the patient's timeline); returns its id."""
    try:
        encounter = encounter_plan(
            actor=actor,
            patient_id=patient_id,
            practitioner_id=practitioner_id,
            location_id=location_id,
            modality=_encounter_modality(appointment_type),
            planned_start=start,
            planned_end=end,
            appointment_id=appointment_id,
            request=request,
        )
    except EhrPatientMerged as exc:  # merged between our checks and the write (the EHR's guard said so)
        raise PatientRecordMerged(exc.merged_into_id) from exc
    except InvalidClinicalData as exc:  # e.g. the practitioner no longer works at the schedule's location
        raise InvalidBooking({f"encounter_{name}": messages for name, messages in exc.fields.items()}) from exc
    except AccessDenied as exc:
        raise BookingForbidden("you may not book appointments for this patient") from exc
    return encounter.id


def _record_booked(
    *,
    actor: User,
    appointment: Appointment,
    data: dict[str, Any],
    patient_user_id: int | None,
    convert: Callable[[], Any],
    deferred_events: list[Callable[[], object]] | None = None,
) -> None:
    """The rest of a booking's transaction once its appointment row is in: the reminders (outbox rows,
    scheduling/reminders.py), ``convert`` (the hold's slots become the appointment's, under the booking locks), then
    the ``booked`` domain event with its live pushes. In that order because the event takes the realtime stream
    counters, which come after the booking locks in the global lock order (docs/concurrency.md). With
    ``deferred_events`` the event is not recorded here but appended, for the caller to record once it has taken
    every booking lock it will need (a series)."""
    reminders_plan(appointment=appointment)
    convert()
    record = functools.partial(
        appointment_event_record,
        appointment=appointment,
        type="booked",
        actor=actor,
        from_status="",
        to_status=appointment.status,
        data=data,
        patient_user_id=patient_user_id,
    )
    if deferred_events is None:
        record()
    else:
        deferred_events.append(record)


def appointment_book(
    *,
    actor: User,
    appointment_type_id: int,
    patient_id: int,
    start: dt.datetime,
    practitioner_id: int | None,
    resource_ids: list[int] | None = None,
    override_reason: str = "",
    comment: str = "",
    series_id: int | None = None,
    request: HttpRequest | None = None,
    deferred_events: list[Callable[[], object]] | None = None,
) -> AppointmentRef:
    """Book ``patient_id`` for an appointment type at ``start`` with a practitioner and every other resource the
    type needs (given in ``resource_ids`` or chosen among the free ones at the practitioner's location).

    Atomic across resources: the claim (a hold with one tentative slot per resource, one statement) commits first;
    a conflict on any resource raises ``SlotUnavailable`` naming it and writes nothing. A second transaction then
    writes the planned EHR encounter, the appointment, its reminders, turns the claim into the appointment's busy
    slots and records the domain event; if it fails, the claim is withdrawn (or, if even that cannot run, expires
    after ``SCHEDULING_BOOKING_CLAIM_SECONDS``). With
    ``override_reason`` (schedulers and admins only) the booking may deliberately double-book and ignore working
    hours; the reason is kept on the appointment and in its event. Callers: the patient (for themselves, patient-
    bookable types, aligned starts, minimum notice), staff who may schedule the patient.

    ``deferred_events``: for a caller that books several appointments in its own transaction (a series). The
    ``booked`` event is appended there as a call, not recorded: the event takes the realtime stream counters, and
    holding those while a later booking takes its booking locks would reverse the global lock order.
    """
    comment = _clean_comment(comment)
    override_reason = _clean_override(actor, override_reason)
    _authorise_access(actor=actor, patient_id=patient_id, request=request)
    # One round trip for everything the checks below read; they run in the same order as authorise_booking,
    # _appointment_type and plan_booking's.
    # A naive start is read as UTC here and refused by plan_booking's checks, after the patient's and the type's.
    reads = _booking_reads(
        patient_id=patient_id,
        appointment_type_id=appointment_type_id,
        practitioner_id=practitioner_id,
        resource_ids=list(resource_ids or []),
        start=start,
    )
    patient_user_id = _check_patient(patient_id, reads.patient)
    appointment_type = _check_type(reads.appointment_type, actor)
    override = bool(override_reason)
    plan = plan_booking(
        actor=actor,
        appointment_type=appointment_type,
        patient_id=patient_id,
        start=start,
        practitioner_id=practitioner_id,
        resource_ids=list(resource_ids or []),
        override=override,
        reads=reads,
    )
    practitioner_user_id = plan.practitioner_schedule.practitioner_id or 0
    location_id = plan.practitioner_schedule.location_id
    # The claim, committed on its own: a racer that lost learns it now, not after this booking's EHR writes. In
    # autocommit it needs no BEGIN or COMMIT: PostgreSQL runs the statements of one query message (the booking
    # locks, the release of expired holds, the hold with its slots) as one implicit transaction, all or nothing.
    hold_id = uuid4()
    with contextlib.nullcontext() if connection.get_autocommit() else transaction.atomic():
        claimed = _insert_slots(
            plan,
            status=SlotStatus.BUSY_TENTATIVE,
            hold_id=hold_id,
            expires_at=timezone.now() + claim_ttl(),
            override=override,
            claim_by=actor,
        )
    assert claimed.appointment_id is not None
    try:
        with transaction.atomic():
            encounter_id = _plan_encounter(
                actor=actor,
                appointment_id=claimed.appointment_id,
                appointment_type=appointment_type,
                patient_id=patient_id,
                practitioner_id=practitioner_user_id,
                location_id=location_id,
                start=plan.start,
                end=plan.end,
                request=request,
            )
            appointment = _create_appointment(
                pk=claimed.appointment_id,
                actor=actor,
                appointment_type=appointment_type,
                patient_id=patient_id,
                practitioner_id=practitioner_user_id,
                location_id=location_id,
                start=plan.start,
                end=plan.end,
                comment=comment,
                override_reason=override_reason,
                series_id=series_id,
                encounter_id=encounter_id,
            )
            # The practitioner's user and location were read with the schedule: the answer needs no more queries.
            appointment.practitioner = plan.practitioner_schedule.practitioner or appointment.practitioner
            appointment.location = plan.practitioner_schedule.location
            data: dict[str, Any] = {"override": True} if override else {}
            slots: list[Slot] = []
            _record_booked(
                actor=actor,
                appointment=appointment,
                data=data,
                patient_user_id=patient_user_id,
                convert=lambda: slots.extend(_claim_convert(hold_id, plan, claimed)),
                deferred_events=deferred_events,
            )
    except BaseException:
        _claim_withdraw(hold_id)
        raise
    return appointment_dto(appointment, slots)


# --- changes ----------------------------------------------------------------------------------------------------


def appointment_for_update(appointment_id: int, expected_version: int | None) -> Appointment:
    appointment = (
        Appointment.objects.select_for_update(of=("self",))
        .select_related("appointment_type")
        .filter(pk=appointment_id)
        .first()
    )
    if appointment is None:
        raise NotFound("Appointment", appointment_id)
    if expected_version is not None and appointment.version != expected_version:
        raise VersionConflict(appointment.version)
    return appointment


def authorise_change(*, actor: User, appointment_id: int, request: HttpRequest | None) -> tuple[int, int]:
    """Who may change an appointment: whoever may book for its patient. Returns (patient_id, version)."""
    row = Appointment.objects.filter(pk=appointment_id).values_list("patient_id", "version").first()
    if row is None:
        raise NotFound("Appointment", appointment_id)
    try:
        authorise_booking(actor=actor, patient_id=row[0], request=request)
    except (BookingForbidden, NotFound) as exc:
        # An outsider learns nothing about whether the appointment exists.
        raise NotFound("Appointment", appointment_id) from exc
    return row


def release_slots(appointment: Appointment) -> None:
    Slot.objects.filter(appointment=appointment, status=SlotStatus.BUSY).update(status=SlotStatus.FREE)


def appointment_reschedule(
    *,
    actor: User,
    appointment_id: int,
    expected_version: int | None,
    start: dt.datetime,
    practitioner_id: int | None = None,
    resource_ids: list[int] | None = None,
    reason: str,
    override_reason: str = "",
    request: HttpRequest | None = None,
) -> AppointmentRef:
    """Move an active appointment to ``start`` (and optionally another practitioner or resources). In one
    transaction the old slots are released and the new ones taken; a conflict leaves the appointment exactly as it
    was. Patients may move their own appointments outside the cancellation window. Raises like
    ``appointment_book``, plus ``VersionConflict`` and ``InvalidTransition``-like ``InvalidBooking``."""
    reason = _require_reason(reason)
    override_reason = _clean_override(actor, override_reason)
    patient_id, _version = authorise_change(actor=actor, appointment_id=appointment_id, request=request)
    with transaction.atomic():
        appointment = appointment_for_update(appointment_id, expected_version)
        if appointment.status != AppointmentStatus.BOOKED:
            raise InvalidBooking({"status": [f"A {appointment.status} appointment cannot be moved."]})
        _check_patient_window(actor, appointment)
        current_resources = list(
            Slot.objects.filter(appointment=appointment, status=SlotStatus.BUSY)
            .exclude(schedule__kind=ResourceKind.PRACTITIONER)
            .values_list("schedule_id", flat=True)
        )
        old = (appointment.start, appointment.practitioner_id)
        release_slots(appointment)
        override = bool(override_reason)
        plan = plan_booking(
            actor=actor,
            appointment_type=appointment.appointment_type,
            patient_id=patient_id,
            start=start,
            practitioner_id=practitioner_id if practitioner_id is not None else appointment.practitioner_id,
            resource_ids=list(resource_ids) if resource_ids is not None else current_resources,
            override=override,
        )
        _insert_slots(plan, status=SlotStatus.BUSY, appointment_id=appointment.pk, override=override)
        appointment.start = plan.start
        appointment.end = plan.end
        appointment.practitioner_id = plan.practitioner_schedule.practitioner_id or appointment.practitioner_id
        appointment.location_id = plan.practitioner_schedule.location_id
        if override:
            appointment.override_reason = override_reason
        appointment.version += 1
        appointment.updated_at = timezone.now()
        appointment.save()
        if appointment.encounter_id is not None:
            encounter_replan(
                actor=actor,
                encounter_id=appointment.encounter_id,
                planned_start=appointment.start,
                planned_end=appointment.end,
                practitioner_id=appointment.practitioner_id,
                location_id=appointment.location_id,
                request=request,
            )
        appointment_event_record(
            appointment=appointment,
            type="rescheduled",
            actor=actor,
            from_status=appointment.status,
            to_status=appointment.status,
            data={
                "from_start": old[0].isoformat(),
                "from_practitioner_id": old[1],
                "reason": reason,
                **({"override": True} if override else {}),
            },
        )
        # Pending reminders follow the new time (scheduling/reminders.py).
        reminders_replan(appointment=appointment)
    return appointment_dto(appointment)


def _require_reason(reason: str) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidBooking({"reason": ["Give a reason."]})
    if len(reason) > 500:
        raise InvalidBooking({"reason": ["At most 500 characters."]})
    return reason.strip()


def _check_patient_window(actor: User, appointment: Appointment) -> None:
    """Patients change their own bookings only up to the type's cancellation window before the start."""
    if is_staff_booker(actor):
        return
    window = dt.timedelta(minutes=appointment.appointment_type.cancellation_window_minutes)
    if appointment.start - timezone.now() < window:
        raise TooLate("too close to the start to change online; please call the clinic")


def appointment_cancel(
    *,
    actor: User,
    appointment_id: int,
    reason: str,
    expected_version: int | None = None,
    request: HttpRequest | None = None,
) -> AppointmentRef:
    """Cancel with a reason: the slots are released, the planned encounter is cancelled, waitlisted patients are
    offered the freed time (``scheduling.services.waitlist``), all in one transaction. Patients may cancel their own
    appointments outside the cancellation window."""
    from scheduling.services.waitlist import waitlist_offer_freed_slot

    reason = _require_reason(reason)
    authorise_change(actor=actor, appointment_id=appointment_id, request=request)
    with transaction.atomic():
        appointment = appointment_for_update(appointment_id, expected_version)
        _check_patient_window(actor, appointment)
        schedule_ids = list(
            Slot.objects.filter(appointment=appointment, status=SlotStatus.BUSY).values_list("schedule_id", flat=True)
        )
        previous = appointment_transition(appointment, AppointmentStatus.CANCELLED)
        appointment.cancel_reason = reason
        appointment.version += 1
        appointment.updated_at = timezone.now()
        appointment.save()
        release_slots(appointment)
        cancel_planned_encounter(actor=actor, appointment=appointment, reason=reason, request=request)
        appointment_event_record(
            appointment=appointment,
            type="cancelled",
            actor=actor,
            from_status=previous,
            to_status=appointment.status,
            data={"reason": reason},
        )
        # Pending reminders are withdrawn (scheduling/reminders.py).
        reminders_withdraw(appointment_id=appointment.pk)
        if appointment.start > timezone.now():
            waitlist_offer_freed_slot(appointment=appointment, schedule_ids=schedule_ids)
    return appointment_dto(appointment)


def cancel_planned_encounter(
    *, actor: User | None, appointment: Appointment, reason: str, request: HttpRequest | None
) -> None:
    """The planned EHR encounter is cancelled with the appointment. An encounter already under way (the visit
    started) is left as it is: what happened in it is part of the record."""
    if appointment.encounter_id is None or actor is None:
        return
    with contextlib.suppress(EhrInvalidTransition):
        encounter_cancel(actor=actor, encounter_id=appointment.encounter_id, reason=reason, request=request)
