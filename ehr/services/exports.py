"""Patient-record export: one JSON document with a patient's whole chart, for continuity of care or for the patient.

``patient_record_collect`` (the read: a fixed number of queries whatever the size of the record) assembles it;
``patient_record_export`` (what the API calls) checks access, collects in one snapshot and records the export as
one ``export`` audit row. The document holds demographics (identifiers in full only for those who may read them,
else masked), problems, allergies, medications, observations, encounters with their signed notes and addenda, and
the metadata of documents (never their bytes or storage keys). Rows entered in error are left out; draft notes are
not part of the record until signed (docs/exports.md).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import F, Prefetch, Q
from django.http import HttpRequest
from django.utils import timezone

from ehr import crypto
from ehr.access import PatientAction, patient_access_allowed
from ehr.dto import AddendumRef, AllergyRef, ConditionRef, EncounterRef, MedicationRef, NoteRef, ObservationRef, to_dto
from ehr.models import (
    AllergyIntolerance,
    AuditAction,
    ClinicalNote,
    Condition,
    DocumentReference,
    DocumentStatus,
    Encounter,
    EncounterStatus,
    MedicationStatement,
    MedicationStatus,
    NoteAddendum,
    NoteStatus,
    Observation,
    ObservationStatus,
    Patient,
    User,
    VerificationStatus,
)
from ehr.models.patient import IDENTIFIER_FIELDS
from ehr.services.audit import audit_record
from ehr.services.clinical._common import authorise_patient
from ehr.services.documents import DocumentRef, document_dto

EXPORT_FORMAT = "consulta.patient-record"
EXPORT_VERSION = 1
DEFAULT_PURPOSE = "export"
# Why a record is exported (the audit row's purpose); a closed list, so audit review can group by it.
EXPORT_PURPOSES = ("export", "continuity-of-care", "patient_request", "treatment", "legal")


@dataclass(frozen=True)
class ExportedPatient:
    """Demographics and identifiers. ``identifiers_masked``: the identifiers show only their last characters
    (``"•••• 1234"``), because the exporting user may not read them in full; empty string when not recorded."""

    id: int
    mrn: str
    status: str
    given_name: str
    family_name: str
    birth_date: datetime.date
    sex: str
    gender_identity: str
    phone: str
    email: str
    address_line: str
    city: str
    postal_code: str
    country: str
    preferred_language: str
    emergency_contact_name: str
    emergency_contact_phone: str
    national_id: str
    insurance_member_id: str
    identifiers_masked: bool


@dataclass(frozen=True)
class ExportedEncounter(EncounterRef):
    """An encounter with its signed notes (oldest first, each with its addenda)."""

    notes: list[NoteRef] = field(default_factory=list)


@dataclass(frozen=True)
class PatientRecordContent:
    patient: ExportedPatient
    problems: list[ConditionRef]
    allergies: list[AllergyRef]
    medications: list[MedicationRef]
    observations: list[ObservationRef]
    encounters: list[ExportedEncounter]
    documents: list[DocumentRef]

    def counts(self) -> dict[str, int]:
        return {
            "problems": len(self.problems),
            "allergies": len(self.allergies),
            "medications": len(self.medications),
            "observations": len(self.observations),
            "encounters": len(self.encounters),
            "notes": sum(len(e.notes) for e in self.encounters),
            "documents": len(self.documents),
        }


@dataclass(frozen=True)
class PatientRecordExport:
    """The export document: what was exported, when, by whom and why, and the record itself."""

    format: str
    version: int
    exported_at: datetime.datetime
    exported_by_id: int
    exported_by_display_name: str
    purpose: str
    record: PatientRecordContent


_LIVE_VERIFICATION = ~Q(verification_status=VerificationStatus.ENTERED_IN_ERROR)


def _identifier(patient: Patient, name: str, *, full: bool) -> str:
    token = getattr(patient, f"{name}_encrypted")
    if not token:
        return ""
    plaintext = crypto.decrypt_identifier(token)
    return plaintext if full else crypto.mask_identifier(plaintext)


def patient_record_collect(*, patient_id: int, full_identifiers: bool) -> PatientRecordContent:
    """Read a patient's whole record for an export (raises ``Patient.DoesNotExist``). Ten queries whatever the size
    of the record. No access check and no audit row: callers (``patient_record_export``) do both."""
    patient = Patient.objects.get(pk=patient_id)
    mine = Q(patient_id=patient_id)
    problems = Condition.objects.filter(mine, _LIVE_VERIFICATION).order_by("-updated_at", "-id")
    allergies = AllergyIntolerance.objects.filter(mine, _LIVE_VERIFICATION).order_by("id")
    medications = (
        MedicationStatement.objects.filter(mine)
        .exclude(status=MedicationStatus.ENTERED_IN_ERROR)
        .select_related("prescriber")
        .order_by("-updated_at", "-id")
    )
    observations = (
        Observation.objects.filter(mine)
        .exclude(status=ObservationStatus.ENTERED_IN_ERROR)
        .order_by("-effective_at", "-id")
    )
    addenda = NoteAddendum.objects.select_related("author").order_by("created_at", "id")
    notes = (
        ClinicalNote.objects.filter(status__in=[NoteStatus.SIGNED, NoteStatus.AMENDED])
        .select_related("author")
        .prefetch_related(Prefetch("addenda", queryset=addenda))
        .order_by("created_at", "id")
    )
    encounters = (
        Encounter.objects.filter(mine)
        .exclude(status=EncounterStatus.ENTERED_IN_ERROR)
        .select_related("practitioner", "location")
        .prefetch_related(Prefetch("notes", queryset=notes, to_attr="signed_notes"))
        .order_by(F("period_start").desc(nulls_last=True), "-id")
    )
    documents = (
        DocumentReference.objects.filter(mine)
        .exclude(status=DocumentStatus.ENTERED_IN_ERROR)
        .select_related("uploaded_by")
        .order_by("-created_at", "-id")
    )
    identifiers = {name: _identifier(patient, name, full=full_identifiers) for name in IDENTIFIER_FIELDS}
    return PatientRecordContent(
        patient=to_dto(ExportedPatient, patient, **identifiers, identifiers_masked=not full_identifiers),
        problems=[to_dto(ConditionRef, row) for row in problems],
        allergies=[to_dto(AllergyRef, row) for row in allergies],
        medications=[to_dto(MedicationRef, row) for row in medications],
        observations=[to_dto(ObservationRef, row) for row in observations],
        encounters=[to_dto(ExportedEncounter, row, notes=[_note(n) for n in row.signed_notes]) for row in encounters],
        documents=[document_dto(row) for row in documents],
    )


def _note(note: ClinicalNote) -> NoteRef:
    return to_dto(NoteRef, note, addenda=[to_dto(AddendumRef, a) for a in note.addenda.all()])


def patient_record_export(
    *, actor: User, patient_id: int, purpose: str = DEFAULT_PURPOSE, request: HttpRequest | None = None
) -> PatientRecordExport:
    """Export a patient's record as one document.

    Access: ``READ_CLINICAL`` (the patient's clinicians, an administrator under a break-the-glass grant, the patient
    themselves); a denial is audited by ``ehr.access`` and raises ``AccessDenied``/``BreakGlassRequired``; a missing
    patient raises ``PatientNotFound``. Identifiers are in full only for those who may ``READ_IDENTIFIERS``.
    ``purpose`` must be one of ``EXPORT_PURPOSES`` (``ValueError`` otherwise; the API validates it first).

    Everything is read in one transaction (``REPEATABLE READ`` when this opens it, so the document is one
    consistent snapshot) together with one ``export`` audit row (entity ``PatientRecord``, channel ``export``, the
    ``purpose``; detail: counts, whether
    identifiers were masked, format version; never values): if the audit write fails, nothing is returned.
    """
    if purpose not in EXPORT_PURPOSES:
        raise ValueError(f"unknown export purpose {purpose!r}")
    authorise_patient(actor=actor, patient_id=patient_id, action=PatientAction.READ_CLINICAL, request=request)
    full_identifiers = patient_access_allowed(actor=actor, patient_id=patient_id, action=PatientAction.READ_IDENTIFIERS)
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        record = patient_record_collect(patient_id=patient_id, full_identifiers=full_identifiers)
        audit_record(
            actor=actor,
            action=AuditAction.EXPORT,
            entity_type="PatientRecord",
            entity_id=patient_id,
            patient_id=patient_id,
            purpose=purpose,
            request=request,
            channel="export",
            detail={
                "counts": record.counts(),
                "identifiers": "masked" if record.patient.identifiers_masked else "full",
                "format": f"{EXPORT_FORMAT}/{EXPORT_VERSION}",
            },
        )
    return PatientRecordExport(
        format=EXPORT_FORMAT,
        version=EXPORT_VERSION,
        exported_at=timezone.now(),
        exported_by_id=actor.pk,
        exported_by_display_name=actor.display_name,
        purpose=purpose,
        record=record,
    )
