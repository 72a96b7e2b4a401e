"""Reads of the ehr app."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any, BinaryIO

from django.contrib.postgres.search import TrigramSimilarity
from django.db.models import F, Model, Prefetch, Q, QuerySet, Value
from django.db.models.functions import Concat
from django.http import HttpRequest

from core.realtime.streams import StreamUser
from ehr import crypto
from ehr.access import PatientAction, patient_access_check
from ehr.dto import (
    AddendumRef,
    AllergyRef,
    ChartSummary,
    ConditionRef,
    EncounterRef,
    FieldChange,
    MedicationRef,
    NoteRef,
    ObservationRef,
    PatientHistoryEntry,
    PatientIdentifiers,
    RecordHistoryEntry,
    to_dto,
)
from ehr.errors import DocumentContentUnavailable, PatientNotFound
from ehr.models import (
    AllergyIntolerance,
    AuditAction,
    AuditEvent,
    ClinicalNote,
    ClinicalNoteVersion,
    Condition,
    ConditionClinicalStatus,
    DocumentReference,
    DocumentReferenceVersion,
    DocumentStatus,
    DocumentType,
    Encounter,
    EncounterStatus,
    EncounterVersion,
    Location,
    MedicationStatement,
    MedicationStatus,
    NoteAddendum,
    Observation,
    ObservationStatus,
    Patient,
    PatientStatus,
    PatientVersion,
    Role,
    User,
    VerificationStatus,
)
from ehr.models.clinical import ClinicalVersion
from ehr.services.audit import audit_record
from ehr.services.clinical._common import authorise_patient, authorise_record
from ehr.services.clinical.records import KINDS as RECORD_KINDS
from ehr.services.documents import DocumentRef, document_dto, stored_path
from ehr.versioning import history_entries


def user_get_me(*, user_id: int) -> User:
    """The signed-in user with organization, own patient record (if any) and locations loaded (one query for the
    user, one for locations)."""
    return User.objects.select_related("organization", "patient_record").prefetch_related("locations").get(pk=user_id)


def user_list(*, search: str = "") -> QuerySet[User]:
    """Users for the admin console, optionally filtered by name or username. Callers check the admin role."""
    qs = User.objects.order_by("last_name", "first_name", "username")
    search = search.strip()
    if search:
        qs = qs.filter(Q(username__icontains=search) | Q(first_name__icontains=search) | Q(last_name__icontains=search))
    return qs


def location_list(*, organization_id: int) -> QuerySet[Location]:
    return Location.objects.filter(organization_id=organization_id).order_by("name")


def location_may_receive(user: StreamUser, name: str) -> bool:
    """Realtime authoriser for ``group:location.<id>``: staff who work at that location."""
    _, _, raw_id = name.partition(".")
    if not raw_id.isdigit() or not isinstance(user, User):
        return False
    if not user.has_role(Role.PRACTITIONER, Role.NURSE, Role.SCHEDULER, Role.ADMIN):
        return False
    return user.locations.filter(pk=int(raw_id)).exists()


def audit_event_list(
    *,
    viewer: User,
    request: HttpRequest | None = None,
    patient_id: int | None = None,
    actor_username: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEvent]:
    """Audit rows for the admin console, newest first. Callers check the admin role; the search is audited."""
    qs = AuditEvent.objects.select_related("actor").order_by("-occurred_at", "-id")
    if patient_id is not None:
        qs = qs.filter(patient_id=patient_id)
    if actor_username:
        qs = qs.filter(actor__username=actor_username)
    if action:
        qs = qs.filter(action=action)
    if outcome:
        qs = qs.filter(outcome=outcome)
    if since:
        qs = qs.filter(occurred_at__gte=since)
    if until:
        qs = qs.filter(occurred_at__lte=until)
    used = [
        name
        for name, value in (
            ("patient_id", patient_id),
            ("actor", actor_username),
            ("action", action),
            ("outcome", outcome),
            ("since", since),
            ("until", until),
        )
        if value
    ]
    this_search = audit_record(
        actor=viewer,
        action=AuditAction.READ,
        entity_type="AuditLog",
        patient_id=patient_id,
        purpose="audit_review",
        request=request,
        detail={"filters": used},
    )
    return qs.filter(id__lt=this_search.id)  # the log as it stood before this search


# --- Patients ---------------------------------------------------------------------------------------------------

PATIENT_SUMMARY_FIELDS = ("id", "mrn", "given_name", "family_name", "birth_date", "sex", "status")
SEARCH_MAX_TOKENS = 4


def _patient_channel(request: HttpRequest | None) -> str:
    return "api" if request is not None else "system"


def _audit_patient_read(
    *,
    actor: User,
    patient_id: int | None,
    request: HttpRequest | None,
    entity_type: str = "Patient",
    purpose: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    audit_record(
        actor=actor,
        action=AuditAction.READ,
        entity_type=entity_type,
        entity_id="" if patient_id is None else patient_id,
        patient_id=patient_id,
        purpose=purpose,
        request=request,
        channel=_patient_channel(request),
        detail=detail,
    )


def patient_get(*, actor: User, patient_id: int, request: HttpRequest | None = None) -> Patient:
    """One patient record (any status), after the access check; audits one "read". Raises ``AccessDenied``,
    ``PatientNotFound``. Callers: staff, or the patient themselves (``ehr.access``)."""
    patient_access_check(actor=actor, patient_id=patient_id, action=PatientAction.READ, request=request)
    try:
        patient = Patient.objects.get(pk=patient_id)
    except Patient.DoesNotExist:
        raise PatientNotFound(patient_id) from None
    _audit_patient_read(actor=actor, patient_id=patient.pk, request=request)
    return patient


def patient_identifiers_get(
    *, actor: User, patient_id: int, purpose: str, request: HttpRequest | None = None
) -> PatientIdentifiers:
    """The decrypted national and insurance identifiers; audits a "read" with ``purpose``.
    Callers: staff except schedulers (``ehr.access``)."""
    patient_access_check(actor=actor, patient_id=patient_id, action=PatientAction.READ_IDENTIFIERS, request=request)
    patient = Patient.objects.filter(pk=patient_id).only("id", "national_id_encrypted", "insurance_member_id_encrypted")
    found = patient.first()
    if found is None:
        raise PatientNotFound(patient_id)
    _audit_patient_read(
        actor=actor,
        patient_id=found.pk,
        request=request,
        purpose=purpose,
        detail={"fields": ["national_id", "insurance_member_id"]},
    )
    return PatientIdentifiers(
        patient_id=found.pk,
        national_id=crypto.decrypt_identifier(found.national_id_encrypted) if found.national_id_encrypted else "",
        insurance_member_id=(
            crypto.decrypt_identifier(found.insurance_member_id_encrypted)
            if found.insurance_member_id_encrypted
            else ""
        ),
    )


def patient_search(
    *,
    actor: User,
    query: str = "",
    birth_date: date | None = None,
    mrn: str = "",
    identifier: str = "",
    limit: int = 25,
    request: HttpRequest | None = None,
) -> list[Patient]:
    """Patients matching every criterion given, best name match first (summary columns only).

    Name: each word must match the given or family name by substring or trigram similarity (GIN trigram indexes);
    MRN and identifier (keyed hash) are exact and also find records entered in error; name and birth-date searches
    return active records only; merged records are never found (their surviving record is). Audits one "read" of
    entity ``PatientSearch`` with the result count (never the query). Callers: staff (``ehr.access``).
    """
    patient_access_check(actor=actor, patient_id=None, action=PatientAction.SEARCH, request=request)
    qs = Patient.objects.only(*PATIENT_SUMMARY_FIELDS)
    mrn = mrn.strip().upper()
    identifier = identifier.strip()
    if mrn:
        qs = qs.filter(mrn=mrn)
    if identifier:
        hashed = crypto.identifier_hash(identifier)
        qs = qs.filter(Q(national_id_hash=hashed) | Q(insurance_member_id_hash=hashed))
    if not mrn and not identifier:
        qs = qs.filter(status=PatientStatus.ACTIVE)
    else:
        qs = qs.exclude(status=PatientStatus.MERGED)
    if birth_date is not None:
        qs = qs.filter(birth_date=birth_date)
    words = query.split()[:SEARCH_MAX_TOKENS]
    for word in words:
        qs = qs.filter(
            Q(family_name__icontains=word)
            | Q(given_name__icontains=word)
            | Q(family_name__trigram_similar=word)
            | Q(given_name__trigram_similar=word)
        )
    if words:
        full_name = Concat("given_name", Value(" "), "family_name")
        qs = qs.annotate(score=TrigramSimilarity(full_name, " ".join(words))).order_by(
            "-score", "family_name", "given_name", "id"
        )
    else:
        qs = qs.order_by("family_name", "given_name", "id")
    results = list(qs[: max(1, min(limit, 100))])
    _audit_patient_read(
        actor=actor, patient_id=None, request=request, entity_type="PatientSearch", detail={"results": len(results)}
    )
    return results


def patient_summaries(
    *, actor: User, patient_ids: list[int], purpose: str = "", request: HttpRequest | None = None
) -> list[Patient]:
    """Summary columns of the given patients (e.g. duplicate candidates to offer at registration), in the order
    given; audits one "read" of ``PatientSearch``. Callers: staff (``ehr.access``)."""
    patient_access_check(actor=actor, patient_id=None, action=PatientAction.SEARCH, request=request)
    rows = {p.pk: p for p in Patient.objects.filter(pk__in=patient_ids).only(*PATIENT_SUMMARY_FIELDS)}
    results = [rows[pk] for pk in patient_ids if pk in rows]
    _audit_patient_read(
        actor=actor,
        patient_id=None,
        request=request,
        entity_type="PatientSearch",
        purpose=purpose,
        detail={"results": len(results), "patient_ids": [p.pk for p in results]},
    )
    return results


def _patient_display(value: Any) -> Any:
    if isinstance(value, dict) and "masked" in value:
        return value["masked"]
    return value


def patient_snapshot_diff(before: dict[str, Any] | None, after: dict[str, Any]) -> list[FieldChange]:
    """Field-level differences between two version snapshots (identifiers compared by hash, shown masked)."""
    before = before or {}
    changes = []
    for field in after.keys() | before.keys():
        old, new = before.get(field), after.get(field)
        if old != new and not (before == {} and new in (None, "")):
            changes.append(FieldChange(field=field, before=_patient_display(old), after=_patient_display(new)))
    order = list(after.keys())
    changes.sort(key=lambda c: order.index(c.field) if c.field in order else len(order))
    return changes


def patient_history(*, actor: User, patient_id: int, request: HttpRequest | None = None) -> list[PatientHistoryEntry]:
    """Every version of a patient, oldest first, each with its field-level diff against the previous version;
    audits one "read". Callers: staff, or the patient themselves (``ehr.access``)."""
    patient_access_check(actor=actor, patient_id=patient_id, action=PatientAction.HISTORY, request=request)
    if not Patient.objects.filter(pk=patient_id).exists():
        raise PatientNotFound(patient_id)
    versions = PatientVersion.objects.filter(patient_id=patient_id).select_related("actor").order_by("version")
    entries = []
    previous: dict[str, Any] | None = None
    for row in versions:
        entries.append(
            PatientHistoryEntry(
                version=row.version,
                changed_fields=list(row.changed_fields),
                actor_id=row.actor_id,
                actor_display_name=row.actor.display_name,
                reason=row.reason,
                recorded_at=row.recorded_at,
                diff=patient_snapshot_diff(previous, row.data),
            )
        )
        previous = row.data
    _audit_patient_read(
        actor=actor, patient_id=patient_id, request=request, detail={"view": "history", "versions": len(entries)}
    )
    return entries


# --- Access relationships: care team, break-the-glass, the patient's access log -----------------------------------

# Imported here so this section stays self-contained at the end of the module (other sections are edited in parallel).
from dataclasses import dataclass  # noqa: E402

from ehr.errors import NoPatientRecord  # noqa: E402
from ehr.models import AuditOutcome, BreakGlassGrant, CareTeamMember  # noqa: E402


def care_team_list(*, actor: User, patient_id: int, request: HttpRequest | None = None) -> list[CareTeamMember]:
    """The patient's care-team memberships, current and past, newest first (member and location loaded); audits one
    "read" of ``CareTeam``. Raises ``AccessDenied``/``BreakGlassRequired``, ``PatientNotFound``.
    Callers: the patient's clinicians, schedulers, admins, the patient themselves (``ehr.access``)."""
    patient_access_check(actor=actor, patient_id=patient_id, action=PatientAction.READ_CARE_TEAM, request=request)
    if not Patient.objects.filter(pk=patient_id).exists():
        raise PatientNotFound(patient_id)
    rows = list(
        CareTeamMember.objects.filter(patient_id=patient_id)
        .select_related("member", "location", "added_by", "ended_by")
        .order_by("-start", "-id")
    )
    _audit_patient_read(
        actor=actor, patient_id=patient_id, request=request, entity_type="CareTeam", detail={"count": len(rows)}
    )
    return rows


