"""Shared plumbing of the clinical services: access + existence checks, audit rows, the transition function and
input cleaning. Private to ``ehr.services.clinical``."""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, models, transaction
from django.http import HttpRequest
from django.utils import timezone

from ehr.access import PatientAction, patient_access_allowed, patient_access_check
from ehr.errors import (
    AccessDenied,
    ClinicalRecordNotFound,
    InvalidClinicalData,
    InvalidTransition,
    NotNoteAuthor,
    PatientMerged,
    PatientNotFound,
)
from ehr.models import AuditAction, AuditOutcome, Encounter, EncounterStatus, Patient, PatientStatus, User
from ehr.services.audit import audit_record

REASON_MAX = 500
# A clinician's device clock may run a little ahead of the server's: instants up to this far ahead are accepted.
CLOCK_SKEW = datetime.timedelta(minutes=5)


def channel(request: HttpRequest | None) -> str:
    return "api" if request is not None else "system"


def audit(
    *,
    actor: User,
    action: str,
    entity_type: str,
    entity_id: object,
    patient_id: int,
    request: HttpRequest | None,
    detail: dict[str, Any] | None = None,
) -> None:
    """One audit row in the caller's transaction (ids and field names only in ``detail``)."""
    audit_record(
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        patient_id=patient_id,
        request=request,
        channel=channel(request),
        detail=detail,
    )


def audit_denied(
    *, actor: User, entity_type: str, entity_id: object, patient_id: int, request: HttpRequest | None, why: str
) -> None:
    """Record a refused attempt in its own transaction, so the row survives the error that follows."""
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=AuditAction.UPDATE,
            entity_type=entity_type,
            entity_id=entity_id,
            patient_id=patient_id,
            outcome=AuditOutcome.DENIED,
            request=request,
            channel=channel(request),
            detail={"why": why},
        )


def authorise_patient(
    *, actor: User, patient_id: int, action: PatientAction, request: HttpRequest | None, writing: bool = False
) -> None:
    """Access check (audits denials), then the patient must exist; clinical writes need an active record."""
    patient_access_check(actor=actor, patient_id=patient_id, action=action, request=request)
    status = Patient.objects.filter(pk=patient_id).values_list("status", flat=True).first()
    if status is None:
        raise PatientNotFound(patient_id)
    if writing and status != PatientStatus.ACTIVE:
        raise InvalidClinicalData({"patient_id": [f"The patient record is {status}; nothing can be added."]})


# The constraint name migration 0014's compartment guard raises (SQLSTATE 23514, check_violation) when a row is
# attached to a merged patient.
MERGED_PATIENT_GUARD = "patient_not_merged"


@contextmanager
def refuse_merged_patient(patient_id: int) -> Iterator[None]:
    """Wrap a write that inserts into the patient's compartment (around its ``transaction.atomic()``, so the block
    or savepoint has been rolled back when this runs): the merge guard's refusal becomes ``PatientMerged``.

    ``authorise_patient`` refuses a merged record up front; this covers the race it cannot see — a merge that
    commits between that check and the insert (the guard makes the insert wait for the merge, then refuses it).
    Any other database error propagates unchanged.
    """
    try:
        yield
    except IntegrityError as exc:
        diag = getattr(exc.__cause__, "diag", None)
        if getattr(diag, "constraint_name", None) != MERGED_PATIENT_GUARD:
            raise
        merged_into = Patient.objects.filter(pk=patient_id).values_list("merged_into_id", flat=True).first()
        raise PatientMerged(patient_id, merged_into) from None


def authorise_record(
    *,
    actor: User,
    model: type[models.Model],
    kind: str,
    record_id: int,
    action: PatientAction,
    request: HttpRequest | None,
    author_only: bool = False,
) -> int:
    """The patient id of a clinical row, after the access check for that patient.

    No existence inference: whoever may not read the patient's clinical record (``READ_CLINICAL``) gets
    ``ClinicalRecordNotFound`` both for a row that exists and for one that does not, never ``BreakGlassRequired``
    (break-the-glass is offered on the patient's own endpoints). The check runs either way (with no patient for a
    missing row), so the denial is audited as before. Someone who may read the record and is refused this action
    (e.g. a patient updating their own allergy) gets ``AccessDenied``: they already know the row exists. With
    ``author_only`` (notes) the actor must be the row's author.
    """
    row = model._default_manager.filter(pk=record_id).values("patient_id", *(["author_id"] if author_only else []))
    found = row.first()
    patient_id = None if found is None else int(found["patient_id"])
    try:
        patient_access_check(actor=actor, patient_id=patient_id, action=action, request=request)
    except AccessDenied:
        if patient_id is None or not patient_access_allowed(
            actor=actor, patient_id=patient_id, action=PatientAction.READ_CLINICAL
        ):
            raise ClinicalRecordNotFound(kind, record_id) from None
        raise
    if found is None or patient_id is None:
        raise ClinicalRecordNotFound(kind, record_id)
    if author_only and found["author_id"] != actor.pk:
        audit_denied(
            actor=actor, entity_type=kind, entity_id=record_id, patient_id=patient_id, request=request, why="not_author"
        )
        raise NotNoteAuthor(f"only the author may change or sign {kind} {record_id}")
    return patient_id


