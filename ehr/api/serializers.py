"""Serializers of the identity API."""

from __future__ import annotations

from rest_framework import serializers

from core.realtime.streams import session_stream_id
from ehr.models import Location, Organization, Role, User


class LoginSerializer(serializers.Serializer[object]):
    username = serializers.CharField(max_length=150, trim_whitespace=True)
    password = serializers.CharField(max_length=256, trim_whitespace=False, style={"input_type": "password"})


class CsrfSerializer(serializers.Serializer[object]):
    csrfToken = serializers.CharField()  # noqa: N815 -- JSON field name the SPA reads


class OrganizationRefSerializer(serializers.ModelSerializer[Organization]):
    class Meta:
        model = Organization
        fields = ["id", "name"]


class LocationRefSerializer(serializers.ModelSerializer[Location]):
    class Meta:
        model = Location
        fields = ["id", "name", "timezone"]


class MeSerializer(serializers.ModelSerializer[User]):
    roles = serializers.ListField(child=serializers.ChoiceField(choices=Role.choices))
    primary_role = serializers.ChoiceField(choices=Role.choices)
    display_name = serializers.CharField()
    organization = OrganizationRefSerializer(allow_null=True)
    locations = LocationRefSerializer(many=True)
    session = serializers.SerializerMethodField()
    patient_id = serializers.SerializerMethodField(help_text="The signed-in person's own patient record, if any.")

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "first_name",
            "last_name",
            "display_name",
            "email",
            "roles",
            "primary_role",
            "organization",
            "locations",
            "session",
            "patient_id",
        ]

    def get_patient_id(self, user: User) -> int | None:
        record = getattr(user, "patient_record", None)
        return record.pk if record is not None else None

    def get_session(self, user: User) -> str:
        key = self.context["request"].session.session_key
        return session_stream_id(key) if key else ""


class UserRowSerializer(serializers.ModelSerializer[User]):
    roles = serializers.ListField(child=serializers.ChoiceField(choices=Role.choices))
    display_name = serializers.CharField()

    class Meta:
        model = User
        fields = ["id", "username", "display_name", "roles", "is_active", "last_login"]
        read_only_fields = fields


class UserListQuerySerializer(serializers.Serializer[object]):
    search = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