def break_glass_list(
    *, actor: User, review_status: str | None = None, request: HttpRequest | None = None
) -> QuerySet[BreakGlassGrant]:
    """Break-the-glass grants for the admin review queue, newest first, optionally by review status (actor,
    patient and reviewer loaded). Reading the queue is audited (entity ``BreakGlassReview``, purpose
    ``audit_review``). Callers: admins (``ehr.access``)."""
    patient_access_check(actor=actor, patient_id=None, action=PatientAction.REVIEW_BREAK_GLASS, request=request)
    qs = BreakGlassGrant.objects.select_related("actor", "patient", "reviewed_by").order_by("-granted_at", "-id")
    if review_status:
        qs = qs.filter(review_status=review_status)
    audit_record(
        actor=actor,
        action=AuditAction.READ,
        entity_type="BreakGlassReview",
        purpose="audit_review",
        request=request,
        channel=_patient_channel(request),
        detail={"filters": ["review_status"] if review_status else []},
    )
    return qs


ROLE_LABELS: dict[str, str] = {
    Role.PATIENT: "Patient",
    Role.PRACTITIONER: "Doctor",
    Role.NURSE: "Nurse",
    Role.SCHEDULER: "Front desk",
    Role.BILLING: "Billing",
    Role.ADMIN: "Administrator",
}


