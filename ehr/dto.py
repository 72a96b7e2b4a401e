"""Frozen values the ehr app hands to its API and to other apps (never model instances across apps)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any, TypeVar


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: Any  # JSON value; identifiers appear masked ("•••• 1234")
    after: Any


@dataclass(frozen=True)
class PatientHistoryEntry:
    """One version of a Patient with the fields that changed relative to the previous version."""

    version: int
    changed_fields: list[str]
    actor_id: int
    actor_display_name: str
    reason: str
    recorded_at: datetime.datetime
    diff: list[FieldChange]


@dataclass(frozen=True)
class PatientIdentifiers:
    """Plaintext identifiers: only ``patient_identifiers_get`` produces this, after an audited access check."""

    patient_id: int
    national_id: str
    insurance_member_id: str


@dataclass(frozen=True)
class PatientRef:
    """What other apps (scheduling, telehealth, notifications) get of a patient: enough to name them, greet them in
    their language and reach their portal account. ``status``: ``active``, ``entered-in-error`` or ``merged`` (then
    ``merged_into_id`` names the surviving record). Produced only by ``patient_refs_get`` (access-checked, audited)
    and ``patient_ref_for_user`` (the signed-in patient's own record)."""

    id: int
    mrn: str
    display_name: str
    birth_date: datetime.date
    preferred_language: str
    user_id: int | None
    status: str
    merged_into_id: int | None


# --- Clinical record --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordHistoryEntry:
    """One version of a clinical record (encounter, note, condition, allergy, medication, observation)."""

    version: int
    changed_fields: list[str]
    actor_id: int
    actor_display_name: str
    reason: str
    recorded_at: datetime.datetime
    data: dict[str, Any]
    diff: list[FieldChange]


@dataclass(frozen=True)
class EncounterRef:
    """An encounter. ``planned_start``/``planned_end``: the booked period of a visit planned by scheduling (None for
    encounters opened on the spot); ``period_start``/``period_end``: what actually happened. ``appointment_id``: the
    scheduling appointment the visit was booked as (FHIR Encounter.appointment), else None."""

    id: int
    patient_id: int
    practitioner_id: int
    practitioner_display_name: str
    location_id: int
    location_name: str
    modality: str
    status: str
    period_start: datetime.datetime | None
    period_end: datetime.datetime | None
    reason: str
    duration_seconds: int | None
    version: int
    planned_start: datetime.datetime | None
    planned_end: datetime.datetime | None
    appointment_id: int | None


@dataclass(frozen=True)
class AddendumRef:
    id: int
    author_id: int
    author_display_name: str
    text: str
    created_at: datetime.datetime


@dataclass(frozen=True)
class NoteRef:
    """A SOAP note with its addenda (oldest first). ``status``: draft, signed or amended."""

    id: int
    encounter_id: int
    patient_id: int
    author_id: int
    author_display_name: str
    subjective: str
    objective: str
    assessment: str
    plan: str
    status: str
    signed_at: datetime.datetime | None
    signed_by_id: int | None
    version: int
    created_at: datetime.datetime
    updated_at: datetime.datetime
    addenda: list[AddendumRef]


@dataclass(frozen=True)
class ConditionRef:
    id: int
    patient_id: int
    encounter_id: int | None
    code: str
    code_display: str
    clinical_status: str
    verification_status: str
    onset_date: datetime.date | None
    abatement_date: datetime.date | None
    note: str
    recorder_id: int
    version: int
    updated_at: datetime.datetime


@dataclass(frozen=True)
class AllergyRef:
    id: int
    patient_id: int
    substance_text: str
    substance_code: str
    substance_system: str
    criticality: str
    reaction: str
    clinical_status: str
    verification_status: str
    recorder_id: int
    version: int
    updated_at: datetime.datetime


@dataclass(frozen=True)
class MedicationRef:
    id: int
    patient_id: int
    encounter_id: int | None
    medication_text: str
    rxnorm_code: str
    dose: str
    route: str
    frequency: str
    status: str
    prescriber_id: int
    prescriber_display_name: str
    version: int
    updated_at: datetime.datetime


@dataclass(frozen=True)
class ObservationRef:
    id: int
    patient_id: int
    encounter_id: int | None
    code: str
    code_display: str
    category: str
    value: Decimal
    unit: str
    effective_at: datetime.datetime
    status: str
    performer_id: int
    version: int


@dataclass(frozen=True)
class ChartSummary:
    """What a clinician sees first: active problems, allergies (not entered in error or refuted), active medications
    and the latest value of each vital sign / lab code."""

    patient_id: int
    problems: list[ConditionRef]
    allergies: list[AllergyRef]
    medications: list[MedicationRef]
    latest_observations: list[ObservationRef]


_DTO = TypeVar("_DTO")


def to_dto(cls: type[_DTO], row: object, **overrides: Any) -> _DTO:
    """Copy the DTO's fields from a model row by name; ``<x>_display_name`` reads ``row.<x>.display_name`` (select
    the relation first) and ``location_name`` reads ``row.location.name``."""
    values: dict[str, Any] = {}
    for field in fields(cls):  # type: ignore[arg-type]
        if field.name in overrides:
            values[field.name] = overrides[field.name]
        elif field.name.endswith("_display_name"):
            values[field.name] = getattr(row, field.name.removesuffix("_display_name")).display_name
        elif field.name == "location_name":
            values[field.name] = row.location.name  # type: ignore[attr-defined]
        else:
            values[field.name] = getattr(row, field.name)
    return cls(**values)
