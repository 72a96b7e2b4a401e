"""Telehealth API: check-in, the waiting room, the virtual clinic console, the visit, ICE servers, call quality.
Views parse, call one service or selector, and serialize (docs/telehealth.md). Errors have the project's shape
``{"code", "detail", "fields"?}``."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.errors import ApiError, ApiErrorSerializer
from ehr.models import User
from telehealth import selectors, services
from telehealth.api import serializers as s
from telehealth.dto import IceConfig, InvitationRef, VisitDetail
from telehealth.errors import InvalidInput, TelehealthError
from telehealth.services.guests import session_guest_ids

ERRORS = {400: ApiErrorSerializer, 401: ApiErrorSerializer, 403: ApiErrorSerializer, 404: ApiErrorSerializer}
WRITE_ERRORS = {**ERRORS, 409: ApiErrorSerializer}
GUEST_ERRORS = {**WRITE_ERRORS, 410: ApiErrorSerializer}


@contextmanager
def telehealth_errors() -> Iterator[None]:
    """The services' typed errors as API errors (nothing was written in any case)."""
    try:
        yield
    except InvalidInput as exc:
        raise serializers.ValidationError(exc.fields) from None
    except TelehealthError as exc:
        raise ApiError(exc.code, exc.detail, status_code=exc.status) from None


def _actor(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)  # IsAuthenticated (the default permission) ran first
    return user