@dataclass(frozen=True)
class AccessLogEntry:
    """One line of a patient's "who opened my record" log, in plain language."""

    occurred_at: datetime
    who: str
    role: str
    what: str
    purpose: str
    emergency: bool


_PURPOSE_LABELS = {
    "": "",
    "emergency": "Emergency",
    "break_glass": "Emergency access",
    "audit_review": "Audit review",
    "duplicate_check": "Checking for duplicate records",
    "treatment": "Your care",
    "payment": "Payment or insurance",
    "operations": "Running the clinic",
    "registration": "Checking your identity",
    "patient_request": "You asked for it",
}


def _access_log_what(row: AuditEvent) -> str:
    detail = row.detail if isinstance(row.detail, dict) else {}
    if row.outcome == AuditOutcome.DENIED:
        return "was refused access to your record"
    if row.action == AuditAction.BREAK_GLASS:
        return "opened your record in an emergency (break-the-glass)"
    if row.purpose == "break_glass":
        return "used emergency access (break-the-glass) to your record"
    entity = row.entity_type
    if entity == "AccessLog":
        return "viewed who opened your record"
    if entity == "PatientSearch":
        return "searched for patients and saw your name"
    if entity == "CareTeam":
        return "viewed your care team" if row.action == AuditAction.READ else "changed your care team"
    if entity == "BreakGlassGrant":
        return "reviewed an emergency access to your record"
    if row.action == AuditAction.CREATE:
        return "registered you as a patient" if entity == "Patient" else "added to your record"
    if row.action == AuditAction.ENTERED_IN_ERROR:
        return "marked a record as entered in error"
    if row.action == AuditAction.EXPORT:
        return "exported your record"
    if row.action == AuditAction.UPDATE:
        return "updated your details" if entity == "Patient" else "updated your record"
    if "national_id" in detail.get("fields", []):
        return "viewed your identity numbers"
    if detail.get("view") == "history":
        return "viewed the change history of your record"
    return "viewed your record"


