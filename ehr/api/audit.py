"""Admin console: search the audit log."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ehr import selectors
from ehr.api.permissions import IsAdminRole
from ehr.models import AuditAction, AuditEvent, AuditOutcome


class AuditEventRowSerializer(serializers.ModelSerializer[AuditEvent]):
    actor_username = serializers.CharField(source="actor.username", default=None, allow_null=True)
    actor_name = serializers.CharField(source="actor.display_name", default=None, allow_null=True)
    sealed = serializers.SerializerMethodField()

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "occurred_at",
            "actor_username",
            "actor_name",
            "actor_role",
            "action",
            "entity_type",
            "entity_id",
            "patient_id",
            "purpose",
            "outcome",
            "channel",
            "source_ip",
            "sealed",
        ]
        read_only_fields = fields

    def get_sealed(self, row: AuditEvent) -> bool:
        return row.chain_position is not None


class AuditQuerySerializer(serializers.Serializer[object]):
    patient_id = serializers.IntegerField(min_value=1, required=False)
    actor = serializers.CharField(max_length=150, required=False, help_text="Username of the actor.")
    action = serializers.ChoiceField(choices=AuditAction.choices, required=False)
    outcome = serializers.ChoiceField(choices=AuditOutcome.choices, required=False)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)

    def validate(self, attrs: dict[str, object]) -> dict[str, object]:
        since, until = attrs.get("since"), attrs.get("until")
        if since and until and since > until:  # type: ignore[operator]
            raise serializers.ValidationError({"until": ["Must not be before 'since'."]})
        return attrs


class AuditPagination(PageNumberPagination):
    page_size = 50


class AuditEventListApi(APIView):
    """Newest first. Reading the audit log is itself audited (filters named, never their values)."""

    permission_classes = [IsAdminRole]
    pagination_class = AuditPagination

    @extend_schema(parameters=[AuditQuerySerializer], responses=AuditEventRowSerializer(many=True))
    def get(self, request: Request) -> Response:
        query = AuditQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        rows = selectors.audit_event_list(
            viewer=request.user,  # type: ignore[arg-type]
            request=request._request,
            patient_id=data.get("patient_id"),
            actor_username=data.get("actor"),
            action=data.get("action"),
            outcome=data.get("outcome"),
            since=data.get("since"),
            until=data.get("until"),
        )
        paginator = AuditPagination()
        page = paginator.paginate_queryset(rows, request, self)
        return paginator.get_paginated_response(AuditEventRowSerializer(page, many=True).data)
