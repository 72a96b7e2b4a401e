"""Versioned list records of the chart: conditions (ICD-10-CM), allergies, medications and observations (LOINC/UCUM).

All four share one life cycle, written once here: add (version 1), update based on a version (If-Match; a new
version, ``VersionConflict`` when stale), mark entered-in-error (a new version; nothing is deleted). Each kind
declares its versioned fields, how its input is cleaned, its status tables and its domain checks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Generic, TypeVar

from django.db import models, transaction
from django.http import HttpRequest
from django.utils import timezone

from ehr import codes
from ehr.access import PatientAction
from ehr.dto import AllergyRef, ConditionRef, MedicationRef, ObservationRef, to_dto
from ehr.errors import ClinicalRecordNotFound, InvalidClinicalData
from ehr.models import (
    AllergyCriticality,
    AllergyIntolerance,
    AllergyIntoleranceVersion,
    AuditAction,
    Condition,
    ConditionClinicalStatus,
    ConditionVersion,
    MedicationStatement,
    MedicationStatementVersion,
    MedicationStatus,
    Observation,
    ObservationStatus,
    ObservationVersion,
    User,
    VerificationStatus,
)
from ehr.models.clinical import ClinicalVersion
from ehr.services.clinical._common import (
    Cleaner,
    audit,
    authorise_patient,
    authorise_record,
    check_encounter,
    refuse_merged_patient,
    reject_unknown,
    require_reason,
    transition,
)
from ehr.versioning import lock_at_version, record_first_version, save_new_version, snapshot

ENTERED_IN_ERROR = "entered-in-error"
M = TypeVar("M", bound=models.Model)
D = TypeVar("D")

# --- status tables (one per state machine; entered-in-error is terminal everywhere) ------------------------------

_CLINICAL = [str(v) for v in ConditionClinicalStatus.values]
CLINICAL_STATUS_TRANSITIONS: dict[str, frozenset[str]] = {s: frozenset(_CLINICAL) - {s} for s in _CLINICAL}
V = VerificationStatus
VERIFICATION_TRANSITIONS: dict[str, frozenset[str]] = {
    V.PROVISIONAL: frozenset({V.CONFIRMED, V.REFUTED, V.ENTERED_IN_ERROR}),
    V.CONFIRMED: frozenset({V.PROVISIONAL, V.REFUTED, V.ENTERED_IN_ERROR}),
    V.REFUTED: frozenset({V.PROVISIONAL, V.CONFIRMED, V.ENTERED_IN_ERROR}),
    V.ENTERED_IN_ERROR: frozenset(),
}
MEDICATION_TRANSITIONS: dict[str, frozenset[str]] = {
    MedicationStatus.ACTIVE: frozenset({MedicationStatus.STOPPED, MedicationStatus.ENTERED_IN_ERROR}),
    MedicationStatus.STOPPED: frozenset({MedicationStatus.ACTIVE, MedicationStatus.ENTERED_IN_ERROR}),
    MedicationStatus.ENTERED_IN_ERROR: frozenset(),
}
OBSERVATION_TRANSITIONS: dict[str, frozenset[str]] = {
    ObservationStatus.FINAL: frozenset({ObservationStatus.AMENDED, ObservationStatus.ENTERED_IN_ERROR}),
    ObservationStatus.AMENDED: frozenset({ObservationStatus.AMENDED, ObservationStatus.ENTERED_IN_ERROR}),
    ObservationStatus.ENTERED_IN_ERROR: frozenset(),
}
_SETTABLE_VERIFICATION = [s for s in VerificationStatus.values if s != ENTERED_IN_ERROR]


@dataclass(frozen=True)
class RecordKind(Generic[M, D]):
    """How one kind of versioned chart record is cleaned, checked, versioned and shown."""

    name: str  # entity type in audit rows and errors
    model: type[M]
    history: type[ClinicalVersion]
    dto: type[D]
    fields: tuple[str, ...]  # versioned (snapshot) fields
    updatable: frozenset[str]
    creatable: frozenset[str]
    actor_relation: str  # who recorded it: set to the actor at creation
    status_tables: Mapping[str, Mapping[str, frozenset[str]]]
    eie_field: str  # the status field that becomes "entered-in-error"
    clean: Callable[[Mapping[str, Any], bool], dict[str, Any]]  # (values, creating) -> cleaned; raises
    check: Callable[[M], None]  # domain checks on the row after applying a change; raises
    on_change: Callable[[M], None] | None = None  # e.g. an observation correction becomes "amended"
    related: tuple[str, ...] = ()

    def to_dto(self, row: M) -> D:
        return to_dto(self.dto, row)


def _is_eie(kind: RecordKind[Any, Any], row: models.Model) -> bool:
    return bool(getattr(row, kind.eie_field) == ENTERED_IN_ERROR)


def record_add(
    kind: RecordKind[M, D], *, actor: User, patient_id: int, values: Mapping[str, Any], request: HttpRequest | None
) -> D:
    """A new record (version 1 + history + a ``create`` audit row). A merge of the patient that commits between the
    access check and the insert raises ``PatientMerged``; nothing is written."""
    authorise_patient(
        actor=actor, patient_id=patient_id, action=PatientAction.WRITE_CLINICAL, request=request, writing=True
    )
    reject_unknown(values, kind.creatable)
    cleaned = kind.clean(values, True)
    check_encounter(patient_id, cleaned.get("encounter_id"))
    with refuse_merged_patient(patient_id), transaction.atomic():
        now = timezone.now()
        row = kind.model(patient_id=patient_id, version=1, created_at=now, updated_at=now, **cleaned)
        setattr(row, kind.actor_relation, actor)
        kind.check(row)
        row.save(force_insert=True)
        record_first_version(kind.history, row, fields=kind.fields, actor=actor, reason="recorded")
        audit(
            actor=actor,
            action=AuditAction.CREATE,
            entity_type=kind.name,
            entity_id=row.pk,
            patient_id=patient_id,
            request=request,
            detail={"fields": sorted(k for k, v in cleaned.items() if v not in (None, "")), "version": 1},
        )
    return kind.to_dto(row)


def _locked(kind: RecordKind[M, D], record_id: int, expected_version: int) -> M:
    return lock_at_version(
        kind.model._default_manager.select_related(*kind.related),
        record_id,
        expected_version,
        not_found=lambda: ClinicalRecordNotFound(kind.name, record_id),
    )


def record_update(
    kind: RecordKind[M, D],
    *,
    actor: User,
    record_id: int,
    expected_version: int,
    changes: Mapping[str, Any],
    reason: str,
    request: HttpRequest | None,
) -> D:
    patient_id = authorise_record(
        actor=actor,
        model=kind.model,
        kind=kind.name,
        record_id=record_id,
        action=PatientAction.WRITE_CLINICAL,
        request=request,
    )
    if not isinstance(changes, Mapping):
        raise InvalidClinicalData({"changes": ["Send the changes as an object."]})
    reject_unknown(changes, kind.updatable)
    reason = require_reason(reason)
    cleaned = kind.clean(changes, False)
    check_encounter(patient_id, cleaned.get("encounter_id"))
    with transaction.atomic():
        row = _locked(kind, record_id, expected_version)
        if _is_eie(kind, row):
            raise InvalidClinicalData({kind.eie_field: ["The record is entered in error and cannot change."]})
        before = snapshot(row, kind.fields)
        for name, value in cleaned.items():
            if name in kind.status_tables and getattr(row, name) != value:
                value = transition(kind.name, kind.status_tables[name], getattr(row, name), value)
            setattr(row, name, value)
        if kind.on_change is not None and snapshot(row, kind.fields) != before:
            kind.on_change(row)
        kind.check(row)
        changed = save_new_version(kind.history, row, fields=kind.fields, before=before, actor=actor, reason=reason)
        audit(
            actor=actor,
            action=AuditAction.UPDATE,
            entity_type=kind.name,
            entity_id=row.pk,
            patient_id=patient_id,
            request=request,
            detail={"fields": changed, "version": row.version},  # type: ignore[attr-defined]
        )
    return kind.to_dto(row)


def record_mark_entered_in_error(
    kind: RecordKind[M, D],
    *,
    actor: User,
    record_id: int,
    expected_version: int,
    reason: str,
    request: HttpRequest | None,
) -> D:
    patient_id = authorise_record(
        actor=actor,
        model=kind.model,
        kind=kind.name,
        record_id=record_id,
        action=PatientAction.WRITE_CLINICAL,
        request=request,
    )
    reason = require_reason(reason)
    with transaction.atomic():
        row = _locked(kind, record_id, expected_version)
        before = snapshot(row, kind.fields)
        table = kind.status_tables[kind.eie_field]
        setattr(row, kind.eie_field, transition(kind.name, table, getattr(row, kind.eie_field), ENTERED_IN_ERROR))
        changed = save_new_version(kind.history, row, fields=kind.fields, before=before, actor=actor, reason=reason)
        audit(
            actor=actor,
            action=AuditAction.ENTERED_IN_ERROR,
            entity_type=kind.name,
            entity_id=row.pk,
            patient_id=patient_id,
            request=request,
            detail={"fields": changed, "version": row.version},  # type: ignore[attr-defined]
        )
    return kind.to_dto(row)


# --- Conditions -------------------------------------------------------------------------------------------------


def _clean_condition(values: Mapping[str, Any], creating: bool) -> dict[str, Any]:
    clean = Cleaner()
    out: dict[str, Any] = {}
    if "code" in values or creating:
        raw = values.get("code")
        found = codes.icd10cm_lookup(raw) if isinstance(raw, str) else None
        if found is None:
            clean.fail("code", f"{raw!r} is not an ICD-10-CM code." if raw else "This field is required.")
        else:
            out["code"], out["code_display"] = found.code, found.display
    if "clinical_status" in values:
        out["clinical_status"] = clean.choice("clinical_status", values["clinical_status"], _CLINICAL)
    if "verification_status" in values:
        out["verification_status"] = clean.choice(
            "verification_status", values["verification_status"], _SETTABLE_VERIFICATION
        )
    for name in ("onset_date", "abatement_date"):
        if name in values:
            out[name] = clean.date(name, values[name])
    if "note" in values:
        out["note"] = clean.text("note", values["note"], max_length=2000)
    if "encounter_id" in values:
        out["encounter_id"] = clean.optional_id("encounter_id", values["encounter_id"])
    clean.done()
    return out


def _check_condition(row: Condition) -> None:
    if row.onset_date and row.abatement_date and row.abatement_date < row.onset_date:
        raise InvalidClinicalData({"abatement_date": ["Cannot be before the onset date."]})


CONDITION = RecordKind[Condition, ConditionRef](
    name="Condition",
    model=Condition,
    history=ConditionVersion,
    dto=ConditionRef,
    fields=(
        "code",
        "code_display",
        "clinical_status",
        "verification_status",
        "onset_date",
        "abatement_date",
        "note",
        "encounter_id",
    ),
    creatable=frozenset(
        {"code", "clinical_status", "verification_status", "onset_date", "abatement_date", "note", "encounter_id"}
    ),
    updatable=frozenset({"code", "clinical_status", "verification_status", "onset_date", "abatement_date", "note"}),
    actor_relation="recorder",
    status_tables={"clinical_status": CLINICAL_STATUS_TRANSITIONS, "verification_status": VERIFICATION_TRANSITIONS},
    eie_field="verification_status",
    clean=_clean_condition,
    check=_check_condition,
)


# --- Allergies --------------------------------------------------------------------------------------------------


def _clean_allergy(values: Mapping[str, Any], creating: bool) -> dict[str, Any]:
    clean = Cleaner()
    out: dict[str, Any] = {}
    if "substance_text" in values or creating:
        out["substance_text"] = clean.text(
            "substance_text", values.get("substance_text"), max_length=200, required=True
        )
    if "substance_code" in values:
        out["substance_code"] = clean.text("substance_code", values["substance_code"], max_length=40)
    if "substance_system" in values:
        out["substance_system"] = clean.text("substance_system", values["substance_system"], max_length=100)
    if "criticality" in values or creating:
        out["criticality"] = clean.choice("criticality", values.get("criticality"), AllergyCriticality.values)
    if "reaction" in values:
        out["reaction"] = clean.text("reaction", values["reaction"], max_length=2000)
    if "clinical_status" in values:
        out["clinical_status"] = clean.choice("clinical_status", values["clinical_status"], _CLINICAL)
    if "verification_status" in values:
        out["verification_status"] = clean.choice(
            "verification_status", values["verification_status"], _SETTABLE_VERIFICATION
        )
    clean.done()
    return out


def _check_allergy(row: AllergyIntolerance) -> None:
    if row.substance_code and not row.substance_system:
        raise InvalidClinicalData({"substance_system": ["Say which code system the substance code is from."]})


_ALLERGY_FIELDS = ("substance_text", "substance_code", "substance_system", "criticality", "reaction")
ALLERGY = RecordKind[AllergyIntolerance, AllergyRef](
    name="AllergyIntolerance",
    model=AllergyIntolerance,
    history=AllergyIntoleranceVersion,
    dto=AllergyRef,
    fields=(*_ALLERGY_FIELDS, "clinical_status", "verification_status"),
    creatable=frozenset({*_ALLERGY_FIELDS, "clinical_status", "verification_status"}),
    updatable=frozenset({*_ALLERGY_FIELDS, "clinical_status", "verification_status"}),
    actor_relation="recorder",
    status_tables={"clinical_status": CLINICAL_STATUS_TRANSITIONS, "verification_status": VERIFICATION_TRANSITIONS},
    eie_field="verification_status",
    clean=_clean_allergy,
    check=_check_allergy,
)


# --- Medications ------------------------------------------------------------------------------------------------


def _clean_medication(values: Mapping[str, Any], creating: bool) -> dict[str, Any]:
    clean = Cleaner()
    out: dict[str, Any] = {}
    if "medication_text" in values or creating:
        out["medication_text"] = clean.text(
            "medication_text", values.get("medication_text"), max_length=200, required=True
        )
    if "rxnorm_code" in values:
        code = clean.text("rxnorm_code", values["rxnorm_code"], max_length=10)
        if code and not codes.RXNORM_PATTERN.match(code):
            clean.fail("rxnorm_code", "An RxNorm concept id is digits only (RxCUI), e.g. 197361.")
        out["rxnorm_code"] = code
    for name, length in (("dose", 100), ("route", 50), ("frequency", 100)):
        if name in values:
            out[name] = clean.text(name, values[name], max_length=length)
    if "status" in values:
        out["status"] = clean.choice("status", values["status"], [MedicationStatus.ACTIVE, MedicationStatus.STOPPED])
    if "encounter_id" in values:
        out["encounter_id"] = clean.optional_id("encounter_id", values["encounter_id"])
    clean.done()
    return out


_MEDICATION_FIELDS = ("medication_text", "rxnorm_code", "dose", "route", "frequency", "status")
MEDICATION = RecordKind[MedicationStatement, MedicationRef](
    name="MedicationStatement",
    model=MedicationStatement,
    history=MedicationStatementVersion,
    dto=MedicationRef,
    fields=(*_MEDICATION_FIELDS, "encounter_id"),
    creatable=frozenset({*_MEDICATION_FIELDS, "encounter_id"}),
    updatable=frozenset(_MEDICATION_FIELDS),
    actor_relation="prescriber",
    status_tables={"status": MEDICATION_TRANSITIONS},
    eie_field="status",
    clean=_clean_medication,
    check=lambda row: None,
    related=("prescriber",),
)


# --- Observations -----------------------------------------------------------------------------------------------


def _clean_observation(values: Mapping[str, Any], creating: bool) -> dict[str, Any]:
    clean = Cleaner()
    out: dict[str, Any] = {}
    if creating:
        raw = values.get("code")
        spec = codes.OBSERVATION_CODES.get(raw) if isinstance(raw, str) else None
        if spec is None:
            clean.fail(
                "code", f"{raw!r} is not one of the LOINC codes recorded here: {', '.join(codes.OBSERVATION_CODES)}."
            )
        else:
            out.update(code=spec.code, code_display=spec.display, category=spec.category, unit=spec.unit)
            unit = values.get("unit")
            if unit not in (None, "", spec.unit):
                clean.fail("unit", f"{spec.display} is recorded in {spec.unit} (UCUM), not {unit!r}.")
        raw_time = values.get("effective_at")
        out["effective_at"] = timezone.now() if raw_time in (None, "") else clean.instant("effective_at", raw_time)
    elif "effective_at" in values:
        out["effective_at"] = clean.instant("effective_at", values["effective_at"])
    if "value" in values or creating:
        out["value"] = clean.decimal("value", values.get("value"))
    if "encounter_id" in values:
        out["encounter_id"] = clean.optional_id("encounter_id", values["encounter_id"])
    clean.done()
    return out


def _check_observation(row: Observation) -> None:
    spec = codes.OBSERVATION_CODES[row.code]
    value = Decimal(row.value)
    if not spec.minimum <= value <= spec.maximum:
        raise InvalidClinicalData(
            {
                "value": [
                    f"{value} {spec.unit} is not a possible {spec.display.lower()} "
                    f"(possible: {spec.minimum} to {spec.maximum} {spec.unit})."
                ]
            }
        )
    row.value = value.quantize(Decimal(1).scaleb(-spec.decimals), rounding=ROUND_HALF_UP)


def _observation_amended(row: Observation) -> None:
    row.status = transition("Observation", OBSERVATION_TRANSITIONS, row.status, ObservationStatus.AMENDED)


OBSERVATION = RecordKind[Observation, ObservationRef](
    name="Observation",
    model=Observation,
    history=ObservationVersion,
    dto=ObservationRef,
    fields=("code", "code_display", "category", "value", "unit", "effective_at", "status", "encounter_id"),
    creatable=frozenset({"code", "value", "unit", "effective_at", "encounter_id"}),
    updatable=frozenset({"value", "effective_at"}),
    actor_relation="performer",
    status_tables={"status": OBSERVATION_TRANSITIONS},
    eie_field="status",
    clean=_clean_observation,
    check=_check_observation,
    on_change=_observation_amended,
)

KINDS: dict[str, RecordKind[Any, Any]] = {k.name: k for k in (CONDITION, ALLERGY, MEDICATION, OBSERVATION)}