def access_log_for_me(*, actor: User, request: HttpRequest | None = None) -> QuerySet[AuditEvent]:
    """Who opened the signed-in patient's record (``Patient.user`` = actor): audit rows naming their patient id,
    newest first, as the log stood before this read (the admin's audit-log searches excepted). Render each row
    with ``access_log_describe``. The read itself is audited (entity ``AccessLog``). Raises ``NoPatientRecord`` when
    the account is not linked to a record. Callers: the patient themselves (``ehr.access``).
    """
    patient_id = Patient.objects.filter(user_id=actor.pk).values_list("id", flat=True).first()
    patient_access_check(actor=actor, patient_id=patient_id, action=PatientAction.READ_ACCESS_LOG, request=request)
    if patient_id is None:  # pragma: no cover -- the SELF relationship needs a linked record, so the check denied
        raise NoPatientRecord(actor.pk)
    this_read = audit_record(
        actor=actor,
        action=AuditAction.READ,
        entity_type="AccessLog",
        entity_id=patient_id,
        patient_id=patient_id,
        request=request,
        channel=_patient_channel(request),
    )
    return (
        AuditEvent.objects.filter(patient_id=patient_id, id__lt=this_read.id)
        .exclude(entity_type="AuditLog")
        .select_related("actor")
        .order_by("-occurred_at", "-id")
    )


