"""Session authentication for the SPA."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from core.api.errors import ApiError

if TYPE_CHECKING:
    from drf_spectacular.openapi import AutoSchema

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class SessionAuthentication(authentication.SessionAuthentication):
    """DRF's session auth, with two changes.

    - CSRF is enforced on every unsafe method, signed in or not (DRF skips it for anonymous requests, which would
      leave the login endpoint open to login CSRF).
    - Unauthenticated requests get 401 (the ``WWW-Authenticate: Session`` header makes DRF choose 401 over 403),
      so the SPA can tell "sign in" from "not allowed".
    """

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        if request.method in UNSAFE_METHODS:
            self.enforce_csrf(request)
        user = getattr(request._request, "user", None)
        if not user or not user.is_active:
            return None
        return (user, None)

    def authenticate_header(self, request: Request) -> str:
        return "Session"

    def enforce_csrf(self, request: Request) -> None:
        try:
            super().enforce_csrf(request)
        except exceptions.PermissionDenied:
            raise ApiError(
                "csrf_failed",
                "CSRF token missing or incorrect. Fetch /api/v1/auth/csrf/ and send X-CSRFToken.",
                status_code=403,
            ) from None


class SessionAuthenticationScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """Describes the session cookie in the OpenAPI schema."""

    target_class = "core.api.auth.SessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, str]:
        return {"type": "apiKey", "in": "cookie", "name": "consulta_session"}
