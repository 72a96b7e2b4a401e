"""Serializers of the Patient API. Shapes only: the service validates the domain rules (birth date range, phone,
country and language codes) and reports them in the same ``{"code": "invalid", "fields": {...}}`` shape."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ehr import crypto
from ehr.dto import PatientHistoryEntry, PatientIdentifiers
from ehr.models import AdministrativeGender, Patient, PatientStatus


def _text(max_length: int, **kwargs: Any) -> serializers.CharField:
    return serializers.CharField(max_length=max_length, required=False, allow_blank=True, **kwargs)


class PatientWriteSerializer(serializers.Serializer[object]):
    """Registration body. Identifiers are write-only plaintext; they are encrypted before they are stored."""

    given_name = serializers.CharField(max_length=100)
    family_name = serializers.CharField(max_length=100)
    birth_date = serializers.DateField()
    sex = serializers.ChoiceField(choices=AdministrativeGender.choices)
    gender_identity = _text(100)
    phone = _text(32)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    address_line = _text(200)
    city = _text(100)
    postal_code = _text(20)
    country = _text(2, help_text="ISO 3166-1 alpha-2, e.g. PT")
    preferred_language = _text(35, help_text="BCP 47 tag, default en")
    emergency_contact_name = _text(200)
    emergency_contact_phone = _text(32)
    national_id = _text(60, write_only=True, trim_whitespace=True)
    insurance_member_id = _text(60, write_only=True, trim_whitespace=True)
    user_id = serializers.IntegerField(required=False, allow_null=True, help_text="Portal account to link")
    allow_duplicate = serializers.BooleanField(required=False, default=False)
    reason = _text(500)


class PatientUpdateSerializer(serializers.Serializer[object]):
    """PATCH body: any demographic field or identifier, plus the ``reason`` for the change (required)."""

    given_name = serializers.CharField(max_length=100, required=False)
    family_name = serializers.CharField(max_length=100, required=False)
    birth_date = serializers.DateField(required=False)
    sex = serializers.ChoiceField(choices=AdministrativeGender.choices, required=False)
    gender_identity = _text(100)
    phone = _text(32)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    address_line = _text(200)
    city = _text(100)
    postal_code = _text(20)
    country = _text(2)
    preferred_language = _text(35)
    emergency_contact_name = _text(200)
    emergency_contact_phone = _text(32)
    national_id = _text(60, write_only=True)
    insurance_member_id = _text(60, write_only=True)
    reason = serializers.CharField(max_length=500)
    allow_duplicate = serializers.BooleanField(
        required=False, default=False, help_text="Save even though the changed record looks like another patient."
    )


class EnteredInErrorSerializer(serializers.Serializer[object]):
    reason = serializers.CharField(max_length=500)


class PatientMergeSerializer(serializers.Serializer[object]):
    """Merge this record (the duplicate) ``into`` the surviving one; both versions as read (ETags)."""

    into = serializers.IntegerField(min_value=1, help_text="Id of the surviving record")
    reason = serializers.CharField(max_length=500)
    source_version = serializers.IntegerField(min_value=1, help_text="Version of this record, as read")
    target_version = serializers.IntegerField(min_value=1, help_text="Version of the surviving record, as read")


class MergeVersionConflictErrorSerializer(serializers.Serializer[object]):
    """412 of a merge: ``record`` (``source`` or ``target``) changed since it was read."""

    code = serializers.CharField()
    detail = serializers.CharField()
    current_version = serializers.IntegerField()
    record = serializers.ChoiceField(choices=["source", "target"])


class PatientSummarySerializer(serializers.ModelSerializer[Patient]):
    display_name = serializers.CharField()
    sex = serializers.ChoiceField(choices=AdministrativeGender.choices)
    status = serializers.ChoiceField(choices=PatientStatus.choices)

    class Meta:
        model = Patient
        fields = ["id", "mrn", "display_name", "birth_date", "sex", "status"]
        read_only_fields = fields


class PatientSearchResultSerializer(serializers.Serializer[object]):
    results = PatientSummarySerializer(many=True)


def _masked(token: str) -> str | None:
    return crypto.mask_identifier(crypto.decrypt_identifier(token)) if token else None


class PatientDetailSerializer(serializers.ModelSerializer[Patient]):
    """The record as staff (or the patient) see it; identifiers masked (``"•••• 1234"``)."""

    display_name = serializers.CharField()
    sex = serializers.ChoiceField(choices=AdministrativeGender.choices)
    status = serializers.ChoiceField(choices=PatientStatus.choices)
    user_id = serializers.IntegerField(allow_null=True)
    merged_into = serializers.IntegerField(
        source="merged_into_id", allow_null=True, help_text="When merged: the surviving record's id"
    )
    national_id = serializers.SerializerMethodField()
    insurance_member_id = serializers.SerializerMethodField()

    class Meta:
        model = Patient
        fields = [
            "id",
            "mrn",
            "display_name",
            "given_name",
            "family_name",
            "birth_date",
            "sex",
            "gender_identity",
            "phone",
            "email",
            "address_line",
            "city",
            "postal_code",
            "country",
            "preferred_language",
            "emergency_contact_name",
            "emergency_contact_phone",
            "national_id",
            "insurance_member_id",
            "user_id",
            "status",
            "merged_into",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_national_id(self, patient: Patient) -> str | None:
        return _masked(patient.national_id_encrypted)

    def get_insurance_member_id(self, patient: Patient) -> str | None:
        return _masked(patient.insurance_member_id_encrypted)


class PatientIdentifiersSerializer(serializers.Serializer[PatientIdentifiers]):
    national_id = serializers.CharField(allow_blank=True)
    insurance_member_id = serializers.CharField(allow_blank=True)


IDENTIFIER_PURPOSES = [
    ("treatment", "Treatment"),
    ("payment", "Payment / insurance"),
    ("operations", "Healthcare operations"),
    ("registration", "Registration / identity check"),
    ("patient_request", "Requested by the patient"),
]


class PatientIdentifiersQuerySerializer(serializers.Serializer[object]):
    purpose = serializers.ChoiceField(choices=IDENTIFIER_PURPOSES, help_text="Why the full identifiers are needed")


class PatientSearchQuerySerializer(serializers.Serializer[object]):
    q = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    birth_date = serializers.DateField(required=False, allow_null=True, default=None)
    mrn = serializers.RegexField(r"^(?i:MRN)?[0-9]{1,8}$", required=False, allow_blank=True, default="")
    identifier = serializers.CharField(max_length=60, required=False, allow_blank=True, default="")
    limit = serializers.IntegerField(min_value=1, max_value=100, required=False, default=25)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not (attrs["q"].strip() or attrs["birth_date"] or attrs["mrn"] or attrs["identifier"].strip()):
            raise serializers.ValidationError({"q": ["Give a name, birth date, MRN or identifier to search by."]})
        if attrs["q"].strip() and len(attrs["q"].strip()) < 2:
            raise serializers.ValidationError({"q": ["At least 2 characters."]})
        mrn = attrs["mrn"].upper().removeprefix("MRN")
        attrs["mrn"] = f"MRN{int(mrn):08d}" if mrn else ""
        return attrs


class FieldChangeSerializer(serializers.Serializer[Any]):
    """``{"field", "from", "to"}`` (``from`` is a Python keyword, hence ``get_fields``)."""

    field = serializers.CharField()
    to = serializers.JSONField(source="after", allow_null=True)

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        fields = super().get_fields()
        return {
            "field": fields["field"],
            "from": serializers.JSONField(source="before", allow_null=True),
            "to": fields["to"],
        }


class ActorRefSerializer(serializers.Serializer[object]):
    id = serializers.IntegerField()
    display_name = serializers.CharField()


class PatientHistoryEntrySerializer(serializers.Serializer[Any]):
    version = serializers.IntegerField()
    changed_fields = serializers.ListField(child=serializers.CharField())
    actor = serializers.SerializerMethodField()
    reason = serializers.CharField()
    recorded_at = serializers.DateTimeField()
    diff = FieldChangeSerializer(many=True)

    @extend_schema_field(ActorRefSerializer)
    def get_actor(self, entry: PatientHistoryEntry) -> dict[str, Any]:
        return {"id": entry.actor_id, "display_name": entry.actor_display_name}


class PatientHistorySerializer(serializers.Serializer[object]):
    results = PatientHistoryEntrySerializer(many=True)


class DuplicateCandidateSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    mrn = serializers.CharField()
    name = serializers.CharField(source="display_name")
    birth_date = serializers.DateField()


class DuplicateSuspectedErrorSerializer(serializers.Serializer[object]):
    """409 body: the records the new registration (or the record as the update would make it) may duplicate. Repeat
    with ``allow_duplicate: true`` to go ahead anyway."""

    code = serializers.CharField()
    detail = serializers.CharField()
    candidates = DuplicateCandidateSerializer(many=True)


class VersionConflictErrorSerializer(serializers.Serializer[object]):
    code = serializers.CharField()
    detail = serializers.CharField()
    current_version = serializers.IntegerField()