def _body(request: Request, allowed: set[str], required: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
    """The JSON object sent, with unknown and missing members refused (400 ``invalid``)."""
    data = request.data
    if not isinstance(data, dict):
        raise serializers.ValidationError({"non_field_errors": ["Send a JSON object."]})
    errors: dict[str, list[str]] = {k: ["Unknown field."] for k in data if k not in allowed}
    errors.update({k: ["This field is required."] for k in required if k not in data})
    if errors:
        raise serializers.ValidationError(errors)
    return dict(data)


def visit_json(detail: VisitDetail) -> dict[str, Any]:
    body = dataclasses.asdict(detail)
    if detail.role == "patient":
        for key in ("patient_id", "encounter_id", "intake"):
            body.pop(key)
    return body


def ice_json(config: IceConfig) -> dict[str, Any]:
    servers = []
    for server in config.ice_servers:
        item: dict[str, Any] = {"urls": list(server.urls)}
        if server.username is not None:
            item["username"] = server.username
            item["credential"] = server.credential
        servers.append(item)
    return {
        "iceServers": servers,
        "iceTransportPolicy": config.ice_transport_policy,
        "expiresAt": config.expires_at,
        "ttlSeconds": config.ttl_seconds,
    }


# --- check-in ---------------------------------------------------------------------------------------------------------


class CheckInApi(APIView):
    """The patient's check-in to their own video appointment."""

    @extend_schema(operation_id="telehealth_check_in_info", responses={200: s.CheckInInfoSerializer, **ERRORS})
    def get(self, request: Request, appointment_id: int) -> Response:
        with telehealth_errors():
            info = selectors.checkin_info_for(actor=_actor(request), appointment_id=appointment_id)
        body = dataclasses.asdict(info)
        body["appointment"] = {
            "id": body.pop("appointment_id"),
            "start": body.pop("start"),
            "end": body.pop("end"),
            "practitioner_name": body.pop("practitioner_name"),
            "type_name": body.pop("type_name"),
        }
        return Response(body)

    @extend_schema(
        operation_id="telehealth_check_in",
        request=s.CheckInSerializer,
        responses={200: s.VisitDetailSerializer, 201: s.VisitDetailSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, appointment_id: int) -> Response:
        data = _body(request, {"consent", "answers"}, {"consent"})
        existed = selectors.visit_id_for_appointment(appointment_id=appointment_id) is not None
        with telehealth_errors():
            detail = services.visit_check_in(
                actor=_actor(request),
                appointment_id=appointment_id,
                consent=data["consent"],
                answers=data.get("answers", {}),
                request=request._request,
            )
        return Response(visit_json(detail), status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED)


class CheckInLinkConsumeApi(APIView):
    """Use a signed single-use check-in link: signs its patient in (session cookie) and names the appointment."""

    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="telehealth_check_in_link_consume",
        request=s.TokenSerializer,
        responses={200: s.ConsumedLinkSerializer, 400: ApiErrorSerializer, 403: ApiErrorSerializer},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = _body(request, {"token"}, {"token"})
        with telehealth_errors():
            _, appointment_id = services.checkin_link_consume(token=data["token"], request=request._request)
        return Response({"appointment_id": appointment_id})


class CheckInLinkCreateApi(APIView):
    """Staff of the appointment's clinic create a check-in link (e.g. to send with a reminder)."""

    @extend_schema(
        operation_id="telehealth_check_in_link_create",
        request=None,
        responses={201: s.CheckInLinkSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, appointment_id: int) -> Response:
        with telehealth_errors():
            ref = services.checkin_link_create(actor=_actor(request), appointment_id=appointment_id)
        return Response(
            {"url": request.build_absolute_uri(ref.url), "expires_at": ref.expires_at}, status=status.HTTP_201_CREATED
        )


class IceServersApi(APIView):
    """ICE servers for a visit's participant (STUN, TURN with short-lived credentials): its patient or
    practitioner, or a guest whose browser session opened an invitation to it (no sign-in needed)."""

    permission_classes = [AllowAny]

    def _issue(self, request: Request, visit_id: Any) -> Response:
        if visit_id is not None and (not isinstance(visit_id, str) or selectors.parse_uuid(visit_id) is None):
            raise serializers.ValidationError({"visit_id": ["Must be a visit id (UUID)."]})
        with telehealth_errors():
            config = services.ice_servers_issue(
                actor=request.user,  # type: ignore[arg-type]  # a User or AnonymousUser
                visit_id=visit_id,
                guest_invitation_ids=session_guest_ids(request._request),
            )
        response = Response(ice_json(config))
        response["Cache-Control"] = "no-store"
        return response

    @extend_schema(
        operation_id="telehealth_ice_servers",
        request=s.IceSerializer,
        responses={200: s.IceConfigSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = _body(request, {"visit_id"})
        return self._issue(request, data.get("visit_id"))

    @extend_schema(
        operation_id="telehealth_ice_servers_get",
        parameters=[OpenApiParameter("visit", str, required=False, description="The visit id (UUID).")],
        responses={200: s.IceConfigSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        return self._issue(request, request.query_params.get("visit"))


# --- one visit --------------------------------------------------------------------------------------------------------


class VisitApi(APIView):
    """One visit as the viewer may see it (patient, practitioner or staff of its clinic)."""

    @extend_schema(operation_id="telehealth_visit", responses={200: s.VisitDetailSerializer, **ERRORS})
    def get(self, request: Request, visit_id: str) -> Response:
        with telehealth_errors():
            detail = selectors.visit_detail_for(user=_actor(request), visit_id=visit_id, request=request._request)
        return Response(visit_json(detail))


class VisitDeviceCheckApi(APIView):
    """The patient records the result of their device and network check."""

    @extend_schema(
        operation_id="telehealth_visit_device_check",
        request=s.DeviceCheckSerializer,
        responses={200: s.VisitDetailSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, visit_id: str) -> Response:
        data = _body(request, {"camera", "microphone", "speaker", "turn"})
        with telehealth_errors():
            detail = services.visit_device_check_record(
                actor=_actor(request), visit_id=visit_id, result=data, request=request._request
            )
        return Response(visit_json(detail))


class VisitWaitingApi(APIView):
    """The waiting room: place, patients ahead, estimated wait, the doctor's status and notice."""

    @extend_schema(operation_id="telehealth_visit_waiting", responses={200: s.WaitingInfoSerializer, **ERRORS})
    def get(self, request: Request, visit_id: str) -> Response:
        with telehealth_errors():
            info = selectors.visit_waiting_info(user=_actor(request), visit_id=visit_id)
        return Response(dataclasses.asdict(info))


class VisitLeaveApi(APIView):
    """The patient leaves the waiting room."""

    @extend_schema(
        operation_id="telehealth_visit_leave", request=None, responses={200: s.VisitDetailSerializer, **WRITE_ERRORS}
    )
    def post(self, request: Request, visit_id: str) -> Response:
        _body(request, set()) if request.data else None
        with telehealth_errors():
            detail = services.visit_leave(actor=_actor(request), visit_id=visit_id, request=request._request)
        return Response(visit_json(detail))


class VisitAdmitApi(APIView):
    """The practitioner admits the patient (from their queue, or from the clinic pool)."""

    @extend_schema(
        operation_id="telehealth_visit_admit", request=None, responses={200: s.VisitDetailSerializer, **WRITE_ERRORS}
    )
    def post(self, request: Request, visit_id: str) -> Response:
        _body(request, set()) if request.data else None
        with telehealth_errors():
            detail = services.visit_admit(actor=_actor(request), visit_id=visit_id, request=request._request)
        return Response(visit_json(detail))


class VisitTransferApi(APIView):
    """Hand a waiting patient to a colleague at the same clinic."""

    @extend_schema(
        operation_id="telehealth_visit_transfer",
        request=s.TransferSerializer,
        responses={200: s.VisitDetailSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, visit_id: str) -> Response:
        data = _body(request, {"practitioner_id"}, {"practitioner_id"})
        with telehealth_errors():
            detail = services.visit_transfer(
                actor=_actor(request),
                visit_id=visit_id,
                practitioner_id=data["practitioner_id"],
                request=request._request,
            )
        return Response(visit_json(detail))


class VisitEndApi(APIView):
    """The practitioner ends the visit (the appointment is fulfilled, the encounter closed with its duration)."""

    @extend_schema(
        operation_id="telehealth_visit_end",
        request=s.EndSerializer,
        responses={200: s.VisitDetailSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, visit_id: str) -> Response:
        data = _body(request, {"summary", "audio_only"})
        with telehealth_errors():
            detail = services.visit_end(
                actor=_actor(request),
                visit_id=visit_id,
                summary=data.get("summary", ""),
                audio_only=data.get("audio_only", False),
                request=request._request,
            )
        return Response(visit_json(detail))


class VisitMessageListApi(APIView):
    """The visit's chat (patient with staff, and in the call)."""

    @extend_schema(operation_id="telehealth_visit_messages", responses={200: s.MessageListSerializer, **ERRORS})
    def get(self, request: Request, visit_id: str) -> Response:
        with telehealth_errors():
            rows = selectors.visit_message_list(user=_actor(request), visit_id=visit_id)
        return Response({"results": [dataclasses.asdict(m) for m in rows]})

    @extend_schema(
        operation_id="telehealth_visit_message_send",
        request=s.MessageBodySerializer,
        responses={201: s.MessageSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, visit_id: str) -> Response:
        data = _body(request, {"body"}, {"body"})
        with telehealth_errors():
            message = services.visit_message_send(actor=_actor(request), visit_id=visit_id, body=data["body"])
        return Response(dataclasses.asdict(message), status=status.HTTP_201_CREATED)


class VisitQualityApi(APIView):
    """Call-quality summaries: participants report (at most one each per 5 s); admins and the practitioner read."""

    @extend_schema(operation_id="telehealth_visit_quality", responses={200: s.QualityReportListSerializer, **ERRORS})
    def get(self, request: Request, visit_id: str) -> Response:
        with telehealth_errors():
            rows = selectors.visit_quality_list(user=_actor(request), visit_id=visit_id)
            relay = selectors.visit_relay_list(user=_actor(request), visit_id=visit_id)
        return Response(
            {"results": [dataclasses.asdict(r) for r in rows], "relay_reports": [dataclasses.asdict(r) for r in relay]}
        )

    @extend_schema(
        operation_id="telehealth_visit_quality_report",
        request=s.QualityBodySerializer,
        responses={201: s.QualityReportSerializer, 429: ApiErrorSerializer, **ERRORS},
    )
    def post(self, request: Request, visit_id: str) -> Response:
        data = _body(request, {"stats"}, {"stats"})
        with telehealth_errors():
            report = services.visit_quality_report(actor=_actor(request), visit_id=visit_id, stats=data["stats"])
        return Response(dataclasses.asdict(report), status=status.HTTP_201_CREATED)


# --- the virtual clinic console ---------------------------------------------------------------------------------------


class QueueApi(APIView):
    """The console: my queue, my clinics' pool, my notice, presence and current visit."""

    @extend_schema(operation_id="telehealth_queue", responses={200: s.ClinicQueueSerializer, **ERRORS})
    def get(self, request: Request) -> Response:
        with telehealth_errors():
            queue = selectors.clinic_queue_for(user=_actor(request), request=request._request)
        return Response(dataclasses.asdict(queue))


class PresenceApi(APIView):
    """The console's heartbeat (every 20 s): available or away."""

    @extend_schema(
        operation_id="telehealth_presence",
        request=s.PresenceBeatSerializer,
        responses={200: s.PresenceSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = _body(request, {"status"})
        with telehealth_errors():
            presence = services.clinician_presence_touch(actor=_actor(request), status=data.get("status", "available"))
        return Response(dataclasses.asdict(presence))


class NoticeApi(APIView):
    """The practitioner's notice to everyone waiting for them."""

    @extend_schema(
        operation_id="telehealth_notice_set",
        request=s.NoticeBodySerializer,
        responses={200: s.NoticeSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = _body(request, {"body"}, {"body"})
        with telehealth_errors():
            notice = services.clinician_notice_set(actor=_actor(request), body=data["body"])
        return Response(dataclasses.asdict(notice))

    @extend_schema(
        operation_id="telehealth_notice_clear",
        request=None,
        responses={204: OpenApiResponse(description="Cleared"), **ERRORS},
    )
    def delete(self, request: Request) -> Response:
        with telehealth_errors():
            services.clinician_notice_clear(actor=_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ColleagueListApi(APIView):
    """Practitioners at my clinics (transfer targets)."""

    @extend_schema(operation_id="telehealth_colleagues", responses={200: s.ColleagueListSerializer, **ERRORS})
    def get(self, request: Request) -> Response:
        with telehealth_errors():
            rows = selectors.colleague_list(user=_actor(request))
        return Response({"results": [dataclasses.asdict(p) for p in rows]})


class QualityOverviewApi(APIView):
    """Support (admins): recent visits with each participant's latest call-quality summary."""

    @extend_schema(operation_id="telehealth_quality_overview", responses={200: s.QualityOverviewSerializer, **ERRORS})
    def get(self, request: Request) -> Response:
        with telehealth_errors():
            rows = selectors.quality_overview(user=_actor(request))
        return Response({"results": [dataclasses.asdict(r) for r in rows]})


# --- guests (issue 7) -------------------------------------------------------------------------------------------------


def _invitation_body(request: Request) -> dict[str, Any]:
    return _body(request, {"role", "name", "expires_in_minutes"}, {"role", "name"})


def invitation_json(request: Request, ref: InvitationRef) -> dict[str, Any]:
    return {
        "id": ref.id,
        "participant_id": ref.participant_id,
        "appointment_id": ref.appointment_id,
        "visit_id": ref.visit_id,
        "role": ref.role,
        "name": ref.name,
        "url": request.build_absolute_uri(ref.url),
        "expires_at": ref.expires_at,
    }


class VisitInvitationListApi(APIView):
    """A visit's guests: the practitioner (or a scheduler/admin of its clinic) invites and lists them."""

    @extend_schema(operation_id="telehealth_visit_invitations", responses={200: s.InvitationListSerializer, **ERRORS})
    def get(self, request: Request, visit_id: str) -> Response:
        with telehealth_errors():
            rows = selectors.invitation_list_for(user=_actor(request), visit_id=visit_id)
        return Response({"results": [dataclasses.asdict(r) for r in rows]})

    @extend_schema(
        operation_id="telehealth_visit_invite",
        request=s.InvitationCreateSerializer,
        responses={201: s.InvitationSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, visit_id: str) -> Response:
        data = _invitation_body(request)
        with telehealth_errors():
            ref = services.invitation_create(
                actor=_actor(request),
                visit_id=visit_id,
                role=data["role"],
                name=data["name"],
                expires_in_minutes=data.get("expires_in_minutes"),
            )
        return Response(invitation_json(request, ref), status=status.HTTP_201_CREATED)


class AppointmentInvitationApi(APIView):
    """A scheduler invites a guest ahead of time to a video appointment (the visit may not exist yet)."""

    @extend_schema(
        operation_id="telehealth_appointment_invite",
        request=s.InvitationCreateSerializer,
        responses={201: s.InvitationSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, appointment_id: int) -> Response:
        data = _invitation_body(request)
        with telehealth_errors():
            ref = services.invitation_create(
                actor=_actor(request),
                appointment_id=appointment_id,
                role=data["role"],
                name=data["name"],
                expires_in_minutes=data.get("expires_in_minutes"),
            )
        return Response(invitation_json(request, ref), status=status.HTTP_201_CREATED)


class InvitationConsumeApi(APIView):
    """A guest opens their link (no sign-in): this browser session becomes the guest (single use per link)."""

    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="telehealth_invitation_consume",
        request=s.TokenSerializer,
        responses={
            200: s.GuestInfoSerializer,
            400: ApiErrorSerializer,
            409: ApiErrorSerializer,
            410: ApiErrorSerializer,
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = _body(request, {"token"}, {"token"})
        with telehealth_errors():
            info = services.invitation_consume(token=data["token"], request=request._request)
        return Response(dataclasses.asdict(info))


class GuestApi(APIView):
    """The guest's lobby: their invitation and whether the doctor has let them in yet."""

    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="telehealth_guest", responses={200: s.GuestInfoSerializer, 404: ApiErrorSerializer}, auth=[]
    )
    def get(self, request: Request) -> Response:
        with telehealth_errors():
            info = selectors.guest_info_for(guest_invitation_ids=session_guest_ids(request._request))
        return Response(dataclasses.asdict(info))


class GuestDeviceCheckApi(APIView):
    """The guest records their device check (same fields as the patient's)."""

    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="telehealth_guest_device_check",
        request=s.DeviceCheckSerializer,
        responses={200: s.GuestInfoSerializer, **GUEST_ERRORS},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = request.data
        # The patient's shape (the four results at the top level); {"result": {...}} is accepted too.
        if isinstance(data, dict) and set(data) == {"result"}:
            data = data["result"]
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Send a JSON object."]})
        with telehealth_errors():
            info = services.guest_device_check_record(
                guest_invitation_ids=session_guest_ids(request._request), result=dict(data)
            )
        return Response(dataclasses.asdict(info))


class GuestAdmitApi(APIView):
    """The practitioner lets a guest in; the visit switches to the media relay."""

    @extend_schema(
        operation_id="telehealth_guest_admit", request=None, responses={200: s.GuestAdmittedSerializer, **GUEST_ERRORS}
    )
    def post(self, request: Request, visit_id: str, participant_id: str) -> Response:
        _body(request, set()) if request.data else None
        with telehealth_errors():
            mode = services.guest_admit(actor=_actor(request), visit_id=visit_id, participant_id=participant_id)
        return Response({"participant_id": participant_id, "media_mode": mode})


class ParticipantMuteApi(APIView):
    """The practitioner mutes (audio false) or unmutes (audio true) a guest or the patient."""

    @extend_schema(
        operation_id="telehealth_participant_mute",
        request=s.MuteSerializer,
        responses={200: s.MutedSerializer, **GUEST_ERRORS},
    )
    def post(self, request: Request, visit_id: str, participant_id: str) -> Response:
        data = _body(request, {"audio"}, {"audio"})
        with telehealth_errors():
            services.participant_mute_set(
                actor=_actor(request), visit_id=visit_id, participant_id=participant_id, audio=data["audio"]
            )
        return Response({"participant_id": participant_id, "audio": data["audio"]})


class GuestRemoveApi(APIView):
    """The practitioner removes a guest (their sockets close with 4411; the link stops working)."""

    @extend_schema(
        operation_id="telehealth_guest_remove", request=None, responses={200: s.RemovedSerializer, **WRITE_ERRORS}
    )
    def post(self, request: Request, visit_id: str, participant_id: str) -> Response:
        _body(request, set()) if request.data else None
        with telehealth_errors():
            services.guest_remove(actor=_actor(request), visit_id=visit_id, participant_id=participant_id)
        return Response({"participant_id": participant_id, "removed": True})


class VisitRelayApi(APIView):
    """The practitioner forces the media relay for the rest of the visit."""

    @extend_schema(
        operation_id="telehealth_visit_relay", request=None, responses={200: s.MediaModeSerializer, **WRITE_ERRORS}
    )
    def post(self, request: Request, visit_id: str) -> Response:
        _body(request, set()) if request.data else None
        with telehealth_errors():
            mode = services.visit_media_mode_set(actor=_actor(request), visit_id=visit_id)
        return Response({"media_mode": mode})
