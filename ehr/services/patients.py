"""Writes of the Patient record: registration, versioned updates, entered-in-error, merging a duplicate into the
surviving record, identifier key rotation.

Every write checks access first (``ehr.access``), validates, then in one transaction locks the row, compares the
version the caller based its change on, applies it, appends a ``PatientVersion`` and an audit row. A failure at any
point writes nothing.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from django.contrib.postgres.search import TrigramSimilarity
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Q, Value
from django.db.models.functions import Concat, Lower
from django.http import HttpRequest
from django.utils import timezone

from ehr import crypto
from ehr.access import PatientAction, patient_access_check
from ehr.errors import (
    CareTeamOverlap,
    DuplicateSuspected,
    InvalidPatientData,
    MergePatientNotActive,
    MergePortalAccountConflict,
    MergeSamePatient,
    MergeVersionConflict,
    PatientAlreadyMerged,
    PatientNotFound,
    VersionConflict,
)
from ehr.models import (
    AdministrativeGender,
    AuditAction,
    CareTeamMember,
    ClinicalNote,
    ClinicalNoteVersion,
    DocumentReference,
    DocumentReferenceVersion,
    Encounter,
    EncounterVersion,
    Patient,
    PatientStatus,
    PatientVersion,
    Role,
    User,
)
from ehr.models.clinical import ClinicalVersion
from ehr.models.patient import DEMOGRAPHIC_FIELDS, IDENTIFIER_FIELDS, MRN_SEQUENCE
from ehr.services.audit import audit_record
from ehr.services.clinical.encounters import ENCOUNTER_FIELDS
from ehr.services.clinical.notes import NOTE_FIELDS
from ehr.services.clinical.records import ALLERGY, CONDITION, MEDICATION, OBSERVATION
from ehr.services.documents import VERSIONED_FIELDS as DOCUMENT_FIELDS
from ehr.versioning import snapshot

DUPLICATE_NAME_SIMILARITY = 0.4
EARLIEST_BIRTH_DATE = datetime.date(1900, 1, 1)
UPDATABLE_FIELDS = frozenset(DEMOGRAPHIC_FIELDS) | frozenset(IDENTIFIER_FIELDS)
ROTATION_BATCH = 500

_PHONE_SEPARATORS = re.compile(r"[\s\-.()/]+")
_PHONE = re.compile(r"^\+?[0-9]{6,15}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_IDENTIFIER = re.compile(r"^[A-Z0-9./]{3,40}$")
_MAX_LENGTH = {
    "given_name": 100,
    "family_name": 100,
    "gender_identity": 100,
    "address_line": 200,
    "city": 100,
    "postal_code": 20,
    "emergency_contact_name": 200,
    "preferred_language": 35,
    "email": 254,
}
_REQUIRED = ("given_name", "family_name", "birth_date", "sex")


@dataclass(frozen=True)
class PatientInput:
    """What registration needs. Identifiers are plaintext here and nowhere after ``patient_register``."""

    given_name: str
    family_name: str
    birth_date: datetime.date | str
    sex: str
    gender_identity: str = ""
    phone: str = ""
    email: str = ""
    address_line: str = ""
    city: str = ""
    postal_code: str = ""
    country: str = ""
    preferred_language: str = "en"
    emergency_contact_name: str = ""
    emergency_contact_phone: str = ""
    national_id: str = ""
    insurance_member_id: str = ""
    user_id: int | None = None


def normalise_phone(value: str) -> str:
    """Digits with an optional leading +: the form phones are stored and compared in."""
    return _PHONE_SEPARATORS.sub("", value)


def _clean_field(name: str, raw: Any) -> tuple[Any, str | None]:
    """(cleaned value, error message or None) for one field."""
    if name == "birth_date":
        if isinstance(raw, str):
            try:
                raw = datetime.date.fromisoformat(raw)
            except ValueError:
                return raw, "Give the date as YYYY-MM-DD."
        if not isinstance(raw, datetime.date) or isinstance(raw, datetime.datetime):
            return raw, "Give the date as YYYY-MM-DD."
        if raw > timezone.localdate():
            return raw, "Birth date cannot be in the future."
        if raw < EARLIEST_BIRTH_DATE:
            return raw, "Birth date cannot be before 1900."
        return raw, None
    if not isinstance(raw, str):
        return raw, "Must be text."
    value = raw.strip()
    if name in _MAX_LENGTH and len(value) > _MAX_LENGTH[name]:
        return value, f"At most {_MAX_LENGTH[name]} characters."
    if name in _REQUIRED and not value:
        return value, "This field is required."
    if name == "sex":
        if value not in AdministrativeGender.values:
            return value, f"Must be one of {', '.join(AdministrativeGender.values)}."
    elif name in ("phone", "emergency_contact_phone"):
        value = normalise_phone(value)
        if value and not _PHONE.match(value):
            return value, "Not a phone number (6 to 15 digits, optional leading +)."
    elif name == "email":
        if value:
            try:
                validate_email(value)
            except ValidationError:
                return value, "Not a valid email address."
    elif name == "country":
        value = value.upper()
        if value and not _COUNTRY.match(value):
            return value, "Use the ISO 3166-1 alpha-2 code (e.g. PT)."
    elif name == "preferred_language":
        value = value or "en"
        if not _LANGUAGE.match(value):
            return value, "Use a BCP 47 language tag (e.g. en, pt-BR)."
    elif name in IDENTIFIER_FIELDS:
        value = crypto.normalise_identifier(value)
        if value and not _IDENTIFIER.match(value):
            return value, "3 to 40 letters, digits, dots or slashes."
    return value, None


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name, raw in values.items():
        value, error = _clean_field(name, raw)
        if error:
            errors[name] = [error]
        cleaned[name] = value
    if errors:
        raise InvalidPatientData(errors)
    return cleaned


def _set_identifier(patient: Patient, name: str, plaintext: str) -> None:
    setattr(patient, f"{name}_encrypted", crypto.encrypt_identifier(plaintext) if plaintext else "")
    setattr(patient, f"{name}_hash", crypto.identifier_hash(plaintext) if plaintext else "")


def _identifier_snapshot(patient: Patient, name: str) -> dict[str, str] | None:
    token = getattr(patient, f"{name}_encrypted")
    if not token:
        return None
    return {
        "hash": getattr(patient, f"{name}_hash"),
        "masked": crypto.mask_identifier(crypto.decrypt_identifier(token)),
    }


def patient_snapshot(patient: Patient) -> dict[str, Any]:
    """The JSON a PatientVersion keeps: demographics and status; identifiers only as keyed hash and masked tail."""
    data: dict[str, Any] = {name: getattr(patient, name) for name in DEMOGRAPHIC_FIELDS}
    data["birth_date"] = patient.birth_date.isoformat()
    data["status"] = patient.status
    data["user_id"] = patient.user_id
    data["merged_into_id"] = patient.merged_into_id
    for name in IDENTIFIER_FIELDS:
        data[name] = _identifier_snapshot(patient, name)
    return data


def _channel(request: HttpRequest | None) -> str:
    return "api" if request is not None else "system"


# The fields duplicate detection compares: changing one of them can make a record look like another.
DUPLICATE_FIELDS = frozenset({"given_name", "family_name", "birth_date", "phone", "email"})


def _duplicate_candidates(
    *,
    birth_date: datetime.date,
    given_name: str,
    family_name: str,
    phone: str,
    email: str,
    exclude_id: int | None = None,
) -> list[int]:
    name_match = Q(name_similarity__gte=DUPLICATE_NAME_SIMILARITY)
    if phone:
        name_match |= Q(phone=phone)
    if email:
        name_match |= Q(email_lower=email.lower())
    same_day = Patient.objects.filter(birth_date=birth_date, status=PatientStatus.ACTIVE)
    if exclude_id is not None:
        same_day = same_day.exclude(pk=exclude_id)
    rows = (
        same_day.annotate(
            name_similarity=TrigramSimilarity(
                Concat("given_name", Value(" "), "family_name"), f"{given_name} {family_name}"
            ),
            email_lower=Lower("email"),
        )
        .filter(name_match)
        .order_by("-name_similarity", "id")
        .values_list("id", flat=True)[:10]
    )
    return list(rows)


def _lock_birth_date(birth_date: datetime.date) -> None:
    """Serialise registrations and updates that land on the same birth date (transaction-scoped advisory lock), so
    two desks cannot both miss each other's duplicate."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"ehr.patient_register:{birth_date}"])


