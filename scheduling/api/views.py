"""Scheduling API: appointment types, resources and availability, free slots, holds, bookings and their changes,
the board, the waitlist. Views parse, call one service or selector, and serialize (docs/scheduling.md)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.http import HttpRequest
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.errors import ApiError, ApiErrorSerializer
from ehr import selectors as ehr_selectors
from ehr.api.patients import IF_MATCH, _actor, _expected_version
from ehr.errors import AccessDenied
from ehr.models import Role, User
from scheduling import selectors
from scheduling.api import serializers as s
from scheduling.dto import AppointmentRef, HoldRef
from scheduling.errors import (
    InvalidBooking,
    MissingResource,
    OutsideAvailability,
    PatientRecordMerged,
    SchedulingError,
    SlotUnavailable,
    VersionConflict,
)
from scheduling.models import ResourceKind, WaitlistEntry, WaitlistOffer
from scheduling.services import availability as availability_services
from scheduling.services import booking, waitlist
from scheduling.services import status as status_services
from scheduling.timeutil import local_to_utc

ERRORS = {400: ApiErrorSerializer, 403: ApiErrorSerializer, 404: ApiErrorSerializer}
WRITE_ERRORS = {**ERRORS, 409: ApiErrorSerializer, 412: ApiErrorSerializer, 422: ApiErrorSerializer}
NAME_READERS = (Role.SCHEDULER, Role.ADMIN)
TYPE_FIELDS = (
    "id",
    "code",
    "name",
    "modality",
    "duration_minutes",
    "buffer_before_minutes",
    "buffer_after_minutes",
    "slot_interval_minutes",
    "min_notice_minutes",
    "horizon_days",
    "cancellation_window_minutes",
    "patient_bookable",
)


@contextmanager
def scheduling_errors() -> Iterator[None]:
    """Translate the services' typed errors into the API's error shape (nothing was written in any case)."""
    try:
        yield
    except InvalidBooking as exc:
        raise serializers.ValidationError(exc.fields) from None
    except VersionConflict as exc:
        raise ApiError(
            exc.code,
            "The appointment changed since you read it; reload and try again.",
            status_code=412,
            extra={"current_version": exc.current_version},
        ) from None
    except (SlotUnavailable, OutsideAvailability) as exc:
        raise ApiError(
            exc.code,
            str(exc)[:1].upper() + str(exc)[1:] + ".",
            status_code=exc.status,
            extra={"conflicting_resource": {"schedule_id": exc.schedule_id, "name": exc.schedule_name}},
        ) from None
    except PatientRecordMerged as exc:
        raise ApiError(
            exc.code,
            "This patient's record was merged into another; book on the surviving record.",
            status_code=exc.status,
            extra={"merged_into_id": exc.merged_into_id},
        ) from None
    except MissingResource as exc:
        raise ApiError(
            exc.code,
            f"No {exc.kind} is available for this time.",
            status_code=exc.status,
            extra={"resource_kind": exc.kind, "resource_category": exc.category},
        ) from None
    except SchedulingError as exc:
        raise ApiError(exc.code, str(exc)[:1].upper() + str(exc)[1:] + ".", status_code=exc.status) from None


def _patient_id_for(actor: User, requested: int | None) -> int:
    """Patients act for themselves whatever they send; staff must name the patient."""
    if actor.has_role(Role.PATIENT) and not booking.is_staff_booker(actor):
        ref = ehr_selectors.patient_ref_for_user(user_id=actor.pk)
        if ref is None:
            raise ApiError("no_patient_record", "Your account is not linked to a patient record.", status_code=403)
        if requested is not None and requested != ref.id:
            raise ApiError("permission_denied", "Patients book for themselves only.", status_code=403)
        return ref.id
    if requested is None:
        raise serializers.ValidationError({"patient_id": ["Say which patient to book."]})
    return requested


def _instant(value: str, time_zone: str | None, field: str = "start") -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise serializers.ValidationError({field: ["Not an ISO 8601 date-time."]}) from None
    if parsed.tzinfo is not None:
        return parsed.astimezone(dt.UTC)
    if not time_zone:
        raise serializers.ValidationError({field: ["Give a UTC offset, or a wall-clock time with time_zone."]})
    try:
        return local_to_utc(parsed, time_zone)
    except (KeyError, ValueError):  # zoneinfo: unknown (KeyError) or malformed (ValueError) zone names
        raise serializers.ValidationError({"time_zone": ["Not an IANA time zone."]}) from None


def _valid(serializer_class: type[serializers.Serializer[Any]], data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise serializers.ValidationError({"non_field_errors": ["Send a JSON object."]})
    serializer = serializer_class(data=data)
    unknown = sorted(set(data) - set(serializer.fields))
    if unknown:
        raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _names(actor: User, refs: list[AppointmentRef], request: HttpRequest) -> dict[int, tuple[str, str]]:
    """Patient names and MRNs for a list, read through the EHR (audited there). Schedulers and admins see every
    name; clinicians the names of patients at their own appointments; patients their own."""
    if actor.has_role(*NAME_READERS):
        ids = {r.patient_id for r in refs}
    elif actor.has_role(Role.PRACTITIONER, Role.NURSE):
        ids = {r.patient_id for r in refs if r.practitioner_id == actor.pk}
    else:
        ids = {r.patient_id for r in refs}
    if not ids:
        return {}
    try:
        found = ehr_selectors.patient_refs_get(
            actor=actor, patient_ids=sorted(ids), purpose="scheduling", request=request
        )
    except AccessDenied:
        return {}
    return {pid: (ref.display_name, ref.mrn) for pid, ref in found.items()}


def _appointment_json(ref: AppointmentRef, names: dict[int, tuple[str, str]]) -> dict[str, Any]:
    # Shallow, not dataclasses.asdict (which deep-copies every value): the same fields, the resources as dicts.
    data = {field.name: getattr(ref, field.name) for field in dataclasses.fields(ref)}
    data["resources"] = [dataclasses.asdict(resource) for resource in ref.resources]
    name, mrn = names.get(ref.patient_id, ("", ""))
    data["patient_display_name"] = name
    data["patient_mrn"] = mrn
    return data


def _one(actor: User, ref: AppointmentRef, request: Request, code: int = 200) -> Response:
    response = Response(_appointment_json(ref, _names(actor, [ref], request._request)), status=code)
    response["ETag"] = f'"{ref.version}"'
    return response


def _hold_json(ref: HoldRef) -> dict[str, Any]:
    return dataclasses.asdict(ref)


# --- configuration ----------------------------------------------------------------------------------------------


class AppointmentTypeListApi(APIView):
    """Appointment types: patients see the ones they may book themselves, staff all active ones."""

    @extend_schema(operation_id="scheduling_appointment_types", responses={200: s.AppointmentTypeListSerializer})
    def get(self, request: Request) -> Response:
        actor = _actor(request)
        results = [
            {
                **{f: getattr(t, f) for f in TYPE_FIELDS},
                "requirements": [
                    {"kind": r.kind, "category": r.category, "optional": str(r.optional).lower()}
                    for r in t.requirements.all()
                ],
            }
            for t in selectors.appointment_type_list(actor=actor)
        ]
        return Response({"results": results})


class ScheduleListApi(APIView):
    """Bookable resources (staff): practitioners, rooms, equipment, interpreters."""

    @extend_schema(
        operation_id="scheduling_schedules",
        responses={200: s.ScheduleListSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        actor = _actor(request)
        kind = request.query_params.get("kind") or None
        if kind is not None and kind not in ResourceKind.values:
            raise serializers.ValidationError({"kind": [f"One of {', '.join(ResourceKind.values)}."]})
        location = request.query_params.get("location") or None
        if location is not None and not location.isdigit():
            raise serializers.ValidationError({"location": ["A location id."]})
        found = selectors.schedule_list(
            actor=actor, kind=kind, location_id=int(location) if location is not None else None
        )
        results = [
            {
                "id": x.pk,
                "kind": x.kind,
                "name": x.name,
                "category": x.category,
                "practitioner_id": x.practitioner_id,
                "location_id": x.location_id,
                "location_name": x.location.name,
                "time_zone": x.time_zone,
            }
            for x in found
        ]
        return Response({"results": results})


def _availability_json(schedule_id: int) -> dict[str, Any]:
    found = selectors.availability_get(schedule_id=schedule_id)
    if found is None:
        raise ApiError("not_found", "No such schedule.", status_code=404)
    schedule, rules, exceptions = found
    return {
        "schedule_id": schedule.pk,
        "time_zone": schedule.time_zone,
        "rules": [
            {
                "weekday": r.weekday,
                "start_time": r.start_time.isoformat("minutes"),
                "end_time": r.end_time.isoformat("minutes"),
                "effective_from": r.effective_from.isoformat(),
                "effective_until": r.effective_until.isoformat() if r.effective_until else None,
            }
            for r in rules
        ],
        "exceptions": [
            {"id": e.pk, "kind": e.kind, "start": e.start, "end": e.end, "reason": e.reason} for e in exceptions
        ],
    }


class AvailabilityApi(APIView):
    """A resource's weekly hours and upcoming exceptions; schedulers and admins replace the weekly hours."""

    @extend_schema(operation_id="scheduling_availability_get", responses={200: s.AvailabilitySerializer, **ERRORS})
    def get(self, request: Request, schedule_id: int) -> Response:
        if not booking.is_staff_booker(_actor(request)):
            raise ApiError("permission_denied", "Staff only.", status_code=403)
        return Response(_availability_json(schedule_id))

    @extend_schema(
        operation_id="scheduling_availability_set",
        request=s.AvailabilitySerializer,
        responses={200: s.AvailabilitySerializer, **WRITE_ERRORS},
    )
    def put(self, request: Request, schedule_id: int) -> Response:
        data = _valid(s.AvailabilitySerializer, request.data)
        rules = [availability_services.WeeklyHours(**r) for r in data["rules"]]
        with scheduling_errors():
            availability_services.availability_set(actor=_actor(request), schedule_id=schedule_id, rules=rules)
        return Response(_availability_json(schedule_id))