def access_log_describe(rows: list[AuditEvent], *, viewer: User) -> list[AccessLogEntry]:
    """Plain-language lines for audit rows of ``viewer``'s record (no queries beyond the loaded actors)."""
    entries = []
    for row in rows:
        if row.actor_id is None:
            who, role = "Consulta", "Consulta"
        elif row.actor_id == viewer.pk:
            who, role = "You", ROLE_LABELS[Role.PATIENT]
        else:
            assert row.actor is not None
            who, role = row.actor.display_name, ROLE_LABELS.get(row.actor_role, row.actor_role.title() or "Staff")
        entries.append(
            AccessLogEntry(
                occurred_at=row.occurred_at,
                who=who,
                role=role,
                what=_access_log_what(row),
                purpose=_PURPOSE_LABELS.get(row.purpose, row.purpose.replace("_", " ").capitalize()),
                emergency=row.action == AuditAction.BREAK_GLASS or row.purpose == "break_glass",
            )
        )
    return entries


# --- Clinical record --------------------------------------------------------------------------------------------


def _audit_clinical_read(
    *, actor: User, patient_id: int, entity_type: str, entity_id: object, request: HttpRequest | None, **detail: Any
) -> None:
    audit_record(
        actor=actor,
        action=AuditAction.READ,
        entity_type=entity_type,
        entity_id=entity_id,
        patient_id=patient_id,
        request=request,
        channel=_patient_channel(request),
        detail=detail,
    )


def _readable_patient(*, actor: User, patient_id: int, request: HttpRequest | None) -> None:
    authorise_patient(actor=actor, patient_id=patient_id, action=PatientAction.READ_CLINICAL, request=request)


_LIVE_VERIFICATION = ~Q(verification_status__in=[VerificationStatus.ENTERED_IN_ERROR, VerificationStatus.REFUTED])
_LIVE_OBSERVATION = [ObservationStatus.FINAL, ObservationStatus.AMENDED]


def chart_summary_get(*, actor: User, patient_id: int, request: HttpRequest | None = None) -> ChartSummary:
    """The chart's first screen: active problems, current allergies (not refuted or entered in error), active
    medications, and the latest final/amended value of each observation code. A fixed number of queries whatever
    the size of the record (one per list; the latest values with ``DISTINCT ON (code)`` over the
    (patient, code, effective_at) index); one ``read`` audit row. Callers: clinicians; the patient themselves."""
    _readable_patient(actor=actor, patient_id=patient_id, request=request)
    problems = Condition.objects.filter(patient_id=patient_id, clinical_status=ConditionClinicalStatus.ACTIVE).filter(
        _LIVE_VERIFICATION
    )
    allergies = AllergyIntolerance.objects.filter(patient_id=patient_id).filter(_LIVE_VERIFICATION)
    medications = MedicationStatement.objects.filter(
        patient_id=patient_id, status=MedicationStatus.ACTIVE
    ).select_related("prescriber")
    latest = (
        Observation.objects.filter(patient_id=patient_id, status__in=_LIVE_OBSERVATION)
        .order_by("code", "-effective_at", "-id")
        .distinct("code")
    )
    summary = ChartSummary(
        patient_id=patient_id,
        problems=[to_dto(ConditionRef, c) for c in problems.order_by("-updated_at", "id")],
        allergies=[to_dto(AllergyRef, a) for a in allergies.exclude(clinical_status="resolved").order_by("id")],
        medications=[to_dto(MedicationRef, m) for m in medications.order_by("medication_text", "id")],
        latest_observations=[to_dto(ObservationRef, o) for o in latest],
    )
    _audit_clinical_read(
        actor=actor,
        patient_id=patient_id,
        entity_type="ChartSummary",
        entity_id=patient_id,
        request=request,
        counts={
            "problems": len(summary.problems),
            "allergies": len(summary.allergies),
            "medications": len(summary.medications),
            "observations": len(summary.latest_observations),
        },
    )
    return summary