def _refuse_duplicates(values: dict[str, Any], *, exclude_id: int | None = None) -> None:
    """Raise ``DuplicateSuspected`` when ``values`` (cleaned: birth date, names, phone, email) look like another
    active patient (``exclude_id``: the record itself, on update). Call under ``_lock_birth_date``."""
    candidates = _duplicate_candidates(
        birth_date=values["birth_date"],
        given_name=values["given_name"],
        family_name=values["family_name"],
        phone=values["phone"],
        email=values["email"],
        exclude_id=exclude_id,
    )
    if candidates:
        raise DuplicateSuspected(candidates)


def _next_mrn() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(%s)", [MRN_SEQUENCE])
        (number,) = cursor.fetchone()
    return f"MRN{int(number):08d}"


def _validate_portal_user(user_id: int) -> None:
    user = User.objects.filter(pk=user_id).only("id", "roles").first()
    if user is None or Role.PATIENT not in user.roles:
        raise InvalidPatientData({"user_id": ["No patient account with this id."]})
    if Patient.objects.filter(user_id=user_id).exists():
        raise InvalidPatientData({"user_id": ["This account is already linked to a patient record."]})


def patient_register(
    *,
    actor: User,
    data: PatientInput,
    reason: str = "registration",
    allow_duplicate: bool = False,
    request: HttpRequest | None = None,
) -> Patient:
    """Register a patient: MRN from the database sequence, version 1, its PatientVersion and a "create" audit row.

    Unless ``allow_duplicate``, active patients born the same day whose full name is similar (trigram >= 0.4) or
    who share the phone or email raise ``DuplicateSuspected`` and nothing is written. Registrations with the same
    birth date are serialised (advisory lock), so two desks cannot both miss each other's duplicate.
    Callers: staff (``ehr.access``); the seed command.
    """
    patient_access_check(actor=actor, patient_id=None, action=PatientAction.REGISTER, request=request)
    values = asdict(data)
    user_id = values.pop("user_id")
    cleaned = _clean(values)
    if user_id is not None:
        _validate_portal_user(user_id)
    with transaction.atomic():
        _lock_birth_date(cleaned["birth_date"])
        if not allow_duplicate:
            _refuse_duplicates(cleaned)
        now = timezone.now()
        patient = Patient(
            mrn=_next_mrn(),
            user_id=user_id,
            version=1,
            status=PatientStatus.ACTIVE,
            created_at=now,
            updated_at=now,
            **{name: cleaned[name] for name in DEMOGRAPHIC_FIELDS},
        )
        for name in IDENTIFIER_FIELDS:
            _set_identifier(patient, name, cleaned[name])
        try:
            with transaction.atomic():
                patient.save(force_insert=True)
        except IntegrityError:
            # the only unique column a caller controls: a concurrent registration linked the same account
            raise InvalidPatientData({"user_id": ["This account is already linked to a patient record."]}) from None
        fields = [name for name in (*DEMOGRAPHIC_FIELDS, *IDENTIFIER_FIELDS) if cleaned[name]]
        PatientVersion.objects.create(
            patient=patient,
            version=1,
            data=patient_snapshot(patient),
            changed_fields=fields,
            actor=actor,
            reason=reason.strip() or "registration",
            recorded_at=now,
        )
        audit_record(
            actor=actor,
            action=AuditAction.CREATE,
            entity_type="Patient",
            entity_id=patient.pk,
            patient_id=patient.pk,
            request=request,
            channel=_channel(request),
            detail={"fields": fields, "version": 1, "duplicate_override": allow_duplicate},
        )
    return patient


