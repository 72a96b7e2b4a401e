"""Recurring appointments over HTTP: book a series, read it with every occurrence's status, cancel what remains.
Views parse, call one service, and serialize; errors go through ``scheduling_errors`` like every scheduling view,
and a refused occurrence is named in the body (docs/scheduling.md, "Recurring appointments")."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.errors import ApiError
from ehr.api.patients import _actor
from ehr.models import User
from scheduling.api.serializers import AppointmentSerializer
from scheduling.api.views import (
    ERRORS,
    WRITE_ERRORS,
    _appointment_json,
    _names,
    _patient_id_for,
    _valid,
    scheduling_errors,
)
from scheduling.dto import SeriesRef
from scheduling.services import series as series_services
from scheduling.services.series import SeriesOccurrenceRefused

# --- shapes -----------------------------------------------------------------------------------------------------


class SeriesBookSerializer(serializers.Serializer[Any]):
    appointment_type_id = serializers.IntegerField()
    patient_id = serializers.IntegerField(required=False, help_text="Staff: whom to book. Patients: omit (self).")
    practitioner_id = serializers.IntegerField()
    first_start = serializers.CharField(
        help_text="Wall-clock date-time of the first occurrence WITHOUT a UTC offset, e.g. 2031-03-03T09:00; "
        "every occurrence keeps this local time in time_zone across daylight-saving changes."
    )
    time_zone = serializers.CharField(help_text="IANA zone the wall-clock times are in, e.g. Europe/Lisbon.")
    rrule = serializers.CharField(
        max_length=series_services.RRULE_MAX_LENGTH,
        help_text="RFC 5545 RRULE (subset): FREQ, INTERVAL, COUNT or UNTIL, BYDAY, BYMONTHDAY, WKST; at most "
        f"{series_services.MAX_OCCURRENCES} occurrences. E.g. FREQ=WEEKLY;BYDAY=MO;COUNT=10.",
    )
    resource_ids = serializers.ListField(child=serializers.IntegerField(), required=False, max_length=10)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=500)


class SeriesCancelSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=500)
    from_start = serializers.DateTimeField(
        required=False, help_text="Cancel occurrences starting at or after this instant (default: now)."
    )


class SeriesSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    patient_id = serializers.IntegerField()
    appointment_type_id = serializers.IntegerField()
    rrule = serializers.CharField()
    time_zone = serializers.CharField()
    first_start = serializers.DateTimeField(help_text="The first occurrence's instant (UTC).")
    first_start_local = serializers.CharField(help_text="Its wall-clock time in time_zone, without an offset.")
    created_at = serializers.DateTimeField()
    occurrences = AppointmentSerializer(many=True)


# --- helpers ----------------------------------------------------------------------------------------------------


def _wall_clock(value: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise serializers.ValidationError({"first_start": ["Not an ISO 8601 date-time."]}) from None
    if parsed.tzinfo is not None:
        raise serializers.ValidationError(
            {"first_start": ["Give the wall-clock time without a UTC offset; time_zone says where."]}
        )
    return parsed


def _series_json(actor: User, ref: SeriesRef, request: Request) -> dict[str, Any]:
    names = _names(actor, list(ref.occurrences), request._request)
    return {
        "id": ref.id,
        "patient_id": ref.patient_id,
        "appointment_type_id": ref.appointment_type_id,
        "rrule": ref.rrule,
        "time_zone": ref.time_zone,
        "first_start": ref.first_start,
        "first_start_local": ref.first_start_local.isoformat(timespec="minutes"),
        "created_at": ref.created_at,
        "occurrences": [_appointment_json(o, names) for o in ref.occurrences],
    }


@contextmanager
def series_errors() -> Iterator[None]:
    """``scheduling_errors``, plus: a refused occurrence answers with its cause's code and status (e.g. 409
    ``slot_unavailable`` with ``conflicting_resource``) and an ``occurrence`` member naming it."""
    with scheduling_errors():
        try:
            yield
        except SeriesOccurrenceRefused as refused:
            raise _occurrence_error(refused) from None


def _occurrence_error(refused: SeriesOccurrenceRefused) -> ApiError:
    occurrence = {
        "index": refused.index,
        "date": refused.local_start.date().isoformat(),
        "local_start": refused.local_start.isoformat(timespec="minutes"),
        "time_zone": refused.time_zone,
    }
    detail = str(refused)[:1].upper() + str(refused)[1:] + "."
    try:
        with scheduling_errors():  # the cause's own shape (conflicting_resource, resource_kind, fields ...)
            raise refused.cause
    except ApiError as shaped:
        return ApiError(
            shaped.error_code, detail, status_code=shaped.status_code, extra={**shaped.extra, "occurrence": occurrence}
        )
    except serializers.ValidationError as invalid:
        fields = invalid.detail if isinstance(invalid.detail, dict) else {}
        return ApiError(
            "invalid",
            detail,
            extra={"fields": {k: [str(m) for m in v] for k, v in fields.items()}, "occurrence": occurrence},
        )
    raise AssertionError("scheduling_errors translates every SchedulingError")  # pragma: no cover


# --- views ------------------------------------------------------------------------------------------------------


class AppointmentSeriesListApi(APIView):
    """Book a recurring series (staff for a patient they may schedule; a patient for themselves): every occurrence
    or none."""

    @extend_schema(
        operation_id="scheduling_series_book",
        request=SeriesBookSerializer,
        responses={201: SeriesSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        actor = _actor(request)
        data = _valid(SeriesBookSerializer, request.data)
        first_start_local = _wall_clock(data["first_start"])
        with series_errors():
            ref = series_services.series_book(
                actor=actor,
                appointment_type_id=data["appointment_type_id"],
                patient_id=_patient_id_for(actor, data.get("patient_id")),
                practitioner_id=data["practitioner_id"],
                first_start_local=first_start_local,
                time_zone=data["time_zone"],
                rrule=data["rrule"],
                resource_ids=data.get("resource_ids"),
                comment=data.get("comment", ""),
                request=request._request,
            )
        return Response(_series_json(actor, ref, request), status=status.HTTP_201_CREATED)


class AppointmentSeriesApi(APIView):
    """A series with every occurrence and its own status (whoever may book for its patient; others get 404)."""

    @extend_schema(operation_id="scheduling_series_get", responses={200: SeriesSerializer, **ERRORS})
    def get(self, request: Request, series_id: int) -> Response:
        actor = _actor(request)
        with series_errors():
            series_services.series_authorise(actor=actor, series_id=series_id, request=request._request)
        ref = series_services.series_get(series_id=series_id)
        if ref is None:
            raise ApiError("not_found", "No such series.", status_code=404)
        return Response(_series_json(actor, ref, request))


class AppointmentSeriesCancelApi(APIView):
    """Cancel the remaining occurrences of a series (all or none); past and already-cancelled ones stay as they
    are."""

    @extend_schema(
        operation_id="scheduling_series_cancel",
        request=SeriesCancelSerializer,
        responses={200: SeriesSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, series_id: int) -> Response:
        actor = _actor(request)
        data = _valid(SeriesCancelSerializer, request.data)
        with series_errors():
            ref = series_services.series_cancel(
                actor=actor,
                series_id=series_id,
                reason=data["reason"],
                from_start=data.get("from_start"),
                request=request._request,
            )
        return Response(_series_json(actor, ref, request))