class AvailabilityExceptionListApi(APIView):
    """Block time or add an extra session on a resource (schedulers and admins)."""

    @extend_schema(
        operation_id="scheduling_exception_add",
        request=s.AvailabilityExceptionSerializer,
        responses={201: s.AvailabilityExceptionSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, schedule_id: int) -> Response:
        data = _valid(s.AvailabilityExceptionSerializer, request.data)
        with scheduling_errors():
            exception = availability_services.availability_exception_add(
                actor=_actor(request), schedule_id=schedule_id, **data
            )
        return Response(s.AvailabilityExceptionSerializer(exception).data, status=status.HTTP_201_CREATED)


class AvailabilityExceptionApi(APIView):
    @extend_schema(operation_id="scheduling_exception_remove", responses={204: None, **ERRORS})
    def delete(self, request: Request, exception_id: int) -> Response:
        with scheduling_errors():
            availability_services.availability_exception_remove(actor=_actor(request), exception_id=exception_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- slots and holds --------------------------------------------------------------------------------------------


class FreeSlotListApi(APIView):
    """Free starts of an appointment type in a window (at most 62 days), across practitioners or for one."""

    @extend_schema(
        operation_id="scheduling_slots",
        parameters=[s.SlotQuerySerializer],
        responses={200: s.FreeSlotListSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        query = s.SlotQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        with scheduling_errors():
            slots = selectors.free_slot_search(
                actor=_actor(request),
                appointment_type_id=params["appointment_type"],
                window_start=params["start"],
                window_end=params["end"],
                practitioner_id=params.get("practitioner"),
                location_id=params.get("location"),
            )
        # Built by hand rather than with dataclasses.asdict, which deep-copies every nested value: a month of
        # free starts is hundreds of rows sharing a few resource tuples (docs/benchmarks.md).
        resources: dict[int, list[dict[str, Any]]] = {}
        results = []
        for x in slots:
            key = id(x.resources)
            if key not in resources:
                resources[key] = [{"schedule_id": r.schedule_id, "kind": r.kind, "name": r.name} for r in x.resources]
            results.append(
                {
                    "start": x.start,
                    "end": x.end,
                    "practitioner_id": x.practitioner_id,
                    "practitioner_display_name": x.practitioner_display_name,
                    "location_id": x.location_id,
                    "resources": resources[key],
                }
            )
        return Response({"results": results})


class HoldListApi(APIView):
    """Hold a free slot for ``SCHEDULING_HOLD_TTL_SECONDS`` while the booking is confirmed."""

    @extend_schema(
        operation_id="scheduling_hold_create",
        request=s.HoldRequestSerializer,
        responses={201: s.HoldSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        actor = _actor(request)
        data = _valid(s.HoldRequestSerializer, request.data)
        with scheduling_errors():
            hold = booking.hold_create(
                actor=actor,
                appointment_type_id=data["appointment_type_id"],
                patient_id=_patient_id_for(actor, data.get("patient_id")),
                start=_instant(data["start"], data.get("time_zone")),
                practitioner_id=data["practitioner_id"],
                resource_ids=data.get("resource_ids"),
                request=request._request,
            )
        return Response(_hold_json(hold), status=status.HTTP_201_CREATED)


class HoldApi(APIView):
    @extend_schema(operation_id="scheduling_hold_release", responses={204: None, **ERRORS})
    def delete(self, request: Request, hold_id: str) -> Response:
        with scheduling_errors():
            booking.hold_release(actor=_actor(request), hold_id=hold_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class HoldConfirmApi(APIView):
    @extend_schema(
        operation_id="scheduling_hold_confirm",
        request=s.HoldConfirmSerializer,
        responses={201: s.AppointmentSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, hold_id: str) -> Response:
        actor = _actor(request)
        data = _valid(s.HoldConfirmSerializer, request.data or {})
        with scheduling_errors():
            ref = booking.hold_confirm(
                actor=actor, hold_id=hold_id, comment=data.get("comment", ""), request=request._request
            )
        return _one(actor, ref, request, status.HTTP_201_CREATED)


# --- appointments -----------------------------------------------------------------------------------------------


class AppointmentListApi(APIView):
    """Staff: appointments in a window (calendar, board). Anyone allowed: book directly."""

    @extend_schema(
        operation_id="scheduling_appointments",
        parameters=[s.AppointmentWindowQuerySerializer],
        responses={200: s.AppointmentListSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        actor = _actor(request)
        query = s.AppointmentWindowQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        with scheduling_errors():
            refs = selectors.appointment_list(
                actor=actor,
                window_start=params["start"],
                window_end=params["end"],
                location_id=params.get("location"),
                practitioner_id=params.get("practitioner"),
                schedule_id=params.get("schedule"),
                statuses=sorted(params.get("status") or []),
            )
        names = _names(actor, refs, request._request)
        return Response({"results": [_appointment_json(r, names) for r in refs]})

    @extend_schema(
        operation_id="scheduling_book",
        request=s.BookingSerializer,
        responses={201: s.AppointmentSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        actor = _actor(request)
        data = _valid(s.BookingSerializer, request.data)
        with scheduling_errors():
            ref = booking.appointment_book(
                actor=actor,
                appointment_type_id=data["appointment_type_id"],
                patient_id=_patient_id_for(actor, data.get("patient_id")),
                start=_instant(data["start"], data.get("time_zone")),
                practitioner_id=data["practitioner_id"],
                resource_ids=data.get("resource_ids"),
                comment=data.get("comment", ""),
                override_reason=data.get("override_reason", ""),
                request=request._request,
            )
        return _one(actor, ref, request, status.HTTP_201_CREATED)


def _visible(actor: User, appointment_id: int, request: Request) -> AppointmentRef:
    """An appointment the actor may see (staff who may schedule its patient, or the patient), else 404."""
    with scheduling_errors():
        booking.authorise_change(actor=actor, appointment_id=appointment_id, request=request._request)
    ref = selectors.appointment_get(appointment_id=appointment_id)
    if ref is None:
        raise ApiError("not_found", "No such appointment.", status_code=404)
    return ref


class AppointmentApi(APIView):
    @extend_schema(operation_id="scheduling_appointment_get", responses={200: s.AppointmentSerializer, **ERRORS})
    def get(self, request: Request, appointment_id: int) -> Response:
        actor = _actor(request)
        return _one(actor, _visible(actor, appointment_id, request), request)


class AppointmentRescheduleApi(APIView):
    @extend_schema(
        operation_id="scheduling_reschedule",
        parameters=[IF_MATCH],
        request=s.RescheduleSerializer,
        responses={200: s.AppointmentSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, appointment_id: int) -> Response:
        actor = _actor(request)
        version = _expected_version(request)
        data = _valid(s.RescheduleSerializer, request.data)
        with scheduling_errors():
            ref = booking.appointment_reschedule(
                actor=actor,
                appointment_id=appointment_id,
                expected_version=version,
                start=_instant(data["start"], data.get("time_zone")),
                practitioner_id=data.get("practitioner_id"),
                resource_ids=data.get("resource_ids"),
                reason=data["reason"],
                override_reason=data.get("override_reason", ""),
                request=request._request,
            )
        return _one(actor, ref, request)


class AppointmentCancelApi(APIView):
    @extend_schema(
        operation_id="scheduling_cancel",
        parameters=[IF_MATCH],
        request=s.CancelSerializer,
        responses={200: s.AppointmentSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, appointment_id: int) -> Response:
        actor = _actor(request)
        version = _expected_version(request)
        data = _valid(s.CancelSerializer, request.data)
        with scheduling_errors():
            ref = booking.appointment_cancel(
                actor=actor,
                appointment_id=appointment_id,
                reason=data["reason"],
                expected_version=version,
                request=request._request,
            )
        return _one(actor, ref, request)


class AppointmentStatusApi(APIView):
    @extend_schema(
        operation_id="scheduling_status_set",
        parameters=[IF_MATCH],
        request=s.StatusChangeSerializer,
        responses={200: s.AppointmentSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, appointment_id: int) -> Response:
        actor = _actor(request)
        version = _expected_version(request)
        data = _valid(s.StatusChangeSerializer, request.data)
        with scheduling_errors():
            ref = status_services.appointment_status_set(
                actor=actor,
                appointment_id=appointment_id,
                status=data["status"],
                expected_version=version,
                reason=data.get("reason", ""),
                request=request._request,
            )
        return _one(actor, ref, request)


class _VisitStepApi(APIView):
    """A clinician's step of a visit with no body but If-Match: one service call, the appointment back."""

    step: Callable[..., AppointmentRef]

    def post(self, request: Request, appointment_id: int) -> Response:
        actor = _actor(request)
        version = _expected_version(request)
        with scheduling_errors():
            ref = type(self).step(
                actor=actor, appointment_id=appointment_id, expected_version=version, request=request._request
            )
        return _one(actor, ref, request)


def _visit_step_schema(operation_id: str) -> Any:
    return extend_schema_view(
        post=extend_schema(
            operation_id=operation_id,
            parameters=[IF_MATCH],
            request=None,
            responses={200: s.AppointmentSerializer, **WRITE_ERRORS},
        )
    )


@_visit_step_schema("scheduling_visit_start")
class AppointmentVisitStartApi(_VisitStepApi):
    """The clinician starts the visit (checks the patient in if needed; the EHR encounter goes in progress)."""

    step = staticmethod(status_services.appointment_visit_start)


@_visit_step_schema("scheduling_visit_complete")
class AppointmentCompleteApi(_VisitStepApi):
    """The clinician completes the visit (fulfilled; the EHR encounter is closed)."""

    step = staticmethod(status_services.appointment_complete)


class MyAppointmentListApi(APIView):
    """The signed-in patient's own appointments, newest first."""

    @extend_schema(operation_id="scheduling_my_appointments", responses={200: s.AppointmentListSerializer, **ERRORS})
    def get(self, request: Request) -> Response:
        actor = _actor(request)
        patient_id = _patient_id_for(actor, None) if not booking.is_staff_booker(actor) else None
        if patient_id is None:
            raise ApiError("permission_denied", "For patients: your own appointments.", status_code=403)
        refs = selectors.appointment_list_for_patient(patient_id=patient_id)
        names = _names(actor, refs, request._request)
        return Response({"results": [_appointment_json(r, names) for r in refs]})


# --- waitlist ---------------------------------------------------------------------------------------------------


def _entry_json(e: WaitlistEntry) -> dict[str, Any]:
    return {
        "id": e.pk,
        "patient_id": e.patient_id,
        "appointment_type_id": e.appointment_type_id,
        "practitioner_id": e.practitioner_id,
        "earliest": e.earliest,
        "latest": e.latest,
        "status": e.status,
        "created_at": e.created_at,
    }


def _offer_json(o: WaitlistOffer) -> dict[str, Any]:
    return {
        "id": str(o.pk),
        "appointment_type_id": o.appointment_type_id,
        "practitioner_id": o.practitioner_id,
        "start": o.start,
        "end": o.end,
        "status": o.status,
        "expires_at": o.expires_at,
    }


class WaitlistApi(APIView):
    """Join the waitlist (patients for themselves, staff for a patient)."""

    @extend_schema(
        operation_id="scheduling_waitlist_join",
        request=s.WaitlistJoinSerializer,
        responses={201: s.WaitlistEntrySerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        actor = _actor(request)
        data = _valid(s.WaitlistJoinSerializer, request.data)
        with scheduling_errors():
            entry = waitlist.waitlist_join(
                actor=actor,
                patient_id=_patient_id_for(actor, data.get("patient_id")),
                appointment_type_id=data["appointment_type_id"],
                earliest=data["earliest"],
                latest=data["latest"],
                practitioner_id=data.get("practitioner_id"),
                request=request._request,
            )
        return Response(_entry_json(entry), status=status.HTTP_201_CREATED)


class WaitlistEntryApi(APIView):
    """Leave the waitlist (the patient for themselves, staff for a patient they may schedule)."""

    @extend_schema(operation_id="scheduling_waitlist_withdraw", responses={204: None, **ERRORS})
    def delete(self, request: Request, entry_id: int) -> Response:
        with scheduling_errors():
            waitlist.waitlist_withdraw(actor=_actor(request), entry_id=entry_id, request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MyWaitlistApi(APIView):
    """The signed-in patient's waitlist entries and open offers."""

    @extend_schema(operation_id="scheduling_my_waitlist", responses={200: s.MyWaitlistSerializer, **ERRORS})
    def get(self, request: Request) -> Response:
        actor = _actor(request)
        patient_id = _patient_id_for(actor, None)
        entries, offers = selectors.waitlist_for_patient(patient_id=patient_id)
        return Response({"entries": [_entry_json(e) for e in entries], "offers": [_offer_json(o) for o in offers]})


class WaitlistOfferAcceptApi(APIView):
    @extend_schema(
        operation_id="scheduling_offer_accept", request=None, responses={201: s.AppointmentSerializer, **WRITE_ERRORS}
    )
    def post(self, request: Request, offer_id: str) -> Response:
        actor = _actor(request)
        with scheduling_errors():
            ref = waitlist.waitlist_offer_accept(actor=actor, offer_id=offer_id, request=request._request)
        return _one(actor, ref, request, status.HTTP_201_CREATED)


class WaitlistOfferDeclineApi(APIView):
    @extend_schema(operation_id="scheduling_offer_decline", request=None, responses={204: None, **ERRORS})
    def post(self, request: Request, offer_id: str) -> Response:
        with scheduling_errors():
            waitlist.waitlist_offer_decline(actor=_actor(request), offer_id=offer_id, request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)