def _locked(patient_id: int, expected_version: int) -> Patient:
    try:
        patient = Patient.objects.select_for_update().get(pk=patient_id)
    except Patient.DoesNotExist:
        raise PatientNotFound(patient_id) from None
    if patient.version != expected_version:
        raise VersionConflict(patient.version)
    return patient


def _require_reason(reason: str) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidPatientData({"reason": ["Say why the record changes."]})
    if len(reason) > 500:
        raise InvalidPatientData({"reason": ["At most 500 characters."]})
    return reason.strip()


def _append_version(patient: Patient, *, actor: User, changed: list[str], reason: str) -> None:
    patient.version += 1
    patient.updated_at = timezone.now()
    patient.save()
    PatientVersion.objects.create(
        patient=patient,
        version=patient.version,
        data=patient_snapshot(patient),
        changed_fields=changed,
        actor=actor,
        reason=reason,
        recorded_at=patient.updated_at,
    )


def patient_update(
    *,
    actor: User,
    patient_id: int,
    expected_version: int,
    changes: dict[str, Any],
    reason: str,
    allow_duplicate: bool = False,
    request: HttpRequest | None = None,
) -> Patient:
    """Apply ``changes`` (demographic fields and plaintext identifiers) as a new version.

    When the change touches a name, the birth date, the phone or the email, the record as it would become is
    checked against the other active patients as at registration: unless ``allow_duplicate``, a look-alike raises
    ``DuplicateSuspected`` (their ids) and nothing is written.

    Raises ``VersionConflict`` when the record is no longer at ``expected_version`` (optimistic concurrency: the
    row is locked, so of two concurrent updates based on the same version exactly one wins), ``InvalidPatientData``
    for unknown fields or bad values, ``PatientNotFound``; each writes nothing. A change that changes nothing
    creates no version. Callers: staff (``ehr.access``).
    """
    patient_access_check(actor=actor, patient_id=patient_id, action=PatientAction.UPDATE, request=request)
    unknown = sorted(set(changes) - UPDATABLE_FIELDS)
    if unknown:
        raise InvalidPatientData({name: ["Unknown or read-only field."] for name in unknown})
    reason = _require_reason(reason)
    cleaned = _clean(dict(changes))
    with transaction.atomic():
        patient = _locked(patient_id, expected_version)
        if patient.status != PatientStatus.ACTIVE:
            raise InvalidPatientData({"status": [f"The record is {patient.status} and cannot change."]})
        changed: list[str] = []
        for name, value in cleaned.items():
            if name in IDENTIFIER_FIELDS:
                current_hash = getattr(patient, f"{name}_hash")
                if (crypto.identifier_hash(value) if value else "") != current_hash:
                    _set_identifier(patient, name, value)
                    changed.append(name)
            elif getattr(patient, name) != value:
                setattr(patient, name, value)
                changed.append(name)
        changed.sort(key=lambda n: (*DEMOGRAPHIC_FIELDS, *IDENTIFIER_FIELDS).index(n))
        if DUPLICATE_FIELDS.intersection(changed):
            _lock_birth_date(patient.birth_date)
            if not allow_duplicate:
                _refuse_duplicates({name: getattr(patient, name) for name in DUPLICATE_FIELDS}, exclude_id=patient.pk)
        if changed:
            _append_version(patient, actor=actor, changed=changed, reason=reason)
        audit_record(
            actor=actor,
            action=AuditAction.UPDATE,
            entity_type="Patient",
            entity_id=patient.pk,
            patient_id=patient.pk,
            request=request,
            channel=_channel(request),
            detail={"fields": changed, "version": patient.version, "duplicate_override": allow_duplicate},
        )
    return patient


