"""Access API: care teams, break-the-glass (request and admin review) and the patient's own access log.

Views parse, call one service or selector, and serialize; the decisions live in ``ehr.access``. Denials answer 403
``permission_denied``, or ``break_glass_required`` when an emergency grant would lift them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.errors import ApiError, ApiErrorSerializer
from ehr import selectors
from ehr.api.patients import _actor, ehr_errors
from ehr.errors import (
    BreakGlassAlreadyReviewed,
    BreakGlassGrantNotFound,
    CannotReviewOwnBreakGlass,
    CareTeamAlreadyEnded,
    CareTeamMemberNotFound,
    CareTeamOverlap,
    InvalidAccessRequest,
    NoPatientRecord,
)
from ehr.models import BreakGlassGrant, BreakGlassReview, CareTeamMember, CareTeamRole, User
from ehr.models.access import BREAK_GLASS_REASON_MIN_LENGTH
from ehr.services.access import break_glass_grant, break_glass_review, care_team_add, care_team_end

ERRORS = {400: ApiErrorSerializer, 403: ApiErrorSerializer, 404: ApiErrorSerializer}


@contextmanager
def access_errors() -> Iterator[None]:
    """Translate the access services' typed errors into the API's error shape (then the patient ones:
    break-the-glass required, access denied, patient not found)."""
    with ehr_errors():
        try:
            yield
        except CareTeamMemberNotFound:
            raise ApiError("not_found", "No such care-team membership.", status_code=404) from None
        except BreakGlassGrantNotFound:
            raise ApiError("not_found", "No such break-the-glass access.", status_code=404) from None
        except NoPatientRecord:
            raise ApiError(
                "no_patient_record", "Your account is not linked to a patient record.", status_code=404
            ) from None
        except CareTeamOverlap:
            raise ApiError(
                "care_team_overlap",
                "This person is already on the patient's care team for that period.",
                status_code=409,
            ) from None
        except CareTeamAlreadyEnded:
            raise ApiError("care_team_already_ended", "This membership has already ended.", status_code=409) from None
        except BreakGlassAlreadyReviewed:
            raise ApiError(
                "break_glass_already_reviewed", "This access has already been reviewed.", status_code=409
            ) from None
        except CannotReviewOwnBreakGlass:
            raise ApiError(
                "cannot_review_own_break_glass",
                "Another administrator must review your own emergency access.",
                status_code=403,
            ) from None
        except InvalidAccessRequest as exc:
            raise serializers.ValidationError(exc.fields) from None


# Named schema components: the field names (role, outcome, review_status) are also used by other choice sets.
@extend_schema_field({"type": "string", "enum": CareTeamRole.values}, component_name="CareTeamRoleEnum")
class CareTeamRoleField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=CareTeamRole.choices, **kwargs)


@extend_schema_field({"type": "string", "enum": BreakGlassReview.values}, component_name="BreakGlassReviewStatusEnum")
class BreakGlassReviewStatusField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=BreakGlassReview.choices, **kwargs)


_OUTCOMES = [BreakGlassReview.APPROPRIATE.value, BreakGlassReview.INAPPROPRIATE.value]


@extend_schema_field({"type": "string", "enum": _OUTCOMES}, component_name="BreakGlassOutcomeEnum")
class BreakGlassOutcomeField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=_OUTCOMES, **kwargs)


class PersonRefSerializer(serializers.Serializer[User]):
    id = serializers.IntegerField()
    display_name = serializers.CharField()


class CareTeamMemberSerializer(serializers.ModelSerializer[CareTeamMember]):
    member = PersonRefSerializer()
    role = CareTeamRoleField(read_only=True)
    location_id = serializers.IntegerField(allow_null=True)
    location_name = serializers.CharField(source="location.name", default=None, allow_null=True)
    added_by = PersonRefSerializer()
    active = serializers.SerializerMethodField()

    class Meta:
        model = CareTeamMember
        fields = ["id", "patient_id", "member", "role", "location_id", "location_name", "start", "end", "active"]
        fields += ["added_by", "reason", "end_reason"]
        read_only_fields = fields

    def get_active(self, row: CareTeamMember) -> bool:
        now = self.context["now"]
        return bool(row.start <= now and (row.end is None or row.end > now))


class CareTeamListSerializer(serializers.Serializer[object]):
    results = CareTeamMemberSerializer(many=True)


class CareTeamAddSerializer(serializers.Serializer[object]):
    member_id = serializers.IntegerField(min_value=1)
    role = CareTeamRoleField()
    reason = serializers.CharField(max_length=500)
    end = serializers.DateTimeField(required=False, allow_null=True, default=None)
    location_id = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)


class ReasonSerializer(serializers.Serializer[object]):
    reason = serializers.CharField(max_length=500)


class BreakGlassRequestSerializer(serializers.Serializer[object]):
    reason = serializers.CharField(
        min_length=BREAK_GLASS_REASON_MIN_LENGTH,
        max_length=1000,
        help_text=f"Why you must open this record (at least {BREAK_GLASS_REASON_MIN_LENGTH} characters).",
    )


class BreakGlassGrantSerializer(serializers.ModelSerializer[BreakGlassGrant]):
    actor = PersonRefSerializer()
    actor_role = serializers.CharField(source="actor.primary_role")
    patient_id = serializers.IntegerField()
    patient_mrn = serializers.CharField(source="patient.mrn")
    patient_name = serializers.CharField(source="patient.display_name")
    reviewed_by = PersonRefSerializer(allow_null=True)
    review_status = BreakGlassReviewStatusField(read_only=True)

    class Meta:
        model = BreakGlassGrant
        fields = ["id", "actor", "actor_role", "patient_id", "patient_mrn", "patient_name", "reason", "granted_at"]
        fields += ["expires_at", "review_status", "reviewed_by", "reviewed_at", "review_note"]
        read_only_fields = fields


class BreakGlassQuerySerializer(serializers.Serializer[object]):
    review_status = BreakGlassReviewStatusField(required=False)


class BreakGlassReviewSerializer(serializers.Serializer[object]):
    outcome = BreakGlassOutcomeField()
    note = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


class AccessLogEntrySerializer(serializers.Serializer[object]):
    occurred_at = serializers.DateTimeField()
    who = serializers.CharField(help_text='Display name, "You", or "Consulta" for the system.')
    role = serializers.CharField(help_text='A human label: "Doctor", "Nurse", "Front desk", ...')
    what = serializers.CharField(help_text='A plain sentence, e.g. "viewed your record".')
    purpose = serializers.CharField()
    emergency = serializers.BooleanField()


class AccessPagination(PageNumberPagination):
    page_size = 50


class PatientCareTeamApi(APIView):
    """The patient's care team (current and past) and adding a member."""

    @extend_schema(operation_id="care_team_list", responses={200: CareTeamListSerializer, **ERRORS})
    def get(self, request: Request, patient_id: int) -> Response:

        with access_errors():
            rows = selectors.care_team_list(actor=_actor(request), patient_id=patient_id, request=request._request)
        data = CareTeamMemberSerializer(rows, many=True, context={"now": timezone.now()}).data
        return Response({"results": data})

    @extend_schema(
        operation_id="care_team_add",
        request=CareTeamAddSerializer,
        responses={201: CareTeamMemberSerializer, 409: ApiErrorSerializer, **ERRORS},
    )
    def post(self, request: Request, patient_id: int) -> Response:

        form = CareTeamAddSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        body = form.validated_data
        with access_errors():
            membership = care_team_add(
                actor=_actor(request),
                patient_id=patient_id,
                member_id=body["member_id"],
                role=body["role"],
                reason=body["reason"],
                end=body["end"],
                location_id=body["location_id"],
                request=request._request,
            )
        data = CareTeamMemberSerializer(membership, context={"now": timezone.now()}).data
        return Response(data, status=status.HTTP_201_CREATED)