def encounter_list(*, actor: User, patient_id: int, request: HttpRequest | None = None) -> list[EncounterRef]:
    """The patient's encounters, newest first (two queries + one ``read`` audit row). Callers: clinicians; the
    patient themselves."""
    _readable_patient(actor=actor, patient_id=patient_id, request=request)
    rows = (
        Encounter.objects.filter(patient_id=patient_id)
        .select_related("practitioner", "location")
        .order_by(F("period_start").desc(nulls_last=True), "-id")
    )
    result = [to_dto(EncounterRef, e) for e in rows]
    _audit_clinical_read(
        actor=actor, patient_id=patient_id, entity_type="Encounter", entity_id="", request=request, count=len(result)
    )
    return result


def _note_dto(note: ClinicalNote) -> NoteRef:
    return to_dto(NoteRef, note, addenda=[to_dto(AddendumRef, a) for a in note.addenda.all()])


def _notes() -> QuerySet[ClinicalNote]:
    addenda = NoteAddendum.objects.select_related("author").order_by("created_at", "id")
    return ClinicalNote.objects.select_related("author").prefetch_related(Prefetch("addenda", queryset=addenda))


def clinical_note_list(*, actor: User, encounter_id: int, request: HttpRequest | None = None) -> list[NoteRef]:
    """The notes of one encounter with their addenda, oldest first; one ``read`` audit row."""
    patient_id = authorise_record(
        actor=actor,
        model=Encounter,
        kind="Encounter",
        record_id=encounter_id,
        action=PatientAction.READ_CLINICAL,
        request=request,
    )
    result = [_note_dto(n) for n in _notes().filter(encounter_id=encounter_id).order_by("created_at", "id")]
    _audit_clinical_read(
        actor=actor, patient_id=patient_id, entity_type="ClinicalNote", entity_id="", request=request,
        encounter_id=encounter_id, count=len(result),
    )  # fmt: skip
    return result


def clinical_note_get(*, actor: User, note_id: int, request: HttpRequest | None = None) -> NoteRef:
    """One note with its addenda; one ``read`` audit row. Callers: clinicians; the patient themselves."""
    patient_id = authorise_record(
        actor=actor, model=ClinicalNote, kind="ClinicalNote", record_id=note_id, action=PatientAction.READ_CLINICAL,
        request=request,
    )  # fmt: skip
    note = _note_dto(_notes().get(pk=note_id))
    _audit_clinical_read(
        actor=actor, patient_id=patient_id, entity_type="ClinicalNote", entity_id=note_id, request=request
    )
    return note


def clinical_record_list(
    *,
    actor: User,
    kind: str,
    patient_id: int,
    include_entered_in_error: bool = False,
    code: str = "",
    request: HttpRequest | None = None,
) -> list[Any]:
    """Every record of ``kind`` ("Condition", "AllergyIntolerance", "MedicationStatement", "Observation") of a
    patient as DTOs, newest first; entered-in-error rows only when asked; observations filterable by LOINC ``code``.
    One ``read`` audit row. Callers: clinicians; the patient themselves."""
    spec = RECORD_KINDS[kind]
    _readable_patient(actor=actor, patient_id=patient_id, request=request)
    rows = spec.model._default_manager.filter(patient_id=patient_id).select_related(*spec.related)
    if not include_entered_in_error:
        rows = rows.exclude(**{spec.eie_field: "entered-in-error"})
    if kind == "Observation":
        if code:
            rows = rows.filter(code=code)
        rows = rows.order_by("-effective_at", "-id")
    else:
        rows = rows.order_by("-updated_at", "-id")
    result = [spec.to_dto(row) for row in rows[:1000]]
    _audit_clinical_read(
        actor=actor, patient_id=patient_id, entity_type=kind, entity_id="", request=request, count=len(result)
    )
    return result


_HISTORIES: dict[str, tuple[type[Model], type[ClinicalVersion]]] = {
    "Encounter": (Encounter, EncounterVersion),
    "ClinicalNote": (ClinicalNote, ClinicalNoteVersion),
    **{name: (spec.model, spec.history) for name, spec in RECORD_KINDS.items()},
}


