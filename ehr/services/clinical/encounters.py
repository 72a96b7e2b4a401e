"""Encounters: open (in progress), close (finished, with end time and duration), mark entered in error."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from ehr.access import PatientAction
from ehr.dto import EncounterRef, to_dto
from ehr.errors import ClinicalRecordNotFound
from ehr.models import AuditAction, Encounter, EncounterModality, EncounterStatus, EncounterVersion, User
from ehr.services.clinical._common import (
    Cleaner,
    audit,
    authorise_patient,
    authorise_record,
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
)

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
    ``PatientNotFound``, ``InvalidClinicalData``.
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
    with transaction.atomic():
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