def patient_mark_entered_in_error(
    *, actor: User, patient_id: int, expected_version: int, reason: str, request: HttpRequest | None = None
) -> Patient:
    """The record should never have existed (e.g. a duplicate registration): status becomes ``entered-in-error``
    as a new version. Nothing is deleted. With ``patient_merge``, the only function that changes ``Patient.status``.
    Callers: staff except billing (``ehr.access``)."""
    patient_access_check(
        actor=actor, patient_id=patient_id, action=PatientAction.MARK_ENTERED_IN_ERROR, request=request
    )
    reason = _require_reason(reason)
    with transaction.atomic():
        patient = _locked(patient_id, expected_version)
        if patient.status == PatientStatus.ENTERED_IN_ERROR:
            raise InvalidPatientData({"status": ["The record is already entered in error."]})
        if patient.status == PatientStatus.MERGED:
            raise InvalidPatientData({"status": ["The record was merged into another record and cannot change."]})
        patient.status = PatientStatus.ENTERED_IN_ERROR
        _append_version(patient, actor=actor, changed=["status"], reason=reason)
        audit_record(
            actor=actor,
            action=AuditAction.ENTERED_IN_ERROR,
            entity_type="Patient",
            entity_id=patient.pk,
            patient_id=patient.pk,
            request=request,
            channel=_channel(request),
            detail={"fields": ["status"], "version": patient.version},
        )
    return patient


