"""Encounters: open (in progress), close (finished, with end time and duration), mark entered in error; and the
planning functions scheduling calls for booked visits: plan, replan, cancel, start (docs/ehr-public-api.md).

A visit booked in scheduling carries its appointment's id (``appointment_id``, FHIR Encounter.appointment). The
appointment owns such a booking: scheduling cancels it (and the encounter with it); the chart's cancel passes
``unbooked_only`` and is refused with ``EncounterHasAppointment``."""

from __future__ import annotations

import datetime
from typing import Any

from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from ehr.access import PatientAction, patient_access_check
from ehr.dto import EncounterRef, to_dto
from ehr.errors import (
    ClinicalRecordNotFound,
    EncounterHasAppointment,
    InvalidClinicalData,
    InvalidTransition,
    PatientNotFound,
)
from ehr.models import (
    AuditAction,
    Encounter,
    EncounterModality,
    EncounterStatus,
    EncounterVersion,
    Location,
    PatientStatus,
    Role,
    User,
)
from ehr.services.clinical._common import (
    Cleaner,
    audit,
    authorise_patient,
    authorise_record,
    refuse_merged_patient,
    require_reason,
    transition,
)
from ehr.versioning import lock_at_version, record_first_version, save_new_version, snapshot

KIND = "Encounter"
ENCOUNTER_FIELDS: tuple[str, ...] = (
    "status",
    "modality",
    "location_id",
    "practitioner_id",
    "period_start",
    "period_end",
    "duration_seconds",
    "reason",
    "planned_start",
    "planned_end",
    "appointment_id",
)
# Longest booked visit accepted by encounter_plan/encounter_replan: anything longer is a data-entry error.
PLANNED_MAX_DURATION = datetime.timedelta(hours=24)

S = EncounterStatus
# The encounter state machine (FHIR encounter-status). Nothing else assigns Encounter.status.
ENCOUNTER_TRANSITIONS: dict[str, frozenset[str]] = {
    S.PLANNED: frozenset({S.IN_PROGRESS, S.CANCELLED, S.ENTERED_IN_ERROR}),
    S.IN_PROGRESS: frozenset({S.FINISHED, S.ENTERED_IN_ERROR}),
    S.FINISHED: frozenset({S.ENTERED_IN_ERROR}),
    S.CANCELLED: frozenset({S.ENTERED_IN_ERROR}),
    S.ENTERED_IN_ERROR: frozenset(),
}


def encounter_transition(encounter: Encounter, target: str) -> None:
    """Move ``encounter`` to ``target`` if the table allows it, stamping the period: going in progress starts it,
    finishing ends it and records ``duration_seconds``. Raises ``InvalidTransition``. Does not save."""
    encounter.status = transition(KIND, ENCOUNTER_TRANSITIONS, encounter.status, target)
    now = timezone.now()
    if target == S.IN_PROGRESS:
        encounter.period_start = now
    elif target == S.FINISHED:
        assert encounter.period_start is not None  # in progress always has a start
        encounter.period_end = max(now, encounter.period_start)
        encounter.duration_seconds = int((encounter.period_end - encounter.period_start).total_seconds())


def encounter_dto(encounter: Encounter) -> EncounterRef:
    return to_dto(EncounterRef, encounter)


def encounter_open(
    *,
    actor: User,
    patient_id: int,
    location_id: int,
    modality: str,
    reason: str = "",
    request: HttpRequest | None = None,
) -> EncounterRef:
    """Start an encounter now (status ``in-progress``) between ``patient_id`` and ``actor`` at ``location_id``,
    which must be a location the actor works at. Version 1 + history + a ``create`` audit row.

    Callers: clinicians (``WRITE_CLINICAL``); telehealth when a visit starts. Raises ``AccessDenied``,
    ``PatientNotFound``, ``InvalidClinicalData``, ``PatientMerged`` (a merge committed between the check and the
    insert); each writes nothing.
    """
    authorise_patient(
        actor=actor, patient_id=patient_id, action=PatientAction.WRITE_CLINICAL, request=request, writing=True
    )
    clean = Cleaner()
    modality = clean.choice("modality", modality, EncounterModality.values)
    reason = clean.text("reason", reason, max_length=1000)
    location = None
    if isinstance(location_id, bool) or not isinstance(location_id, int):
        clean.fail("location_id", "Must be a location id.")
    else:
        location = actor.locations.filter(pk=location_id).only("id", "name").first()
        if location is None:
            clean.fail("location_id", "You do not work at this location.")
    clean.done()
    assert location is not None
    with refuse_merged_patient(patient_id), transaction.atomic():
        now = timezone.now()
        encounter = Encounter(
            patient_id=patient_id,
            practitioner=actor,
            location=location,
            modality=modality,
            status=S.PLANNED,
            reason=reason,
            version=1,
            created_at=now,
            updated_at=now,
        )
        encounter_transition(encounter, S.IN_PROGRESS)
        encounter.save(force_insert=True)
        record_first_version(
            EncounterVersion, encounter, fields=ENCOUNTER_FIELDS, actor=actor, reason="encounter opened"
        )
        audit(
            actor=actor,
            action=AuditAction.CREATE,
            entity_type=KIND,
            entity_id=encounter.pk,
            patient_id=patient_id,
            request=request,
            detail={"version": 1, "modality": modality, "location_id": location_id},
        )
    return encounter_dto(encounter)