def clinical_record_history(
    *, actor: User, kind: str, record_id: int, request: HttpRequest | None = None
) -> list[RecordHistoryEntry]:
    """Every version of one clinical record (any kind above, or "Encounter", "ClinicalNote"), oldest first, with
    its snapshot and field-level diff; one ``read`` audit row. Callers: clinicians; the patient themselves."""
    model, history = _HISTORIES[kind]
    patient_id = authorise_record(
        actor=actor, model=model, kind=kind, record_id=record_id, action=PatientAction.READ_CLINICAL, request=request
    )
    entries = history_entries(history, record_id)
    _audit_clinical_read(
        actor=actor, patient_id=patient_id, entity_type=kind, entity_id=record_id, request=request,
        view="history", versions=len(entries),
    )  # fmt: skip
    return entries


def patient_seen_at_actor_clinic(actor: User, patient_id: int) -> bool:
    """The ``SAME_CLINIC`` relationship of ``ehr.access``: ``actor`` works at a location (``User.locations``) where
    the patient has an encounter that is planned, in progress or finished. A booked visit (planned) counts, so the
    booked doctor can prepare; a cancelled or entered-in-error one never happened and grants nothing.
    One indexed query (encounter (location, patient))."""
    return (
        Encounter.objects.filter(patient_id=patient_id, location__staff=actor)
        .exclude(status__in=[EncounterStatus.CANCELLED, EncounterStatus.ENTERED_IN_ERROR])
        .exists()
    )


# --- Documents --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DocumentContent:
    """An open, verified file of a document (the caller streams and closes it) with the document's metadata."""

    document: DocumentRef
    file: BinaryIO


_DOCUMENT_PURPOSES = frozenset({"treatment", "payment", "operations", "registration", "patient_request"})


def document_list(
    *, actor: User, patient_id: int, include_entered_in_error: bool = False, request: HttpRequest | None = None
) -> list[DocumentRef]:
    """A patient's documents (metadata only, never the bytes or the storage key), newest first; entered-in-error
    ones only when asked. Three queries + one ``read`` audit row. Callers: clinicians; the patient themselves."""
    _readable_patient(actor=actor, patient_id=patient_id, request=request)
    rows = DocumentReference.objects.filter(patient_id=patient_id).select_related("uploaded_by")
    if not include_entered_in_error:
        rows = rows.exclude(status=DocumentStatus.ENTERED_IN_ERROR)
    result = [document_dto(row) for row in rows.order_by("-created_at", "-id")[:1000]]
    _audit_clinical_read(
        actor=actor, patient_id=patient_id, entity_type="DocumentReference", entity_id="", request=request,
        count=len(result),
    )  # fmt: skip
    return result


def document_content_open(
    *, actor: User, document_id: int, purpose: str = "", request: HttpRequest | None = None
) -> DocumentContent:
    """The bytes of one document, opened for streaming after the access check (``READ_CLINICAL``; an
    ``id-document`` also needs ``READ_IDENTIFIERS``) and after verifying them against the stored SHA-256; one
    ``read`` audit row with ``purpose`` (default ``treatment``, or ``patient_request`` for the patient themselves).
    Raises ``AccessDenied``, ``ClinicalRecordNotFound``, ``DocumentContentUnavailable`` (file missing or altered).
    Callers: clinicians; the patient themselves (not for identity documents, as for identifiers)."""
    patient_id = authorise_record(
        actor=actor, model=DocumentReference, kind="DocumentReference", record_id=document_id,
        action=PatientAction.READ_CLINICAL, request=request,
    )  # fmt: skip
    row = DocumentReference.objects.select_related("uploaded_by", "patient").get(pk=document_id)
    if row.type == DocumentType.ID_DOCUMENT:
        patient_access_check(actor=actor, patient_id=patient_id, action=PatientAction.READ_IDENTIFIERS, request=request)
    if purpose not in _DOCUMENT_PURPOSES:
        purpose = "patient_request" if row.patient.user_id == actor.pk else "treatment"
    try:
        handle = stored_path(row.storage_key).open("rb")
    except FileNotFoundError:
        raise DocumentContentUnavailable(f"document {document_id}: stored file missing") from None
    digest = hashlib.sha256()
    for chunk in iter(lambda: handle.read(1024 * 1024), b""):
        digest.update(chunk)
    if digest.hexdigest() != row.sha256:
        handle.close()
        raise DocumentContentUnavailable(f"document {document_id}: stored file does not match its SHA-256")
    handle.seek(0)
    try:
        audit_record(
            actor=actor, action=AuditAction.READ, entity_type="DocumentReference", entity_id=document_id,
            patient_id=patient_id, purpose=purpose, request=request, channel=_patient_channel(request),
            detail={"view": "content", "size_bytes": row.size_bytes},
        )  # fmt: skip
    except BaseException:
        handle.close()
        raise
    return DocumentContent(document=document_dto(row), file=handle)