# --- Merging a duplicate into the surviving record ----------------------------------------------------------------


@dataclass(frozen=True)
class _Compartment:
    """One versioned kind of a patient's clinical record, as the merge moves it."""

    name: str  # the key in the audit detail's "moved" counts
    model: type[models.Model]
    history: type[ClinicalVersion]
    fields: tuple[str, ...]  # the kind's versioned (snapshot) fields


# Encounters first: a document's encounter must already be the target's when the document moves (trigger, 0010).
_COMPARTMENTS: tuple[_Compartment, ...] = (
    _Compartment("encounters", Encounter, EncounterVersion, ENCOUNTER_FIELDS),
    _Compartment("notes", ClinicalNote, ClinicalNoteVersion, NOTE_FIELDS),
    *(
        _Compartment(key, kind.model, kind.history, kind.fields)
        for key, kind in (
            ("conditions", CONDITION),
            ("allergies", ALLERGY),
            ("medications", MEDICATION),
            ("observations", OBSERVATION),
        )
    ),
    _Compartment("documents", DocumentReference, DocumentReferenceVersion, DOCUMENT_FIELDS),
)


def _move_compartment(
    part: _Compartment, *, source: Patient, target: Patient, actor: User, reason: str, now: datetime.datetime
) -> int:
    """Move every row of ``part`` from ``source`` to ``target``: each gets a new version (``changed_fields``
    ``["patient_id"]``, the snapshot of its clinical content unchanged, ``reason``); old versions stay as written."""
    rows = list(part.model._default_manager.select_for_update().filter(patient_id=source.pk).order_by("pk"))
    if not rows:
        return 0
    for row in rows:
        row.patient_id = target.pk  # type: ignore[attr-defined]
        row.version += 1  # type: ignore[attr-defined]
        row.updated_at = now  # type: ignore[attr-defined]
    part.model._default_manager.bulk_update(rows, ["patient", "version", "updated_at"], batch_size=500)
    part.history._default_manager.bulk_create(
        [
            part.history(  # ``record`` is declared by each concrete history model
                record=row,  # type: ignore[misc]
                version=row.version,  # type: ignore[attr-defined]
                data=snapshot(row, part.fields),
                changed_fields=["patient_id"],
                actor=actor,
                reason=reason,
                recorded_at=now,
            )
            for row in rows
        ],
        batch_size=500,
    )
    return len(rows)


def _overlaps(a_start: datetime.datetime, a_end: datetime.datetime | None, b: Mapping[str, Any]) -> bool:
    """Whether [a_start, a_end) and [b.start, b.end) overlap (an open end is infinity)."""
    return (b["end"] is None or a_start < b["end"]) and (a_end is None or b["start"] < a_end)