class CareTeamEndApi(APIView):
    """End a care-team membership now (the row is kept)."""

    @extend_schema(
        operation_id="care_team_end",
        request=ReasonSerializer,
        responses={200: CareTeamMemberSerializer, 409: ApiErrorSerializer, **ERRORS},
    )
    def post(self, request: Request, membership_id: int) -> Response:

        form = ReasonSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        with access_errors():
            membership = care_team_end(
                actor=_actor(request),
                membership_id=membership_id,
                reason=form.validated_data["reason"],
                request=request._request,
            )
        return Response(CareTeamMemberSerializer(membership, context={"now": timezone.now()}).data)


class PatientBreakGlassApi(APIView):
    """Open a record in an emergency, with a reason: audited, flagged, and queued for administrator review."""

    @extend_schema(
        operation_id="break_glass_request",
        request=BreakGlassRequestSerializer,
        responses={201: BreakGlassGrantSerializer, **ERRORS},
    )
    def post(self, request: Request, patient_id: int) -> Response:
        form = BreakGlassRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        with access_errors():
            grant = break_glass_grant(
                actor=_actor(request),
                patient_id=patient_id,
                reason=form.validated_data["reason"],
                request=request._request,
            )
        return Response(BreakGlassGrantSerializer(grant).data, status=status.HTTP_201_CREATED)