def transition(kind: str, table: Mapping[str, frozenset[str]], current: str, target: str) -> str:
    """The one transition rule of every state machine: ``target`` if the table allows it from ``current``."""
    if target not in table.get(current, frozenset()):
        raise InvalidTransition(kind, current, target)
    return target


def require_reason(reason: Any) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidClinicalData({"reason": ["Say why the record changes."]})
    if len(reason) > REASON_MAX:
        raise InvalidClinicalData({"reason": [f"At most {REASON_MAX} characters."]})
    return reason.strip()


def check_encounter(patient_id: int, encounter_id: int | None) -> None:
    """An encounter a record refers to must be this patient's and not cancelled or entered in error."""
    if encounter_id is None:
        return
    status = Encounter.objects.filter(pk=encounter_id, patient_id=patient_id).values_list("status", flat=True).first()
    if status is None:
        raise InvalidClinicalData({"encounter_id": ["No encounter of this patient with this id."]})
    if status in (EncounterStatus.CANCELLED, EncounterStatus.ENTERED_IN_ERROR):
        raise InvalidClinicalData({"encounter_id": [f"The encounter is {status}."]})


class Cleaner:
    """Collects per-field errors while cleaning input; ``done()`` raises them all at once."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def done(self) -> None:
        if self.errors:
            raise InvalidClinicalData(self.errors)

    def text(self, name: str, raw: Any, *, max_length: int, required: bool = False) -> str:
        if raw is None:
            raw = ""
        if not isinstance(raw, str):
            self.fail(name, "Must be text.")
            return ""
        value = raw.strip()
        if required and not value:
            self.fail(name, "This field is required.")
        elif len(value) > max_length:
            self.fail(name, f"At most {max_length} characters.")
        return value

    def choice(self, name: str, raw: Any, allowed: list[str]) -> str:
        if not isinstance(raw, str) or raw not in allowed:
            self.fail(name, f"Must be one of {', '.join(allowed)}.")
            return ""
        return raw

    def date(self, name: str, raw: Any, *, not_future: bool = True) -> datetime.date | None:
        if raw is None or raw == "":
            return None
        value: Any = raw
        if isinstance(raw, str):
            try:
                value = datetime.date.fromisoformat(raw)
            except ValueError:
                value = None
        if not isinstance(value, datetime.date) or isinstance(value, datetime.datetime):
            self.fail(name, "Give the date as YYYY-MM-DD.")
            return None
        if not_future and value > timezone.localdate():
            self.fail(name, "Cannot be in the future.")
        return value

    def instant(self, name: str, raw: Any) -> datetime.datetime | None:
        value: Any = raw
        if isinstance(raw, str):
            try:
                value = datetime.datetime.fromisoformat(raw)
            except ValueError:
                value = None
        if not isinstance(value, datetime.datetime) or timezone.is_naive(value):
            self.fail(name, "Give an ISO 8601 instant with its offset, e.g. 2026-01-31T09:30:00Z.")
            return None
        if value > timezone.now() + CLOCK_SKEW:
            self.fail(name, "Cannot be in the future.")
        return value

    def decimal(self, name: str, raw: Any) -> Decimal | None:
        if isinstance(raw, bool) or not isinstance(raw, int | float | str | Decimal):
            self.fail(name, "Must be a number.")
            return None
        try:
            value = Decimal(str(raw).strip())
        except InvalidOperation:
            self.fail(name, "Must be a number.")
            return None
        if not value.is_finite():
            self.fail(name, "Must be a finite number.")
            return None
        return value

    def optional_id(self, name: str, raw: Any) -> int | None:
        if raw is None:
            return None
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
            self.fail(name, "Must be an id (a positive integer) or null.")
            return None
        return int(raw)


def reject_unknown(values: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise InvalidClinicalData({name: ["Unknown or read-only field."] for name in unknown})
