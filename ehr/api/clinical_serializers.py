"""Serializers of the clinical-record API. Request serializers check shapes and types; the services check the
domain (ICD-10-CM and LOINC codes, physiological bounds, transitions) and answer in the same
``{"code": "invalid", "fields": {...}}`` shape. Response serializers read the frozen DTOs of ``ehr.dto``."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from ehr.api.patient_serializers import FieldChangeSerializer, PatientHistoryEntrySerializer
from ehr.codes import OBSERVATION_CODES
from ehr.models import (
    AllergyCriticality,
    ConditionClinicalStatus,
    EncounterModality,
    EncounterStatus,
    MedicationStatus,
    NoteStatus,
    ObservationStatus,
    VerificationStatus,
)

# Status fields accept the full FHIR vocabularies here (one enum per vocabulary in the OpenAPI schema); the services
# refuse "entered-in-error" in a create or update (it has its own endpoint) with a field error.


def _text(max_length: int, **kwargs: Any) -> serializers.CharField:
    return serializers.CharField(max_length=max_length, required=False, allow_blank=True, **kwargs)


def _section() -> serializers.CharField:
    # Kept exactly as typed (no trimming): autosave must round-trip the clinician's text.
    return serializers.CharField(max_length=20_000, required=False, allow_blank=True, trim_whitespace=False)


# --- Encounters ---------------------------------------------------------------------------------------------------


class EncounterCreateSerializer(serializers.Serializer[object]):
    location_id = serializers.IntegerField(help_text="A location (clinic) you work at")
    modality = serializers.ChoiceField(choices=EncounterModality.choices)
    reason = _text(1000)


class EncounterSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    patient_id = serializers.IntegerField()
    practitioner_id = serializers.IntegerField()
    practitioner_display_name = serializers.CharField()
    location_id = serializers.IntegerField()
    location_name = serializers.CharField()
    modality = serializers.ChoiceField(choices=EncounterModality.choices)
    status = serializers.ChoiceField(choices=EncounterStatus.choices)
    period_start = serializers.DateTimeField(allow_null=True)
    period_end = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField()
    duration_seconds = serializers.IntegerField(allow_null=True)
    version = serializers.IntegerField()
    planned_start = serializers.DateTimeField(allow_null=True, help_text="Booked start of a planned visit")
    planned_end = serializers.DateTimeField(allow_null=True, help_text="Booked end of a planned visit")
    appointment_id = serializers.IntegerField(
        allow_null=True,
        help_text="The scheduling appointment this visit was booked as (FHIR Encounter.appointment); cancel the "
        "visit by cancelling that appointment",
    )


class EncounterCancelSerializer(serializers.Serializer[object]):
    reason = serializers.CharField(max_length=500, help_text="Why the booked visit will not happen")


class EncounterListSerializer(serializers.Serializer[object]):
    results = EncounterSerializer(many=True)


# --- Notes --------------------------------------------------------------------------------------------------------


class NoteSectionsSerializer(serializers.Serializer[object]):
    """SOAP sections; on PATCH only the sections sent are replaced."""

    subjective = _section()
    objective = _section()
    assessment = _section()
    plan = _section()


class AddendumCreateSerializer(serializers.Serializer[object]):
    text = serializers.CharField(max_length=10_000)


class AddendumSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    author_id = serializers.IntegerField()
    author_display_name = serializers.CharField()
    text = serializers.CharField()
    created_at = serializers.DateTimeField()


class NoteSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    encounter_id = serializers.IntegerField()
    patient_id = serializers.IntegerField()
    author_id = serializers.IntegerField()
    author_display_name = serializers.CharField()
    subjective = serializers.CharField(trim_whitespace=False)
    objective = serializers.CharField(trim_whitespace=False)
    assessment = serializers.CharField(trim_whitespace=False)
    plan = serializers.CharField(trim_whitespace=False)
    status = serializers.ChoiceField(choices=NoteStatus.choices)
    signed_at = serializers.DateTimeField(allow_null=True)
    signed_by_id = serializers.IntegerField(allow_null=True)
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    addenda = AddendumSerializer(many=True)


class NoteListSerializer(serializers.Serializer[object]):
    results = NoteSerializer(many=True)


class DraftConflictErrorSerializer(serializers.Serializer[object]):
    """412 on a stale draft save: the note as it is now, so the editor can merge and save again with the new ETag."""

    code = serializers.CharField()
    detail = serializers.CharField()
    current_version = serializers.IntegerField()
    current = NoteSectionsSerializer()


class TransitionErrorSerializer(serializers.Serializer[object]):
    code = serializers.CharField()
    detail = serializers.CharField()
    current_status = serializers.CharField()
    target_status = serializers.CharField()


class EncounterCancelConflictSerializer(serializers.Serializer[object]):
    """409 of the chart's cancel: ``invalid_transition`` (with the statuses) once the visit started or ended;
    ``cancel_the_appointment`` (with ``appointment_id``) for a visit booked in scheduling."""

    code = serializers.CharField(help_text="invalid_transition or cancel_the_appointment")
    detail = serializers.CharField()
    current_status = serializers.CharField(required=False)
    target_status = serializers.CharField(required=False)
    appointment_id = serializers.IntegerField(required=False)


class PatientMergedErrorSerializer(serializers.Serializer[object]):
    """409 ``patient_merged``: the record was merged into ``merged_into_id`` while the write was on its way."""

    code = serializers.CharField()
    detail = serializers.CharField()
    merged_into_id = serializers.IntegerField(allow_null=True)


# --- Conditions, allergies, medications, observations -----------------------------------------------------------


class ConditionCreateSerializer(serializers.Serializer[object]):
    code = serializers.CharField(max_length=10, help_text="ICD-10-CM code, e.g. E11.9")
    clinical_status = serializers.ChoiceField(choices=ConditionClinicalStatus.choices, required=False)
    verification_status = serializers.ChoiceField(choices=VerificationStatus.choices, required=False)
    onset_date = serializers.DateField(required=False, allow_null=True)
    abatement_date = serializers.DateField(required=False, allow_null=True)
    note = _text(2000)
    encounter_id = serializers.IntegerField(required=False, allow_null=True)


class ConditionUpdateSerializer(serializers.Serializer[object]):
    code = serializers.CharField(max_length=10, required=False)
    clinical_status = serializers.ChoiceField(choices=ConditionClinicalStatus.choices, required=False)
    verification_status = serializers.ChoiceField(choices=VerificationStatus.choices, required=False)
    onset_date = serializers.DateField(required=False, allow_null=True)
    abatement_date = serializers.DateField(required=False, allow_null=True)
    note = _text(2000)
    reason = serializers.CharField(max_length=500)


class ConditionSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    patient_id = serializers.IntegerField()
    encounter_id = serializers.IntegerField(allow_null=True)
    code = serializers.CharField()
    code_display = serializers.CharField()
    clinical_status = serializers.ChoiceField(choices=ConditionClinicalStatus.choices)
    verification_status = serializers.ChoiceField(choices=VerificationStatus.choices)
    onset_date = serializers.DateField(allow_null=True)
    abatement_date = serializers.DateField(allow_null=True)
    note = serializers.CharField()
    recorder_id = serializers.IntegerField()
    version = serializers.IntegerField()
    updated_at = serializers.DateTimeField()


class AllergyCreateSerializer(serializers.Serializer[object]):
    substance_text = serializers.CharField(max_length=200)
    substance_code = _text(40)
    substance_system = _text(100, help_text="Code system URI of substance_code")
    criticality = serializers.ChoiceField(choices=AllergyCriticality.choices)
    reaction = _text(2000)
    clinical_status = serializers.ChoiceField(choices=ConditionClinicalStatus.choices, required=False)
    verification_status = serializers.ChoiceField(choices=VerificationStatus.choices, required=False)


class AllergyUpdateSerializer(serializers.Serializer[object]):
    substance_text = serializers.CharField(max_length=200, required=False)
    substance_code = _text(40)
    substance_system = _text(100)
    criticality = serializers.ChoiceField(choices=AllergyCriticality.choices, required=False)
    reaction = _text(2000)
    clinical_status = serializers.ChoiceField(choices=ConditionClinicalStatus.choices, required=False)
    verification_status = serializers.ChoiceField(choices=VerificationStatus.choices, required=False)
    reason = serializers.CharField(max_length=500)


class AllergySerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    patient_id = serializers.IntegerField()
    substance_text = serializers.CharField()
    substance_code = serializers.CharField()
    substance_system = serializers.CharField()
    criticality = serializers.ChoiceField(choices=AllergyCriticality.choices)
    reaction = serializers.CharField()
    clinical_status = serializers.ChoiceField(choices=ConditionClinicalStatus.choices)
    verification_status = serializers.ChoiceField(choices=VerificationStatus.choices)
    recorder_id = serializers.IntegerField()
    version = serializers.IntegerField()
    updated_at = serializers.DateTimeField()


class MedicationCreateSerializer(serializers.Serializer[object]):
    medication_text = serializers.CharField(max_length=200)
    rxnorm_code = _text(10, help_text="RxNorm concept id (RxCUI), digits")
    dose = _text(100)
    route = _text(50)
    frequency = _text(100)
    encounter_id = serializers.IntegerField(required=False, allow_null=True)


# Only active/stopped may be set here (entered-in-error has its own endpoint); a distinct choice set also keeps the
# OpenAPI enum names unambiguous.
_SETTABLE_MEDICATION = [c for c in MedicationStatus.choices if c[0] != MedicationStatus.ENTERED_IN_ERROR]


class MedicationUpdateSerializer(serializers.Serializer[object]):
    medication_text = serializers.CharField(max_length=200, required=False)
    rxnorm_code = _text(10)
    dose = _text(100)
    route = _text(50)
    frequency = _text(100)
    status = serializers.ChoiceField(choices=_SETTABLE_MEDICATION, required=False)
    reason = serializers.CharField(max_length=500)


class MedicationSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    patient_id = serializers.IntegerField()
    encounter_id = serializers.IntegerField(allow_null=True)
    medication_text = serializers.CharField()
    rxnorm_code = serializers.CharField()
    dose = serializers.CharField()
    route = serializers.CharField()
    frequency = serializers.CharField()
    status = serializers.ChoiceField(choices=MedicationStatus.choices)
    prescriber_id = serializers.IntegerField()
    prescriber_display_name = serializers.CharField()
    version = serializers.IntegerField()
    updated_at = serializers.DateTimeField()


_OBSERVATION_CODE_HELP = "LOINC: " + ", ".join(f"{c.code} {c.display} ({c.unit})" for c in OBSERVATION_CODES.values())


class ObservationCreateSerializer(serializers.Serializer[object]):
    code = serializers.CharField(max_length=10, help_text=_OBSERVATION_CODE_HELP)
    value = serializers.DecimalField(max_digits=12, decimal_places=4, coerce_to_string=False)
    unit = _text(20, help_text="UCUM; if given, must be the code's unit")
    effective_at = serializers.DateTimeField(required=False, help_text="Defaults to now; not in the future")
    encounter_id = serializers.IntegerField(required=False, allow_null=True)


class ObservationUpdateSerializer(serializers.Serializer[object]):
    value = serializers.DecimalField(max_digits=12, decimal_places=4, coerce_to_string=False, required=False)
    effective_at = serializers.DateTimeField(required=False)
    reason = serializers.CharField(max_length=500)


class ObservationSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    patient_id = serializers.IntegerField()
    encounter_id = serializers.IntegerField(allow_null=True)
    code = serializers.CharField()
    code_display = serializers.CharField()
    category = serializers.CharField()
    value = serializers.DecimalField(max_digits=10, decimal_places=3, coerce_to_string=False, normalize_output=True)
    unit = serializers.CharField()
    effective_at = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=ObservationStatus.choices)
    performer_id = serializers.IntegerField()
    version = serializers.IntegerField()


class ChartSummarySerializer(serializers.Serializer[Any]):
    patient_id = serializers.IntegerField()
    problems = ConditionSerializer(many=True)
    allergies = AllergySerializer(many=True)
    medications = MedicationSerializer(many=True)
    latest_observations = ObservationSerializer(many=True)


class RecordHistoryEntrySerializer(PatientHistoryEntrySerializer):
    """One version: who, when, why, the snapshot after the change and the diff against the previous version."""

    data = serializers.DictField(child=serializers.JSONField(allow_null=True))  # type: ignore[assignment]  # a field named data (DRF pops declared fields), not Serializer.data
    diff = FieldChangeSerializer(many=True)


class RecordHistorySerializer(serializers.Serializer[object]):
    results = RecordHistoryEntrySerializer(many=True)


def list_serializer(name: str, item: type[serializers.Serializer[Any]]) -> type[serializers.Serializer[object]]:
    """``{"results": [item]}`` with a stable component name for the OpenAPI schema."""
    return type(name, (serializers.Serializer,), {"results": item(many=True)})