def encounter_close(*, actor: User, encounter_id: int, request: HttpRequest | None = None) -> EncounterRef:
    """Finish an in-progress encounter now: ``period_end`` and ``duration_seconds`` are recorded, a new version and
    an ``update`` audit row are written. Closing anything but an in-progress encounter raises
    ``InvalidTransition`` (409). Callers: clinicians (``WRITE_CLINICAL``); telehealth when a visit ends."""
    patient_id = authorise_record(
        actor=actor,
        model=Encounter,
        kind=KIND,
        record_id=encounter_id,
        action=PatientAction.WRITE_CLINICAL,
        request=request,
    )
    with transaction.atomic():
        encounter = (
            Encounter.objects.select_for_update(of=("self",))
            .select_related("practitioner", "location")
            .filter(pk=encounter_id)
            .first()
        )
        if encounter is None:  # pragma: no cover -- encounters are never deleted
            raise ClinicalRecordNotFound(KIND, encounter_id)
        before = snapshot(encounter, ENCOUNTER_FIELDS)
        encounter_transition(encounter, S.FINISHED)
        changed = save_new_version(
            EncounterVersion, encounter, fields=ENCOUNTER_FIELDS, before=before, actor=actor, reason="encounter closed"
        )
        audit(
            actor=actor,
            action=AuditAction.UPDATE,
            entity_type=KIND,
            entity_id=encounter.pk,
            patient_id=patient_id,
            request=request,
            detail={"fields": changed, "version": encounter.version, "status": encounter.status},
        )
    return encounter_dto(encounter)


def encounter_mark_entered_in_error(
    *,
    actor: User,
    encounter_id: int,
    expected_version: int,
    reason: str,
    request: HttpRequest | None = None,
) -> EncounterRef:
    """The encounter should never have been recorded (e.g. opened on the wrong patient): status becomes
    ``entered-in-error`` as a new version, with the reason; nothing is deleted and its notes stay readable.

    Optimistic concurrency like every clinical write (``VersionConflict`` when not at ``expected_version``).
    Callers: clinicians (``WRITE_CLINICAL``). Raises ``InvalidTransition`` when it already is entered in error.
    """
    patient_id = authorise_record(
        actor=actor,
        model=Encounter,
        kind=KIND,
        record_id=encounter_id,
        action=PatientAction.WRITE_CLINICAL,
        request=request,
    )
    reason = require_reason(reason)
    with transaction.atomic():
        encounter = lock_at_version(
            Encounter.objects.select_related("practitioner", "location"),
            encounter_id,
            expected_version,
            not_found=lambda: ClinicalRecordNotFound(KIND, encounter_id),
        )
        before = snapshot(encounter, ENCOUNTER_FIELDS)
        encounter_transition(encounter, S.ENTERED_IN_ERROR)
        changed = save_new_version(
            EncounterVersion, encounter, fields=ENCOUNTER_FIELDS, before=before, actor=actor, reason=reason
        )
        audit(
            actor=actor,
            action=AuditAction.ENTERED_IN_ERROR,
            entity_type=KIND,
            entity_id=encounter.pk,
            patient_id=patient_id,
            request=request,
            detail={"fields": changed, "version": encounter.version},
        )
    return encounter_dto(encounter)


# --- Planning (scheduling's public API) ---------------------------------------------------------------------------


