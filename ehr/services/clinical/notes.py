"""SOAP notes: create a draft, autosave it (optimistic concurrency that returns the current content on conflict),
sign it, and correct a signed note with addenda. A signed note's content never changes (also enforced by a
PostgreSQL trigger)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from ehr.access import PatientAction
from ehr.dto import AddendumRef, NoteRef, to_dto
from ehr.errors import ClinicalRecordNotFound, DraftConflict, InvalidClinicalData, NoteSigned, VersionConflict
from ehr.models import (
    AuditAction,
    ClinicalNote,
    ClinicalNoteVersion,
    Encounter,
    EncounterStatus,
    NoteAddendum,
    NoteStatus,
    User,
)
from ehr.models.clinical import NOTE_SECTIONS
from ehr.services.clinical._common import (
    Cleaner,
    audit,
    authorise_record,
    refuse_merged_patient,
    reject_unknown,
    transition,
)
from ehr.versioning import record_first_version, save_new_version, snapshot

KIND = "ClinicalNote"
SECTION_MAX = 20_000
ADDENDUM_MAX = 10_000
NOTE_FIELDS: tuple[str, ...] = (*NOTE_SECTIONS, "status", "signed_at", "signed_by_id")

N = NoteStatus
# The note state machine. ``amended`` means "signed, with at least one addendum". Nothing else assigns status.
NOTE_TRANSITIONS: dict[str, frozenset[str]] = {
    N.DRAFT: frozenset({N.SIGNED}),
    N.SIGNED: frozenset({N.AMENDED}),
    N.AMENDED: frozenset(),
}


def note_dto(note: ClinicalNote, addenda: list[NoteAddendum] | None = None) -> NoteRef:
    return to_dto(
        NoteRef,
        note,
        addenda=[to_dto(AddendumRef, a) for a in (addenda or [])],
    )


def _clean_sections(sections: Mapping[str, Any] | None) -> dict[str, str]:
    if sections is None:
        return {}
    if not isinstance(sections, Mapping):
        raise InvalidClinicalData({"sections": ["Send the sections as an object."]})
    reject_unknown(sections, frozenset(NOTE_SECTIONS))
    clean = Cleaner()
    # Section text is kept as typed (no stripping): it is the clinician's words, and autosave must round-trip it.
    cleaned: dict[str, str] = {}
    for name, raw in sections.items():
        if not isinstance(raw, str):
            clean.fail(name, "Must be text.")
        elif len(raw) > SECTION_MAX:
            clean.fail(name, f"At most {SECTION_MAX} characters.")
        else:
            cleaned[name] = raw
    clean.done()
    return cleaned


def _sections(note: ClinicalNote) -> dict[str, str]:
    return {name: getattr(note, name) for name in NOTE_SECTIONS}


def clinical_note_add(
    *,
    actor: User,
    encounter_id: int,
    sections: Mapping[str, str] | None = None,
    request: HttpRequest | None = None,
) -> NoteRef:
    """Create a draft SOAP note for an encounter, authored by ``actor``; version 1 + history + ``create`` audit row.
    The encounter must not be cancelled or entered in error. Callers: clinicians (``WRITE_CLINICAL``). A merge of the
    patient that commits between the access check and the insert raises ``PatientMerged``; nothing is written."""
    patient_id = authorise_record(
        actor=actor,
        model=Encounter,
        kind="Encounter",
        record_id=encounter_id,
        action=PatientAction.WRITE_CLINICAL,
        request=request,
    )
    cleaned = _clean_sections(sections)
    with refuse_merged_patient(patient_id), transaction.atomic():
        status = Encounter.objects.filter(pk=encounter_id).values_list("status", flat=True).get()
        if status in (EncounterStatus.CANCELLED, EncounterStatus.ENTERED_IN_ERROR):
            raise InvalidClinicalData({"encounter_id": [f"The encounter is {status}; notes cannot be added."]})
        now = timezone.now()
        note = ClinicalNote(
            encounter_id=encounter_id,
            patient_id=patient_id,
            author=actor,
            status=N.DRAFT,
            version=1,
            created_at=now,
            updated_at=now,
            **cleaned,
        )
        note.save(force_insert=True)
        record_first_version(ClinicalNoteVersion, note, fields=NOTE_FIELDS, actor=actor, reason="draft created")
        audit(
            actor=actor,
            action=AuditAction.CREATE,
            entity_type=KIND,
            entity_id=note.pk,
            patient_id=patient_id,
            request=request,
            detail={"encounter_id": encounter_id, "fields": sorted(k for k, v in cleaned.items() if v), "version": 1},
        )
    return note_dto(note)


def _locked_note(note_id: int) -> ClinicalNote:
    note = ClinicalNote.objects.select_for_update(of=("self",)).select_related("author").filter(pk=note_id).first()
    if note is None:  # pragma: no cover -- notes are never deleted
        raise ClinicalRecordNotFound(KIND, note_id)
    return note


def clinical_note_save_draft(
    *,
    actor: User,
    note_id: int,
    expected_version: int,
    sections: Mapping[str, str],
    request: HttpRequest | None = None,
) -> NoteRef:
    """Autosave: replace the given sections of the author's draft, as a new version.

    Stale ``expected_version`` raises ``DraftConflict`` carrying the current version and sections, so the editor can
    merge what its user typed and save again (nothing typed is lost; nothing was written). A signed note raises
    ``NoteSigned``; someone else's draft ``NotNoteAuthor``. A save that changes nothing writes no version.
    Callers: the note's author (``WRITE_CLINICAL``).
    """
    patient_id = authorise_record(
        actor=actor,
        model=ClinicalNote,
        kind=KIND,
        record_id=note_id,
        action=PatientAction.WRITE_CLINICAL,
        request=request,
        author_only=True,
    )
    cleaned = _clean_sections(sections)
    with transaction.atomic():
        note = _locked_note(note_id)
        if note.status != N.DRAFT:
            raise NoteSigned(f"note {note_id} is {note.status}")
        if note.version != expected_version:
            raise DraftConflict(note.version, _sections(note))
        before = snapshot(note, NOTE_FIELDS)
        for name, value in cleaned.items():
            setattr(note, name, value)
        changed = save_new_version(
            ClinicalNoteVersion, note, fields=NOTE_FIELDS, before=before, actor=actor, reason="draft saved"
        )
        audit(
            actor=actor,
            action=AuditAction.UPDATE,
            entity_type=KIND,
            entity_id=note.pk,
            patient_id=patient_id,
            request=request,
            detail={"fields": changed, "version": note.version},
        )
    return note_dto(note)


def clinical_note_sign(
    *, actor: User, note_id: int, expected_version: int, request: HttpRequest | None = None
) -> NoteRef:
    """Sign the draft at ``expected_version`` (so nobody signs content they have not seen): status ``signed``,
    ``signed_at``/``signed_by`` set, a new version; from then on the content is immutable.

    Only the author, and only a practitioner (``SIGN_NOTE``). An empty note cannot be signed. Raises
    ``VersionConflict``, ``InvalidTransition`` (already signed), ``NotNoteAuthor``, ``InvalidClinicalData``.
    """
    patient_id = authorise_record(
        actor=actor,
        model=ClinicalNote,
        kind=KIND,
        record_id=note_id,
        action=PatientAction.SIGN_NOTE,
        request=request,
        author_only=True,
    )
    with transaction.atomic():
        note = _locked_note(note_id)
        if note.version != expected_version:
            raise VersionConflict(note.version)
        before = snapshot(note, NOTE_FIELDS)
        note.status = transition(KIND, NOTE_TRANSITIONS, note.status, N.SIGNED)
        if not any(value.strip() for value in _sections(note).values()):
            raise InvalidClinicalData({"sections": ["An empty note cannot be signed."]})
        note.signed_at = timezone.now()
        note.signed_by = actor
        changed = save_new_version(
            ClinicalNoteVersion, note, fields=NOTE_FIELDS, before=before, actor=actor, reason="signed"
        )
        audit(
            actor=actor,
            action=AuditAction.UPDATE,
            entity_type=KIND,
            entity_id=note.pk,
            patient_id=patient_id,
            request=request,
            detail={"fields": changed, "version": note.version, "status": note.status},
        )
    return note_dto(note)


def clinical_note_addendum(*, actor: User, note_id: int, text: str, request: HttpRequest | None = None) -> NoteRef:
    """Append an addendum (a correction or addition) to a signed note; the note's content stays as signed. The
    first addendum moves the note to ``amended`` (a new version). Drafts are edited, not amended
    (``InvalidTransition``). Callers: clinicians (``WRITE_CLINICAL``)."""
    patient_id = authorise_record(
        actor=actor,
        model=ClinicalNote,
        kind=KIND,
        record_id=note_id,
        action=PatientAction.WRITE_CLINICAL,
        request=request,
    )
    clean = Cleaner()
    text = clean.text("text", text, max_length=ADDENDUM_MAX, required=True)
    clean.done()
    with transaction.atomic():
        note = _locked_note(note_id)
        if note.status == N.DRAFT:
            transition(KIND, NOTE_TRANSITIONS, note.status, N.AMENDED)  # raises: a draft has no addenda
        addendum = NoteAddendum.objects.create(note=note, author=actor, text=text, created_at=timezone.now())
        if note.status == N.SIGNED:
            before = snapshot(note, NOTE_FIELDS)
            note.status = transition(KIND, NOTE_TRANSITIONS, note.status, N.AMENDED)
            save_new_version(
                ClinicalNoteVersion, note, fields=NOTE_FIELDS, before=before, actor=actor, reason="addendum"
            )
        audit(
            actor=actor,
            action=AuditAction.CREATE,
            entity_type="NoteAddendum",
            entity_id=addendum.pk,
            patient_id=patient_id,
            request=request,
            detail={"note_id": note.pk, "note_version": note.version},
        )
        addenda = list(note.addenda.select_related("author").order_by("created_at", "id"))
    return note_dto(note, addenda)