class BreakGlassListApi(APIView):
    """The administrators' review queue, newest first (``?review_status=pending`` for what still needs review)."""

    pagination_class = AccessPagination

    @extend_schema(
        operation_id="break_glass_list",
        parameters=[BreakGlassQuerySerializer],
        responses={200: BreakGlassGrantSerializer(many=True), **ERRORS},
    )
    def get(self, request: Request) -> Response:
        query = BreakGlassQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        with access_errors():
            rows = selectors.break_glass_list(
                actor=_actor(request),
                review_status=query.validated_data.get("review_status"),
                request=request._request,
            )
        paginator = AccessPagination()
        page = paginator.paginate_queryset(rows, request, self)
        return paginator.get_paginated_response(BreakGlassGrantSerializer(page, many=True).data)


class BreakGlassReviewApi(APIView):
    """An administrator judges one emergency access (once; never their own)."""

    @extend_schema(
        operation_id="break_glass_review",
        request=BreakGlassReviewSerializer,
        responses={200: BreakGlassGrantSerializer, 409: ApiErrorSerializer, **ERRORS},
    )
    def post(self, request: Request, grant_id: int) -> Response:
        form = BreakGlassReviewSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        with access_errors():
            grant = break_glass_review(
                actor=_actor(request),
                grant_id=grant_id,
                outcome=form.validated_data["outcome"],
                note=form.validated_data["note"],
                request=request._request,
            )
        grant = BreakGlassGrant.objects.select_related("actor", "patient", "reviewed_by").get(pk=grant.pk)
        return Response(BreakGlassGrantSerializer(grant).data)


class MyAccessLogApi(APIView):
    """For a signed-in patient: who opened their record, newest first, in plain language."""

    pagination_class = AccessPagination

    @extend_schema(operation_id="access_log_me", responses={200: AccessLogEntrySerializer(many=True), **ERRORS})
    def get(self, request: Request) -> Response:
        actor = _actor(request)
        with access_errors():
            rows = selectors.access_log_for_me(actor=actor, request=request._request)
        paginator = AccessPagination()
        page = paginator.paginate_queryset(rows, request, self)
        entries = selectors.access_log_describe(list(page or []), viewer=actor)
        response = paginator.get_paginated_response(AccessLogEntrySerializer(entries, many=True).data)
        response["Cache-Control"] = "no-store"
        return response