def _move_care_team(*, source: Patient, target: Patient, actor: User, now: datetime.datetime) -> tuple[int, int]:
    """Move the source's care-team memberships to the target, except those of a person already on the target's team
    for an overlapping period (the target's own row grants the same): those stay with the source and, if still
    open, end now. Returns (moved, kept)."""
    rows = list(CareTeamMember.objects.select_for_update().filter(patient_id=source.pk).order_by("pk"))
    on_target = list(
        CareTeamMember.objects.select_for_update().filter(patient_id=target.pk).values("member_id", "start", "end")
    )
    moved: list[CareTeamMember] = []
    kept: list[CareTeamMember] = []
    for row in rows:
        same_person = (t for t in on_target if t["member_id"] == row.member_id)
        (kept if any(_overlaps(row.start, row.end, t) for t in same_person) else moved).append(row)
    for row in kept:
        if row.end is None or row.end > now:
            row.end = max(now, row.start)
            row.ended_by = actor
            row.end_reason = f"merged into {target.mrn}; already on that record's care team"
            row.save(update_fields=["end", "ended_by", "end_reason"])
    for row in moved:
        row.patient_id = target.pk
    try:
        with transaction.atomic():
            CareTeamMember.objects.bulk_update(moved, ["patient"], batch_size=500)
    except IntegrityError:  # pragma: no cover -- the target's row lock keeps concurrent adds out; the constraint rules
        raise CareTeamOverlap(f"care team of {target.pk} changed during the merge") from None
    return len(moved), len(kept)


def _lock_pair(source_id: int, target_id: int) -> tuple[Patient, Patient]:
    """Both rows locked in id order (so two merges of the same pair in opposite directions cannot deadlock)."""
    rows = {p.pk: p for p in Patient.objects.select_for_update().filter(pk__in=[source_id, target_id]).order_by("pk")}
    for patient_id in (source_id, target_id):
        if patient_id not in rows:
            raise PatientNotFound(patient_id)
    return rows[source_id], rows[target_id]


def _check_mergeable(source: Patient, target: Patient, expected_source: int, expected_target: int) -> None:
    if source.status == PatientStatus.MERGED:
        raise PatientAlreadyMerged(source.merged_into_id)
    if source.status != PatientStatus.ACTIVE:
        raise MergePatientNotActive("source", source.status)
    if target.status != PatientStatus.ACTIVE:
        raise MergePatientNotActive("target", target.status, target.merged_into_id)
    if source.version != expected_source:
        raise MergeVersionConflict("source", source.version)
    if target.version != expected_target:
        raise MergeVersionConflict("target", target.version)
    if source.user_id is not None and target.user_id is not None:
        raise MergePortalAccountConflict(f"both {source.pk} and {target.pk} have a portal login")


