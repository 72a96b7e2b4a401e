"""Writes of the clinical record: the public API other apps (telehealth, billing) call, with ids and an ``actor``.

Every function checks access itself (``ehr.access``; denials are audited), validates, and writes in one transaction
the change, its version history row and its audit row; it returns a frozen DTO (``ehr.dto``). Call them outside
your own ``transaction.atomic()`` so a denial's audit row survives. See docs/ehr-public-api.md.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.http import HttpRequest

from ehr.dto import AllergyRef, ConditionRef, MedicationRef, ObservationRef
from ehr.models import User
from ehr.services.clinical.encounters import (
    encounter_cancel,
    encounter_close,
    encounter_mark_entered_in_error,
    encounter_open,
    encounter_plan,
    encounter_replan,
    encounter_start,
    encounter_transition,
)
from ehr.services.clinical.notes import (
    clinical_note_add,
    clinical_note_addendum,
    clinical_note_save_draft,
    clinical_note_sign,
)
from ehr.services.clinical.records import (
    ALLERGY,
    CONDITION,
    MEDICATION,
    OBSERVATION,
    record_add,
    record_mark_entered_in_error,
    record_update,
)

__all__ = [
    "allergy_add",
    "allergy_mark_entered_in_error",
    "allergy_update",
    "clinical_note_add",
    "clinical_note_addendum",
    "clinical_note_save_draft",
    "clinical_note_sign",
    "condition_add",
    "condition_mark_entered_in_error",
    "condition_update",
    "encounter_cancel",
    "encounter_close",
    "encounter_mark_entered_in_error",
    "encounter_open",
    "encounter_plan",
    "encounter_replan",
    "encounter_start",
    "encounter_transition",
    "medication_add",
    "medication_mark_entered_in_error",
    "medication_update",
    "observation_amend",
    "observation_mark_entered_in_error",
    "observation_record",
]


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


# --- Conditions -------------------------------------------------------------------------------------------------


def condition_add(
    *,
    actor: User,
    patient_id: int,
    code: str,
    clinical_status: str = "active",
    verification_status: str = "confirmed",
    onset_date: datetime.date | str | None = None,
    abatement_date: datetime.date | str | None = None,
    note: str = "",
    encounter_id: int | None = None,
    request: HttpRequest | None = None,
) -> ConditionRef:
    """Add a problem coded in ICD-10-CM (validated with simple-icd-10-cm; the description comes from the library).
    Raises ``InvalidClinicalData`` for an unknown code. Callers: clinicians (``WRITE_CLINICAL``)."""
    values = {
        "code": code,
        "clinical_status": clinical_status,
        "verification_status": verification_status,
        "note": note,
    }
    values |= _given(onset_date=onset_date, abatement_date=abatement_date, encounter_id=encounter_id)
    return record_add(CONDITION, actor=actor, patient_id=patient_id, values=values, request=request)


def condition_update(
    *,
    actor: User,
    condition_id: int,
    expected_version: int,
    changes: Mapping[str, Any],
    reason: str,
    request: HttpRequest | None = None,
) -> ConditionRef:
    """Change ``code``, ``clinical_status`` (active/inactive/resolved), ``verification_status``, dates or ``note``
    as a new version. ``VersionConflict`` when stale. Callers: clinicians (``WRITE_CLINICAL``)."""
    return record_update(
        CONDITION,
        actor=actor,
        record_id=condition_id,
        expected_version=expected_version,
        changes=changes,
        reason=reason,
        request=request,
    )


def condition_mark_entered_in_error(
    *, actor: User, condition_id: int, expected_version: int, reason: str, request: HttpRequest | None = None
) -> ConditionRef:
    """``verification_status`` becomes ``entered-in-error`` (a new version; history kept; nothing deleted)."""
    return record_mark_entered_in_error(
        CONDITION,
        actor=actor,
        record_id=condition_id,
        expected_version=expected_version,
        reason=reason,
        request=request,
    )


# --- Allergies --------------------------------------------------------------------------------------------------


def allergy_add(
    *,
    actor: User,
    patient_id: int,
    substance_text: str,
    criticality: str,
    reaction: str = "",
    substance_code: str = "",
    substance_system: str = "",
    clinical_status: str = "active",
    verification_status: str = "confirmed",
    request: HttpRequest | None = None,
) -> AllergyRef:
    """Record an allergy or intolerance (criticality low/high/unable-to-assess). Callers: clinicians."""
    values = {
        "substance_text": substance_text,
        "criticality": criticality,
        "reaction": reaction,
        "substance_code": substance_code,
        "substance_system": substance_system,
        "clinical_status": clinical_status,
        "verification_status": verification_status,
    }
    return record_add(ALLERGY, actor=actor, patient_id=patient_id, values=values, request=request)


def allergy_update(
    *,
    actor: User,
    allergy_id: int,
    expected_version: int,
    changes: Mapping[str, Any],
    reason: str,
    request: HttpRequest | None = None,
) -> AllergyRef:
    """Change an allergy as a new version; ``VersionConflict`` when stale. Callers: clinicians."""
    return record_update(
        ALLERGY,
        actor=actor,
        record_id=allergy_id,
        expected_version=expected_version,
        changes=changes,
        reason=reason,
        request=request,
    )


def allergy_mark_entered_in_error(
    *, actor: User, allergy_id: int, expected_version: int, reason: str, request: HttpRequest | None = None
) -> AllergyRef:
    """``verification_status`` becomes ``entered-in-error`` (a new version). Callers: clinicians."""
    return record_mark_entered_in_error(
        ALLERGY, actor=actor, record_id=allergy_id, expected_version=expected_version, reason=reason, request=request
    )


# --- Medications ------------------------------------------------------------------------------------------------


def medication_add(
    *,
    actor: User,
    patient_id: int,
    medication_text: str,
    rxnorm_code: str = "",
    dose: str = "",
    route: str = "",
    frequency: str = "",
    encounter_id: int | None = None,
    request: HttpRequest | None = None,
) -> MedicationRef:
    """Prescribe / record a medication (status ``active``; ``actor`` is the prescriber). ``rxnorm_code``: an RxCUI
    (digits). Callers: clinicians (``WRITE_CLINICAL``)."""
    values = {"medication_text": medication_text, "rxnorm_code": rxnorm_code, "dose": dose, "route": route}
    values |= {"frequency": frequency} | _given(encounter_id=encounter_id)
    return record_add(MEDICATION, actor=actor, patient_id=patient_id, values=values, request=request)


def medication_update(
    *,
    actor: User,
    medication_id: int,
    expected_version: int,
    changes: Mapping[str, Any],
    reason: str,
    request: HttpRequest | None = None,
) -> MedicationRef:
    """Change dose/route/frequency/text, or ``status`` active <-> stopped, as a new version. Callers: clinicians."""
    return record_update(
        MEDICATION,
        actor=actor,
        record_id=medication_id,
        expected_version=expected_version,
        changes=changes,
        reason=reason,
        request=request,
    )


def medication_mark_entered_in_error(
    *, actor: User, medication_id: int, expected_version: int, reason: str, request: HttpRequest | None = None
) -> MedicationRef:
    """``status`` becomes ``entered-in-error`` (a new version). Callers: clinicians."""
    return record_mark_entered_in_error(
        MEDICATION,
        actor=actor,
        record_id=medication_id,
        expected_version=expected_version,
        reason=reason,
        request=request,
    )


# --- Observations -----------------------------------------------------------------------------------------------


def observation_record(
    *,
    actor: User,
    patient_id: int,
    code: str,
    value: Decimal | int | float | str,
    unit: str = "",
    effective_at: datetime.datetime | str | None = None,
    encounter_id: int | None = None,
    request: HttpRequest | None = None,
) -> ObservationRef:
    """Record a vital sign or lab value: ``code`` from the LOINC table in ``ehr.codes``, ``value`` in that code's
    UCUM unit (``unit``, if given, must be it) and within its physiological bounds; ``effective_at`` defaults to
    now and cannot be in the future. Raises ``InvalidClinicalData`` with a field error otherwise.
    Callers: clinicians (``WRITE_CLINICAL``); devices/interop acting for a clinician."""
    values = {"code": code, "value": value, "unit": unit} | _given(effective_at=effective_at, encounter_id=encounter_id)
    return record_add(OBSERVATION, actor=actor, patient_id=patient_id, values=values, request=request)


def observation_amend(
    *,
    actor: User,
    observation_id: int,
    expected_version: int,
    changes: Mapping[str, Any],
    reason: str,
    request: HttpRequest | None = None,
) -> ObservationRef:
    """Correct ``value`` and/or ``effective_at``: a new version with status ``amended`` (the earlier value stays
    in the history). ``VersionConflict`` when stale. Callers: clinicians."""
    return record_update(
        OBSERVATION,
        actor=actor,
        record_id=observation_id,
        expected_version=expected_version,
        changes=changes,
        reason=reason,
        request=request,
    )


def observation_mark_entered_in_error(
    *, actor: User, observation_id: int, expected_version: int, reason: str, request: HttpRequest | None = None
) -> ObservationRef:
    """``status`` becomes ``entered-in-error`` (a new version); it drops out of the chart summary."""
    return record_mark_entered_in_error(
        OBSERVATION,
        actor=actor,
        record_id=observation_id,
        expected_version=expected_version,
        reason=reason,
        request=request,
    )
