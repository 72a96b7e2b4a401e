"""Patient API: search, register (duplicate warning), read (ETag), update (If-Match), identifiers, history, merge.

Views parse, call one service or selector, and serialize; access decisions and auditing live in ``ehr.access`` and
the services/selectors. Search terms arrive as query parameters and are never logged or audited.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.errors import ApiError, ApiErrorSerializer
from ehr import selectors
from ehr.api.patient_serializers import (
    DuplicateCandidateSerializer,
    DuplicateSuspectedErrorSerializer,
    EnteredInErrorSerializer,
    MergeVersionConflictErrorSerializer,
    PatientDetailSerializer,
    PatientHistoryEntrySerializer,
    PatientHistorySerializer,
    PatientIdentifiersQuerySerializer,
    PatientIdentifiersSerializer,
    PatientMergeSerializer,
    PatientSearchQuerySerializer,
    PatientSearchResultSerializer,
    PatientSummarySerializer,
    PatientUpdateSerializer,
    PatientWriteSerializer,
    VersionConflictErrorSerializer,
)
from ehr.errors import (
    AccessDenied,
    BreakGlassRequired,
    CareTeamOverlap,
    DuplicateSuspected,
    InvalidPatientData,
    MergePatientNotActive,
    MergePortalAccountConflict,
    MergeSamePatient,
    MergeVersionConflict,
    PatientAlreadyMerged,
    PatientNotFound,
    VersionConflict,
)
from ehr.models import Patient, User
from ehr.services.patients import (
    PatientInput,
    patient_mark_entered_in_error,
    patient_merge,
    patient_register,
    patient_update,
)

_IF_MATCH = re.compile(r'^"([0-9]{1,9})"$')

IF_MATCH = OpenApiParameter(
    "If-Match",
    type=str,
    location=OpenApiParameter.HEADER,
    required=True,
    description='The ETag of the version the change is based on, e.g. "3".',
)
ETAG = OpenApiParameter(
    "ETag", type=str, location=OpenApiParameter.HEADER, response=True, description='Version of the record, e.g. "3".'
)
ERRORS = {400: ApiErrorSerializer, 403: ApiErrorSerializer, 404: ApiErrorSerializer}


@contextmanager
def ehr_errors() -> Iterator[None]:
    """Translate the services' typed errors into the API's error shape."""
    try:
        yield
    except BreakGlassRequired:
        raise ApiError(
            "break_glass_required",
            "This patient is not in your care. Open the record in an emergency (break-the-glass) with a reason.",
            status_code=403,
        ) from None
    except AccessDenied:
        raise ApiError(
            "permission_denied", "You may not do this with this patient's record.", status_code=403
        ) from None
    except PatientNotFound:
        raise ApiError("not_found", "No such patient.", status_code=404) from None
    except VersionConflict as exc:
        raise ApiError(
            "version_conflict",
            "The record changed since you read it. Reload it and apply your change again.",
            status_code=412,
            extra={"current_version": exc.current_version},
        ) from None
    except InvalidPatientData as exc:
        raise serializers.ValidationError(exc.fields) from None


@contextmanager
def duplicate_errors(request: Request, override: str) -> Iterator[None]:
    """``DuplicateSuspected`` -> 409 ``duplicate_suspected`` with the candidates' summaries (an audited read,
    purpose ``duplicate_check``); ``override`` names what the client repeats with ``"allow_duplicate": true``."""
    try:
        yield
    except DuplicateSuspected as exc:
        candidates = selectors.patient_summaries(
            actor=_actor(request), patient_ids=exc.candidate_ids, purpose="duplicate_check", request=request._request
        )
        raise ApiError(
            "duplicate_suspected",
            f'This person may already be registered. Open the existing record, or {override} with "allow_duplicate": '
            "true.",
            status_code=409,
            extra={"candidates": DuplicateCandidateSerializer(candidates, many=True).data},
        ) from None


def _actor(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)  # IsAuthenticated (the default permission) ran first
    return user


def _with_etag(response: Response, patient: Patient) -> Response:
    response["ETag"] = f'"{patient.version}"'
    return response


def _expected_version(request: Request) -> int:
    header = request.headers.get("If-Match", "").strip()
    if not header:
        raise ApiError(
            "precondition_required",
            'Send If-Match with the ETag of the version you read, e.g. If-Match: "3".',
            status_code=status.HTTP_428_PRECONDITION_REQUIRED,
        )
    match = _IF_MATCH.match(header)
    if match is None:
        raise ApiError("invalid_if_match", 'If-Match must be one version ETag, e.g. "3" (not * or a list).')
    return int(match.group(1))


def _reject_unknown(data: Any, serializer: serializers.Serializer[Any]) -> None:
    if not isinstance(data, dict):
        raise serializers.ValidationError({"non_field_errors": ["Send a JSON object."]})
    unknown = sorted(set(data) - set(serializer.fields))
    if unknown:
        raise serializers.ValidationError({name: ["Unknown or read-only field."] for name in unknown})


class PatientListApi(APIView):
    """Search patients (staff) and register new ones (staff), with a duplicate warning."""

    @extend_schema(
        operation_id="patients_search",
        parameters=[PatientSearchQuerySerializer],
        responses={200: PatientSearchResultSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        query = PatientSearchQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        with ehr_errors():
            results = selectors.patient_search(
                actor=_actor(request),
                query=params["q"],
                birth_date=params["birth_date"],
                mrn=params["mrn"],
                identifier=params["identifier"],
                limit=params["limit"],
                request=request._request,
            )
        return Response({"results": PatientSummarySerializer(results, many=True).data})

    @extend_schema(
        operation_id="patients_register",
        request=PatientWriteSerializer,
        responses={201: PatientDetailSerializer, 409: DuplicateSuspectedErrorSerializer, **ERRORS},
        parameters=[ETAG],
    )
    def post(self, request: Request) -> Response:
        form = PatientWriteSerializer(data=request.data)
        _reject_unknown(request.data, form)
        form.is_valid(raise_exception=True)
        body = dict(form.validated_data)
        allow_duplicate = body.pop("allow_duplicate")
        reason = body.pop("reason", "") or "registration"
        actor = _actor(request)
        with ehr_errors(), duplicate_errors(request, "register anyway"):
            patient = patient_register(
                actor=actor,
                data=PatientInput(**body),
                reason=reason,
                allow_duplicate=allow_duplicate,
                request=request._request,
            )
        return _with_etag(Response(PatientDetailSerializer(patient).data, status=status.HTTP_201_CREATED), patient)


class PatientDetailApi(APIView):
    """Read one record (with its ETag) and change it (If-Match required)."""

    @extend_schema(
        operation_id="patients_retrieve", responses={200: PatientDetailSerializer, **ERRORS}, parameters=[ETAG]
    )
    def get(self, request: Request, patient_id: int) -> Response:
        with ehr_errors():
            patient = selectors.patient_get(actor=_actor(request), patient_id=patient_id, request=request._request)
        return _with_etag(Response(PatientDetailSerializer(patient).data), patient)

    @extend_schema(
        operation_id="patients_update",
        request=PatientUpdateSerializer,
        parameters=[IF_MATCH, ETAG],
        responses={
            200: PatientDetailSerializer,
            409: DuplicateSuspectedErrorSerializer,
            412: VersionConflictErrorSerializer,
            428: ApiErrorSerializer,
            **ERRORS,
        },
    )
    def patch(self, request: Request, patient_id: int) -> Response:
        expected = _expected_version(request)
        form = PatientUpdateSerializer(data=request.data)
        _reject_unknown(request.data, form)
        form.is_valid(raise_exception=True)
        changes = dict(form.validated_data)
        reason = changes.pop("reason")
        allow_duplicate = changes.pop("allow_duplicate")
        with ehr_errors(), duplicate_errors(request, "save anyway"):
            patient = patient_update(
                actor=_actor(request),
                patient_id=patient_id,
                expected_version=expected,
                changes=changes,
                reason=reason,
                allow_duplicate=allow_duplicate,
                request=request._request,
            )
        return _with_etag(Response(PatientDetailSerializer(patient).data), patient)


class PatientEnteredInErrorApi(APIView):
    """Mark a record entered-in-error (a new version; nothing is deleted). If-Match required."""

    @extend_schema(
        operation_id="patients_mark_entered_in_error",
        request=EnteredInErrorSerializer,
        parameters=[IF_MATCH, ETAG],
        responses={
            200: PatientDetailSerializer,
            412: VersionConflictErrorSerializer,
            428: ApiErrorSerializer,
            **ERRORS,
        },
    )
    def post(self, request: Request, patient_id: int) -> Response:
        expected = _expected_version(request)
        form = EnteredInErrorSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        with ehr_errors():
            patient = patient_mark_entered_in_error(
                actor=_actor(request),
                patient_id=patient_id,
                expected_version=expected,
                reason=form.validated_data["reason"],
                request=request._request,
            )
        return _with_etag(Response(PatientDetailSerializer(patient).data), patient)


class PatientIdentifiersApi(APIView):
    """The full national and insurance identifiers, for staff other than schedulers; audited with the purpose."""

    @extend_schema(
        operation_id="patients_identifiers",
        parameters=[PatientIdentifiersQuerySerializer],
        responses={200: PatientIdentifiersSerializer, **ERRORS},
    )
    def get(self, request: Request, patient_id: int) -> Response:
        query = PatientIdentifiersQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        with ehr_errors():
            identifiers = selectors.patient_identifiers_get(
                actor=_actor(request),
                patient_id=patient_id,
                purpose=query.validated_data["purpose"],
                request=request._request,
            )
        response = Response(PatientIdentifiersSerializer(identifiers).data)
        response["Cache-Control"] = "no-store"
        return response


class PatientHistoryApi(APIView):
    """Every version of the record, oldest first, with who, when, why and the field-level diff."""

    @extend_schema(operation_id="patients_history", responses={200: PatientHistorySerializer, **ERRORS})
    def get(self, request: Request, patient_id: int) -> Response:
        with ehr_errors():
            entries = selectors.patient_history(actor=_actor(request), patient_id=patient_id, request=request._request)
        return Response({"results": PatientHistoryEntrySerializer(entries, many=True).data})


@contextmanager
def merge_errors() -> Iterator[None]:
    """The merge's refusals in the API's error shape (inside ``ehr_errors``, which handles the rest)."""
    try:
        yield
    except MergeSamePatient:
        raise ApiError("merge_same_patient", "Choose another record to merge this one into.") from None
    except PatientAlreadyMerged as exc:
        raise ApiError(
            "patient_already_merged",
            "This record was already merged into another record.",
            status_code=409,
            extra={"merged_into": exc.merged_into_id},
        ) from None
    except MergePatientNotActive as exc:
        raise ApiError(
            "merge_patient_not_active",
            f"The {'surviving' if exc.record == 'target' else 'duplicate'} record is {exc.status}; only active "
            "records can be merged.",
            status_code=409,
            extra={"record": exc.record, "status": exc.status, "merged_into": exc.merged_into_id},
        ) from None
    except MergePortalAccountConflict:
        raise ApiError(
            "merge_portal_account_conflict",
            "Both records have a patient-portal login. Decide which account the person keeps and unlink the other "
            "first.",
            status_code=409,
        ) from None
    except MergeVersionConflict as exc:
        raise ApiError(
            "version_conflict",
            f"The {'surviving' if exc.record == 'target' else 'duplicate'} record changed since you read it. Reload "
            "both and confirm the merge again.",
            status_code=412,
            extra={"current_version": exc.current_version, "record": exc.record},
        ) from None
    except CareTeamOverlap:
        raise ApiError(
            "care_team_overlap",
            "The surviving record's care team changed during the merge. Try again.",
            status_code=409,
        ) from None


class PatientMergeApi(APIView):
    """Merge this record (a duplicate) into the surviving record: everything clinical moves, both get a new version,
    both are audited. Admins and schedulers."""

    @extend_schema(
        operation_id="patients_merge",
        request=PatientMergeSerializer,
        parameters=[ETAG],
        responses={
            200: PatientDetailSerializer,
            409: ApiErrorSerializer,
            412: MergeVersionConflictErrorSerializer,
            **ERRORS,
        },
    )
    def post(self, request: Request, patient_id: int) -> Response:
        form = PatientMergeSerializer(data=request.data)
        _reject_unknown(request.data, form)
        form.is_valid(raise_exception=True)
        body = form.validated_data
        with ehr_errors(), merge_errors():
            target = patient_merge(
                actor=_actor(request),
                source_patient_id=patient_id,
                target_patient_id=body["into"],
                expected_source_version=body["source_version"],
                expected_target_version=body["target_version"],
                reason=body["reason"],
                request=request._request,
            )
        return _with_etag(Response(PatientDetailSerializer(target).data), target)
