"""Session sign-in for the SPA: csrf, login, logout, me."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.utils.crypto import salted_hmac
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.errors import ApiError, ApiErrorSerializer
from ehr import selectors, services
from ehr.api.serializers import CsrfSerializer, LoginSerializer, MeSerializer

TOO_MANY = "Too many failed sign-in attempts. Try again later."


def lockout_response(request: HttpRequest, original_response: HttpResponse | None, credentials: Any) -> HttpResponse:
    """django-axes lockout: the API's error shape, without saying whether the account exists."""
    return JsonResponse({"code": "too_many_attempts", "detail": TOO_MANY}, status=429)


def axes_client_str(username: str, ip_address: str, user_agent: str, path_info: str, request: HttpRequest) -> str:
    """How django-axes names a client in its log lines: an opaque hash, never the username or address."""
    return "client " + salted_hmac("consulta.axes.log", f"{username}|{ip_address}").hexdigest()[:12]


def _me(request: Request, user_id: int) -> Response:
    me = selectors.user_get_me(user_id=user_id)
    return Response(MeSerializer(me, context={"request": request}).data)


class CsrfApi(APIView):
    """Issue the CSRF cookie (and echo the token) so the SPA can make unsafe requests."""

    permission_classes = [AllowAny]

    @extend_schema(responses=CsrfSerializer, auth=[])
    def get(self, request: Request) -> Response:
        return Response({"csrfToken": get_token(request._request)})


class LoginApi(APIView):
    """Sign in with username and password. Wrong username and wrong password are indistinguishable."""

    permission_classes = [AllowAny]

    @extend_schema(
        request=LoginSerializer,
        responses={200: MeSerializer, 400: ApiErrorSerializer, 403: ApiErrorSerializer, 429: ApiErrorSerializer},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        form = LoginSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        http_request = request._request
        user = authenticate(
            http_request, username=form.validated_data["username"], password=form.validated_data["password"]
        )
        if user is None:
            if getattr(http_request, "axes_locked_out", False):
                raise ApiError("too_many_attempts", TOO_MANY, status_code=status.HTTP_429_TOO_MANY_REQUESTS)
            raise ApiError("invalid_credentials", "Wrong username or password.")
        login(http_request, user)
        services.session_sign_in(
            user=user,  # type: ignore[arg-type]
            session_key=http_request.session.session_key or "",
            user_agent=http_request.headers.get("User-Agent", ""),
        )
        return _me(request, user.pk)


class LogoutApi(APIView):
    """End this session and close its other tabs' sockets. Signed-out callers get 204 too (idempotent)."""

    permission_classes = [AllowAny]

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        session_key = request.session.session_key
        was_signed_in = request.user.is_authenticated
        logout(request._request)
        if was_signed_in and session_key:
            services.session_sign_out(session_key=session_key)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    """The signed-in user, their roles, organization, locations and the opaque id of this session."""

    @extend_schema(responses={200: MeSerializer, 401: ApiErrorSerializer})
    def get(self, request: Request) -> Response:
        return _me(request, int(request.user.pk or 0))
