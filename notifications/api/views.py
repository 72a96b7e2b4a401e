"""Notifications API: reminder health and failures (admins, schedulers), resend, a patient's own preferences, and
Twilio's webhooks (status callbacks, inbound SMS) verified by their signature. Views parse, call one service or
selector, and serialize (docs/notifications.md)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from xml.sax.saxutils import escape

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from twilio.request_validator import RequestValidator

from core.api.errors import ApiError, ApiErrorSerializer
from ehr.models import User
from notifications import selectors, services
from notifications.api import serializers as s
from notifications.errors import InvalidInput, NotificationsError
from notifications.providers import webhook_auth_tokens

ERRORS = {400: ApiErrorSerializer, 401: ApiErrorSerializer, 403: ApiErrorSerializer, 404: ApiErrorSerializer}
WRITE_ERRORS = {**ERRORS, 409: ApiErrorSerializer}


@contextmanager
def notifications_errors() -> Iterator[None]:
    try:
        yield
    except InvalidInput as exc:
        raise serializers.ValidationError(exc.fields) from None
    except NotificationsError as exc:
        raise ApiError(exc.code, exc.detail, status_code=exc.status) from None


def _actor(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)  # IsAuthenticated (the default permission) ran first
    return user


class HealthApi(APIView):
    """Sent, delivered, failed and fallen back per channel and day (admins, schedulers)."""

    @extend_schema(
        operation_id="notifications_health",
        parameters=[OpenApiParameter("days", int, description="1-90, default 14")],
        responses={200: s.NotificationHealthSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        raw = request.query_params.get("days", "14")
        if not raw.isdigit() or not 1 <= int(raw) <= 90:
            raise serializers.ValidationError({"days": ["A whole number from 1 to 90."]})
        with notifications_errors():
            health = selectors.message_health(actor=_actor(request), days=int(raw))
        return Response(dataclasses.asdict(health))


class FailurePagination(PageNumberPagination):
    page_size = 25


class FailureListApi(APIView):
    """Failed and undeliverable messages, newest first, with whether each can be resent (admins, schedulers)."""

    @extend_schema(
        operation_id="notifications_failures",
        parameters=[OpenApiParameter("page", int)],
        responses={200: s.MessageFailurePageSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        with notifications_errors():
            queryset = selectors.message_failures_queryset(actor=_actor(request))
        paginator = FailurePagination()
        page = paginator.paginate_queryset(queryset, request, view=self) or []
        with notifications_errors():
            rows = selectors.failure_rows(actor=_actor(request), messages=list(page), request=request._request)
        return paginator.get_paginated_response([dataclasses.asdict(row) for row in rows])


class MessageResendApi(APIView):
    """Resend a failed or undeliverable message once (admins, schedulers)."""

    @extend_schema(
        operation_id="notifications_message_resend", request=None, responses={201: s.ResentSerializer, **WRITE_ERRORS}
    )
    def post(self, request: Request, message_id: str) -> Response:
        with notifications_errors():
            ref = services.message_resend(actor=_actor(request), message_id=message_id)
        return Response({"id": ref.id, "state": ref.state}, status=status.HTTP_201_CREATED)


class PreferenceApi(APIView):
    """The signed-in patient's own notification preferences."""

    @extend_schema(
        operation_id="notifications_preferences", responses={200: s.NotificationPreferenceSerializer, **ERRORS}
    )
    def get(self, request: Request) -> Response:
        with notifications_errors():
            view = services.preference_get(actor=_actor(request))
        return Response(dataclasses.asdict(view))

    @extend_schema(
        operation_id="notifications_preferences_update",
        request=s.NotificationPreferenceUpdateSerializer,
        responses={200: s.NotificationPreferenceSerializer, **ERRORS},
    )
    def put(self, request: Request) -> Response:
        data = request.data
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Send a JSON object."]})
        with notifications_errors():
            view = services.preference_update(actor=_actor(request), data=dict(data))
        return Response(dataclasses.asdict(view))


def _verified(request: Request) -> dict[str, str]:
    """The form Twilio posted, if its X-Twilio-Signature matches (over our public URL, the sorted parameters and
    one of the configured auth tokens); otherwise 403 and nothing is done."""
    signature = request.META.get("HTTP_X_TWILIO_SIGNATURE", "")
    params = {k: request.POST.get(k, "") for k in request.POST}
    url = settings.NOTIFICATIONS_PUBLIC_BASE_URL.rstrip("/") + request.get_full_path()
    if signature and any(RequestValidator(token).validate(url, params, signature) for token in webhook_auth_tokens()):
        return params
    raise ApiError("bad_signature", "The request signature is missing or does not match.", status_code=403)


class TwilioStatusCallbackApi(APIView):
    """Twilio's delivery status callback for a message or call we sent."""

    permission_classes = [AllowAny]
    authentication_classes: list[type] = []
    parser_classes = [FormParser]

    @extend_schema(
        operation_id="notifications_twilio_status",
        request={"application/x-www-form-urlencoded": s.TwilioStatusSerializer},
        responses={204: OpenApiResponse(description="Applied"), 403: ApiErrorSerializer},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        params = _verified(request)
        services.message_status_callback(
            message_id=request.query_params.get("message"),
            provider_status=params.get("MessageStatus") or params.get("CallStatus", ""),
            error_code=params.get("ErrorCode", ""),
            provider_message_id=params.get("MessageSid") or params.get("CallSid", ""),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class TwilioInboundApi(APIView):
    """Twilio's inbound SMS webhook: replies to reminders; answers with TwiML."""

    permission_classes = [AllowAny]
    authentication_classes: list[type] = []
    parser_classes = [FormParser]

    @extend_schema(
        operation_id="notifications_twilio_inbound",
        request={"application/x-www-form-urlencoded": s.TwilioInboundSerializer},
        responses={200: OpenApiResponse(description="TwiML reply"), 400: ApiErrorSerializer, 403: ApiErrorSerializer},
        auth=[],
    )
    def post(self, request: Request) -> Any:
        params = _verified(request)
        missing = [k for k in ("MessageSid", "From") if not params.get(k)]
        if missing:
            raise serializers.ValidationError({k: ["This field is required."] for k in missing})
        reply = services.inbound_sms_handle(
            sid=params["MessageSid"], from_number=params["From"], body=params.get("Body", "")
        )
        twiml = f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{escape(reply)}</Message></Response>'
        return HttpResponse(twiml, content_type="application/xml")