def _lock(encounter_id: int, expected_version: int | None = None) -> Encounter:
    """The encounter row locked for this transaction (practitioner and location loaded for the DTO); with
    ``expected_version``, ``VersionConflict`` unless it is still at that version."""
    queryset = Encounter.objects.select_related("practitioner", "location")
    if expected_version is not None:
        return lock_at_version(
            queryset, encounter_id, expected_version, not_found=lambda: ClinicalRecordNotFound(KIND, encounter_id)
        )
    encounter = queryset.select_for_update(of=("self",)).filter(pk=encounter_id).first()
    if encounter is None:  # pragma: no cover -- encounters are never deleted and the id was just looked up
        raise ClinicalRecordNotFound(KIND, encounter_id)
    return encounter


def _planned_period(clean: Cleaner, start: Any, end: Any) -> tuple[datetime.datetime, datetime.datetime]:
    """Both instants time-zone aware, ``end`` after ``start``, at most ``PLANNED_MAX_DURATION`` apart. Past
    instants are allowed: scheduling may book a slot that has just begun (a walk-in)."""
    for name, value in (("planned_start", start), ("planned_end", end)):
        if not isinstance(value, datetime.datetime) or timezone.is_naive(value):
            clean.fail(name, "Give a time-zone-aware instant.")
    if clean.errors:
        return start, end
    if end <= start:
        clean.fail("planned_end", "Must be after the planned start.")
    elif end - start > PLANNED_MAX_DURATION:
        clean.fail("planned_end", "A planned encounter lasts at most 24 hours.")
    return start, end


def _id_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# What encounter_plan and encounter_replan check before writing, in one statement: the patient's status, the
# practitioner (an active user with the practitioner role), the location, whether they work there, and whether the
# appointment already has its encounter.
_PLAN_CHECKS_SQL = """
SELECT (SELECT status FROM ehr_patient WHERE id = %(patient)s),
       practitioner.username, practitioner.first_name, practitioner.last_name,
       (SELECT name FROM ehr_location WHERE id = %(location)s),
       EXISTS (SELECT 1 FROM ehr_user_locations WHERE user_id = %(practitioner)s AND location_id = %(location)s),
       EXISTS (SELECT 1 FROM ehr_encounter WHERE appointment_id = %(appointment)s)
  FROM (SELECT 1) AS one
  LEFT JOIN ehr_user AS practitioner
    ON practitioner.id = %(practitioner)s AND practitioner.is_active AND practitioner.roles @> %(roles)s::varchar[]
"""


def _booked_practitioner(
    clean: Cleaner,
    practitioner_id: Any,
    location_id: Any,
    *,
    patient_id: int | None = None,
    appointment_id: Any = None,
) -> tuple[User | None, Location | None]:
    """The practitioner (an active user with the practitioner role) and the location, which they must work at;
    with ``patient_id``, the patient must exist and be active (raised at once, like ``authorise_patient``); with
    ``appointment_id``, a positive id no other encounter carries yet (the unique constraint is the last word). One
    read for all of it."""
    practitioner_pk, location_pk = _id_or_none(practitioner_id), _id_or_none(location_id)
    appointment_pk = _id_or_none(appointment_id)
    with connection.cursor() as cursor:
        cursor.execute(
            _PLAN_CHECKS_SQL,
            {
                "patient": patient_id,
                "practitioner": practitioner_pk,
                "location": location_pk,
                "appointment": appointment_pk,
                "roles": [Role.PRACTITIONER],
            },
        )
        status, username, first_name, last_name, location_name, works_there, has_encounter = cursor.fetchone()
    if patient_id is not None and status is None:
        raise PatientNotFound(patient_id)
    if patient_id is not None and status != PatientStatus.ACTIVE:
        raise InvalidClinicalData({"patient_id": [f"The patient record is {status}; nothing can be added."]})
    practitioner = location = None
    if practitioner_pk is None:
        clean.fail("practitioner_id", "Must be a user id.")
    elif username is None:
        clean.fail("practitioner_id", "No active practitioner with this id.")
    else:
        practitioner = User(pk=practitioner_pk, username=username, first_name=first_name, last_name=last_name)
    if location_pk is None:
        clean.fail("location_id", "Must be a location id.")
    elif location_name is None:
        clean.fail("location_id", "No location with this id.")
    else:
        location = Location(pk=location_pk, name=location_name)
        if practitioner is not None and not works_there:
            clean.fail("location_id", "The practitioner does not work at this location.")
    if appointment_id is not None:
        if appointment_pk is None or appointment_pk < 1:
            clean.fail("appointment_id", "Must be an appointment id (a positive integer) or null.")
        elif has_encounter:
            clean.fail("appointment_id", "This appointment already has its encounter.")
    return practitioner, location