def patient_merge(
    *,
    actor: User,
    source_patient_id: int,
    target_patient_id: int,
    expected_source_version: int,
    expected_target_version: int,
    reason: str,
    request: HttpRequest | None = None,
) -> Patient:
    """Merge the duplicate ``source`` into the surviving ``target`` and return the target.

    In one transaction, with both rows locked (id order) and both If-Match versions checked:

    - the source becomes ``merged`` with ``merged_into`` = target, as a new version (reason "merged into <target
      MRN>: <reason>"); it stays readable, so old links lead to the surviving record;
    - the target gets a new version (reason "merged from <source MRN>: <reason>"): identifiers it lacks are taken
      from the source (its own are kept), and the source's portal login moves to it;
    - every encounter, note, condition, allergy, medication, observation and document of the source moves to the
      target, each as a new version with reason "merged from <source MRN>" (history rows are only appended); care-team
      memberships move, except a person's overlapping with their own membership of the target (kept, ended);
    - one ``update`` audit row per record, each naming the other and the counts moved.

    Refusals, each writing nothing: ``MergeSamePatient``; ``PatientAlreadyMerged`` (source merged before);
    ``MergePatientNotActive`` (either record entered in error, or the target merged); ``MergeVersionConflict``
    (a ``VersionConflict`` naming the stale record); ``MergePortalAccountConflict`` (both have a portal login);
    ``InvalidPatientData`` (no reason); ``PatientNotFound``; ``AccessDenied``. Of two merges of the same source at
    once, exactly one wins (row locks, then the version check). Callers: admins and schedulers (``MERGE``, checked on
    both records).
    """
    for patient_id in dict.fromkeys((source_patient_id, target_patient_id)):
        patient_access_check(actor=actor, patient_id=patient_id, action=PatientAction.MERGE, request=request)
    if source_patient_id == target_patient_id:
        raise MergeSamePatient(f"{source_patient_id} into itself")
    reason = _require_reason(reason)
    with transaction.atomic():
        source, target = _lock_pair(source_patient_id, target_patient_id)
        _check_mergeable(source, target, expected_source_version, expected_target_version)
        portal_user_id = source.user_id
        source.status = PatientStatus.MERGED
        source.merged_into = target
        source_changed = ["status", "merged_into_id"]
        if portal_user_id is not None:
            source.user = None
            source_changed.append("user_id")
        _append_version(source, actor=actor, changed=source_changed, reason=f"merged into {target.mrn}: {reason}")
        target_changed: list[str] = []
        for name in IDENTIFIER_FIELDS:
            if not getattr(target, f"{name}_encrypted") and getattr(source, f"{name}_encrypted"):
                setattr(target, f"{name}_encrypted", getattr(source, f"{name}_encrypted"))
                setattr(target, f"{name}_hash", getattr(source, f"{name}_hash"))
                target_changed.append(name)
        if portal_user_id is not None:
            target.user_id = portal_user_id
            target_changed.append("user_id")
        _append_version(target, actor=actor, changed=target_changed, reason=f"merged from {source.mrn}: {reason}")
        now = target.updated_at
        moved = {
            part.name: _move_compartment(
                part, source=source, target=target, actor=actor, reason=f"merged from {source.mrn}", now=now
            )
            for part in _COMPARTMENTS
        }
        moved["care_team"], moved["care_team_kept"] = _move_care_team(
            source=source, target=target, actor=actor, now=now
        )
        for patient, other, version in (
            (source, {"merged_into": target.pk}, source.version),
            (target, {"merged_from": source.pk, "fields": target_changed}, target.version),
        ):
            audit_record(
                actor=actor,
                action=AuditAction.UPDATE,
                entity_type="Patient",
                entity_id=patient.pk,
                patient_id=patient.pk,
                request=request,
                channel=_channel(request),
                detail={"op": "merge", **other, "version": version, "moved": moved},
            )
    return target


def patient_identifiers_rotate_keys(*, batch_size: int = ROTATION_BATCH) -> int:
    """Re-encrypt every identifier token not yet under the current key (``MultiFernet.rotate``); returns how many
    patient rows changed. Batches of ``batch_size`` rows, each in its own transaction under row locks, so it can run
    beside live traffic and be re-run after an interruption (tokens already current are skipped: idempotent).

    Not a clinical change: no PatientVersion and no version bump; one audit row (purpose ``key_rotation``).
    Caller: ``manage.py rotate_field_keys``.
    """
    rotated = 0
    last_id = 0
    token_fields = [f"{name}_encrypted" for name in IDENTIFIER_FIELDS]
    while True:
        with transaction.atomic():
            batch = list(
                Patient.objects.select_for_update()
                .filter(pk__gt=last_id)
                .exclude(national_id_encrypted="", insurance_member_id_encrypted="")
                .order_by("pk")
                .only("pk", *token_fields)[:batch_size]
            )
            if not batch:
                break
            changed_rows = []
            for patient in batch:
                changed = False
                for field in token_fields:
                    token = getattr(patient, field)
                    if token and not crypto.is_current(token):
                        setattr(patient, field, crypto.rotate_token(token))
                        changed = True
                if changed:
                    changed_rows.append(patient)
            Patient.objects.bulk_update(changed_rows, token_fields)
            rotated += len(changed_rows)
            last_id = batch[-1].pk
    with transaction.atomic():
        audit_record(
            actor=None,
            action=AuditAction.UPDATE,
            entity_type="Patient",
            purpose="key_rotation",
            channel="system",
            detail={"count": rotated},
        )
    return rotated
