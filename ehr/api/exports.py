"""Patient-record export API: ``GET /api/v1/ehr/patients/{id}/export/?purpose=`` answers one JSON document as a
download (``Content-Disposition: attachment``, ``Cache-Control: no-store``).

The view parses the purpose, calls ``ehr.services.exports.patient_record_export`` (access, snapshot, audit) and
serializes with the same shapes as the chart's own endpoints (docs/exports.md).
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ehr.api.clinical import ERRORS, clinical_errors
from ehr.api.clinical_serializers import (
    AllergySerializer,
    ConditionSerializer,
    EncounterSerializer,
    MedicationSerializer,
    NoteSerializer,
    ObservationSerializer,
)
from ehr.api.documents import DocumentSerializer
from ehr.api.patients import _actor
from ehr.models import AdministrativeGender, PatientStatus
from ehr.services.exports import DEFAULT_PURPOSE, EXPORT_PURPOSES, patient_record_export


class RecordExportQuerySerializer(serializers.Serializer[object]):
    purpose = serializers.ChoiceField(
        choices=EXPORT_PURPOSES,
        required=False,
        default=DEFAULT_PURPOSE,
        help_text="Why the record is exported (audited).",
    )


class ExportedPatientSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    mrn = serializers.CharField()
    status = serializers.ChoiceField(choices=PatientStatus.choices)
    given_name = serializers.CharField()
    family_name = serializers.CharField()
    birth_date = serializers.DateField()
    sex = serializers.ChoiceField(choices=AdministrativeGender.choices)
    gender_identity = serializers.CharField()
    phone = serializers.CharField()
    email = serializers.CharField()
    address_line = serializers.CharField()
    city = serializers.CharField()
    postal_code = serializers.CharField()
    country = serializers.CharField()
    preferred_language = serializers.CharField()
    emergency_contact_name = serializers.CharField()
    emergency_contact_phone = serializers.CharField()
    national_id = serializers.CharField(help_text='In full, or masked ("•••• 1234") when identifiers_masked.')
    insurance_member_id = serializers.CharField()
    identifiers_masked = serializers.BooleanField()


class ExportedEncounterSerializer(EncounterSerializer):
    notes = NoteSerializer(many=True, help_text="Signed notes, oldest first, with their addenda.")


class PatientRecordSerializer(serializers.Serializer[Any]):
    patient = ExportedPatientSerializer()
    problems = ConditionSerializer(many=True)
    allergies = AllergySerializer(many=True)
    medications = MedicationSerializer(many=True)
    observations = ObservationSerializer(many=True)
    encounters = ExportedEncounterSerializer(many=True)
    documents = DocumentSerializer(many=True, help_text="Metadata only; download each through its content URL.")


class PatientRecordExportSerializer(serializers.Serializer[Any]):
    format = serializers.CharField()
    version = serializers.IntegerField()
    exported_at = serializers.DateTimeField()
    exported_by_id = serializers.IntegerField()
    exported_by_display_name = serializers.CharField()
    purpose = serializers.CharField()
    record = PatientRecordSerializer()


class PatientRecordExportApi(APIView):
    """The patient's whole record as a JSON download (the patient's clinicians; the patient themselves)."""

    @extend_schema(
        operation_id="patients_export",
        parameters=[RecordExportQuerySerializer],
        responses={200: PatientRecordExportSerializer, **ERRORS},
    )
    def get(self, request: Request, patient_id: int) -> Response:
        query = RecordExportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        with clinical_errors():
            export = patient_record_export(
                actor=_actor(request),
                patient_id=patient_id,
                purpose=query.validated_data["purpose"],
                request=request._request,
            )
        response = Response(PatientRecordExportSerializer(export).data)
        filename = f"consulta-record-{patient_id}-{timezone.localdate(export.exported_at):%Y%m%d}.json"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        response["Cache-Control"] = "no-store"
        response["X-Content-Type-Options"] = "nosniff"
        return response