def encounter_plan(
    *,
    actor: User,
    patient_id: int,
    practitioner_id: int,
    location_id: int,
    modality: str,
    planned_start: datetime.datetime,
    planned_end: datetime.datetime,
    reason: str = "",
    appointment_id: int | None = None,
    request: HttpRequest | None = None,
) -> EncounterRef:
    """Book a visit on the patient's record: a ``planned`` encounter with ``practitioner_id`` (an active user with
    the practitioner role who works at ``location_id``) for [``planned_start``, ``planned_end``) (aware instants,
    end after start, at most 24 hours). Version 1 + history + a ``create`` audit row.

    ``appointment_id``: the id of the scheduling appointment this visit is booked as (FHIR Encounter.appointment),
    kept for good; at most one encounter per appointment. Such a visit is cancelled through its appointment.

    Callers: scheduling when it books an appointment (``SCHEDULE``: schedulers, admins, the patient's clinicians,
    the patient themselves). Works inside the caller's ``transaction.atomic()`` (its own block is then a savepoint);
    the caller checks ``patient_access_check(..., action=SCHEDULE)`` beforehand, outside its transaction, so a
    denial's audit row survives. Raises ``AccessDenied``, ``PatientNotFound``, ``InvalidClinicalData`` (also for a
    patient record that is not active, or an appointment that already has its encounter), ``PatientMerged`` (a merge
    committed between the check and the insert); each writes nothing.
    """
    patient_access_check(actor=actor, patient_id=patient_id, action=PatientAction.SCHEDULE, request=request)
    clean = Cleaner()
    modality = clean.choice("modality", modality, EncounterModality.values)
    reason = clean.text("reason", reason, max_length=1000)
    start, end = _planned_period(clean, planned_start, planned_end)
    practitioner, location = _booked_practitioner(
        clean, practitioner_id, location_id, patient_id=patient_id, appointment_id=appointment_id
    )
    clean.done()
    assert practitioner is not None
    assert location is not None
    with refuse_merged_patient(patient_id), transaction.atomic():
        now = timezone.now()
        encounter = Encounter(
            patient_id=patient_id,
            practitioner=practitioner,
            location=location,
            modality=modality,
            status=S.PLANNED,
            planned_start=start,
            planned_end=end,
            reason=reason,
            appointment_id=appointment_id,
            version=1,
            created_at=now,
            updated_at=now,
        )
        encounter.save(force_insert=True)
        record_first_version(
            EncounterVersion, encounter, fields=ENCOUNTER_FIELDS, actor=actor, reason="encounter planned"
        )
        audit(
            actor=actor,
            action=AuditAction.CREATE,
            entity_type=KIND,
            entity_id=encounter.pk,
            patient_id=patient_id,
            request=request,
            detail={
                "version": 1,
                "status": S.PLANNED,
                "modality": modality,
                "location_id": location.pk,
                "practitioner_id": practitioner.pk,
                "appointment_id": appointment_id,
            },
        )
    return encounter_dto(encounter)


def encounter_replan(
    *,
    actor: User,
    encounter_id: int,
    planned_start: datetime.datetime,
    planned_end: datetime.datetime,
    practitioner_id: int | None = None,
    location_id: int | None = None,
    request: HttpRequest | None = None,
) -> EncounterRef:
    """Move a planned encounter to a new period and, when given, another practitioner and/or location (the
    practitioner must work at the location). A new version (reason "encounter rescheduled") and an ``update``
    audit row; a replan that changes nothing writes no version.

    Only while ``planned``: otherwise ``InvalidTransition`` (409). Callers: scheduling (``SCHEDULE``), also inside
    its own transaction. Raises ``AccessDenied``, ``ClinicalRecordNotFound``, ``InvalidClinicalData``.
    """
    patient_id = authorise_record(
        actor=actor, model=Encounter, kind=KIND, record_id=encounter_id, action=PatientAction.SCHEDULE, request=request
    )
    clean = Cleaner()
    start, end = _planned_period(clean, planned_start, planned_end)
    clean.done()
    with transaction.atomic():
        encounter = _lock(encounter_id)
        if encounter.status != S.PLANNED:
            raise InvalidTransition(KIND, encounter.status, S.PLANNED)
        new_practitioner = practitioner_id if practitioner_id is not None else encounter.practitioner_id
        new_location = location_id if location_id is not None else encounter.location_id
        before = snapshot(encounter, ENCOUNTER_FIELDS)
        if (new_practitioner, new_location) != (encounter.practitioner_id, encounter.location_id):
            practitioner, location = _booked_practitioner(clean, new_practitioner, new_location)
            clean.done()
            assert practitioner is not None
            assert location is not None
            encounter.practitioner, encounter.location = practitioner, location
        encounter.planned_start, encounter.planned_end = start, end
        changed = save_new_version(
            EncounterVersion,
            encounter,
            fields=ENCOUNTER_FIELDS,
            before=before,
            actor=actor,
            reason="encounter rescheduled",
        )
        audit(
            actor=actor,
            action=AuditAction.UPDATE,
            entity_type=KIND,
            entity_id=encounter.pk,
            patient_id=patient_id,
            request=request,
            detail={"fields": changed, "version": encounter.version},
        )
    return encounter_dto(encounter)