_HISTORIES["DocumentReference"] = (DocumentReference, DocumentReferenceVersion)


# --- Patient references for other apps (scheduling, telehealth, notifications) ----------------------------------

from ehr.dto import PatientRef  # noqa: E402
from ehr.errors import InvalidPatientData  # noqa: E402

PATIENT_REF_FIELDS = (
    "id",
    "mrn",
    "given_name",
    "family_name",
    "birth_date",
    "preferred_language",
    "user_id",
    "status",
    "merged_into_id",
)
_AUDIT_PURPOSE_MAX = 40  # AuditEvent.purpose


def _patient_ref(row: Patient) -> PatientRef:
    return PatientRef(
        id=row.pk,
        mrn=row.mrn,
        display_name=row.display_name,
        birth_date=row.birth_date,
        preferred_language=row.preferred_language,
        user_id=row.user_id,
        status=row.status,
        merged_into_id=row.merged_into_id,
    )


def patient_refs_get(
    *, actor: User, patient_ids: list[int], purpose: str, request: HttpRequest | None = None
) -> dict[int, PatientRef]:
    """``PatientRef`` of each id (any status), keyed by id: for lists of appointments, queues and reminders.

    Every id must be one the actor may ``READ`` (``ehr.access``): otherwise ``AccessDenied`` (the denial audited)
    and nothing is returned — a patient asking for anyone but themselves is refused whether the id exists or not.
    A readable id that does not exist raises ``PatientNotFound``. One query for the rows (access checks for roles
    that read any record need none; clinicians' relationship tests cost one or two indexed queries per id) and one
    ``read`` audit row of ``PatientSearch`` with ``purpose`` (required, at most 40 characters, e.g.
    ``"appointment_list"``) and the ids. An empty list returns ``{}`` and audits nothing. Call it outside your own
    ``transaction.atomic()`` so a denial's audit row survives. Callers: any app, for the signed-in ``actor``.
    """
    if not isinstance(purpose, str) or not purpose.strip() or len(purpose.strip()) > _AUDIT_PURPOSE_MAX:
        raise InvalidPatientData({"purpose": [f"Say why the records are read (1 to {_AUDIT_PURPOSE_MAX} characters)."]})
    if any(isinstance(pk, bool) or not isinstance(pk, int) for pk in patient_ids):
        raise InvalidPatientData({"patient_ids": ["Must be a list of patient ids."]})
    wanted = list(dict.fromkeys(patient_ids))
    if not wanted:
        return {}
    for patient_id in wanted:
        patient_access_check(actor=actor, patient_id=patient_id, action=PatientAction.READ, request=request)
    refs = {row.pk: _patient_ref(row) for row in Patient.objects.filter(pk__in=wanted).only(*PATIENT_REF_FIELDS)}
    missing = [pk for pk in wanted if pk not in refs]
    if missing:
        raise PatientNotFound(missing[0])
    _audit_patient_read(
        actor=actor,
        patient_id=None,
        request=request,
        entity_type="PatientSearch",
        purpose=purpose.strip(),
        detail={"results": len(refs), "patient_ids": wanted},
    )
    return {pk: refs[pk] for pk in wanted}


def patient_ref_for_user(*, user_id: int) -> PatientRef | None:
    """The patient record whose portal login is ``user_id`` (``Patient.user``), or None: how another app finds the
    signed-in patient's own record. Not audited (it reveals only the caller's own record to the caller, like
    ``auth/me``); pass only the id of the signed-in user. One query."""
    row = Patient.objects.filter(user_id=user_id).only(*PATIENT_REF_FIELDS).first()
    return None if row is None else _patient_ref(row)