def encounter_cancel(
    *,
    actor: User,
    encounter_id: int,
    reason: str,
    request: HttpRequest | None = None,
    expected_version: int | None = None,
    unbooked_only: bool = False,
) -> EncounterRef:
    """The booked visit will not happen: ``planned`` -> ``cancelled`` through the transition table, a new version
    with ``reason`` and an ``update`` audit row. Anything but a planned encounter raises ``InvalidTransition``
    (409): a visit that started is part of the record (close it, or mark it entered in error).

    ``expected_version`` (optional; the chart sends its If-Match) gives ``VersionConflict`` when stale.
    ``unbooked_only`` (the chart's HTTP cancel): a planned encounter booked in scheduling (``appointment_id`` set)
    raises ``EncounterHasAppointment`` — the appointment owns the booking, and cancelling it cancels this encounter
    too; checked after access (outsiders still get not-found) and under the row lock. Callers: scheduling when an
    appointment is cancelled (without ``unbooked_only``), also inside its own transaction; the chart (``SCHEDULE``).
    Raises ``AccessDenied``, ``ClinicalRecordNotFound``, ``InvalidClinicalData`` (no reason); each writes nothing.
    """
    patient_id = authorise_record(
        actor=actor, model=Encounter, kind=KIND, record_id=encounter_id, action=PatientAction.SCHEDULE, request=request
    )
    reason = require_reason(reason)
    with transaction.atomic():
        encounter = _lock(encounter_id, expected_version)
        if unbooked_only and encounter.appointment_id is not None and encounter.status == S.PLANNED:
            raise EncounterHasAppointment(encounter.pk, encounter.appointment_id)
        before = snapshot(encounter, ENCOUNTER_FIELDS)
        encounter_transition(encounter, S.CANCELLED)
        changed = save_new_version(
            EncounterVersion, encounter, fields=ENCOUNTER_FIELDS, before=before, actor=actor, reason=reason
        )
        audit(
            actor=actor,
            action=AuditAction.UPDATE,
            entity_type=KIND,
            entity_id=encounter.pk,
            patient_id=patient_id,
            request=request,
            detail={"fields": changed, "version": encounter.version, "status": encounter.status},
        )
    return encounter_dto(encounter)


def encounter_start(*, actor: User, encounter_id: int, request: HttpRequest | None = None) -> EncounterRef:
    """The booked visit begins: ``planned`` -> ``in-progress`` with ``period_start`` now (the planned period is
    kept, so late starts stay visible); a new version and an ``update`` audit row. The booked practitioner stays
    the encounter's practitioner (replan first to hand the visit to a colleague).

    Anything but a planned encounter raises ``InvalidTransition`` (409). Callers: clinicians (``WRITE_CLINICAL``);
    telehealth when a visit begins, also inside its own transaction. Raises ``AccessDenied``,
    ``ClinicalRecordNotFound``.
    """
    patient_id = authorise_record(
        actor=actor,
        model=Encounter,
        kind=KIND,
        record_id=encounter_id,
        action=PatientAction.WRITE_CLINICAL,
        request=request,
    )
    with transaction.atomic():
        encounter = _lock(encounter_id)
        before = snapshot(encounter, ENCOUNTER_FIELDS)
        encounter_transition(encounter, S.IN_PROGRESS)
        changed = save_new_version(
            EncounterVersion, encounter, fields=ENCOUNTER_FIELDS, before=before, actor=actor, reason="encounter started"
        )
        audit(
            actor=actor,
            action=AuditAction.UPDATE,
            entity_type=KIND,
            entity_id=encounter.pk,
            patient_id=patient_id,
            request=request,
            detail={"fields": changed, "version": encounter.version, "status": encounter.status},
        )
    return encounter_dto(encounter)
