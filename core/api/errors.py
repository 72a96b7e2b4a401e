"""One error shape for the whole API: ``{"code": "...", "detail": "...", "fields": {...}}``.

``code`` is machine-readable and stable; ``detail`` is a sentence for people; ``fields`` appears on validation
errors only. The CSRF failure view answers API paths in the same shape.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response


class ApiErrorSerializer(serializers.Serializer[object]):
    """The body of every 4xx answer (documented in the OpenAPI schema as ``ApiError``)."""

    code = serializers.CharField(help_text="Stable, machine-readable error code.")
    detail = serializers.CharField(help_text="A sentence for people.")
    fields = serializers.DictField(  # type: ignore[assignment]  # the error's field map, not Serializer.fields
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Validation errors per field (code 'invalid' only).",
    )


class ApiError(exceptions.APIException):
    """Raise from views with a specific code: ``raise ApiError("cannot_deactivate_self", "…", status=400)``."""

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        status_code: int = status.HTTP_400_BAD_REQUEST,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail=detail, code=code)
        self.status_code = status_code
        self.error_code = code
        # Further machine-readable members of the body, e.g. ``current_version`` of a 412.
        self.extra = dict(extra or {})


_DEFAULT_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
    exceptions.ParseError: "malformed_request",
    exceptions.ValidationError: "invalid",
}


def _flatten(detail: Any) -> Any:
    if isinstance(detail, dict):
        return {k: _flatten(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return [_flatten(v) for v in detail]
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    # Imported here: rest_framework.views reads the API settings at import, which import this package.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # not an API error: let Django turn it into a 500 (and it gets logged)
    if isinstance(exc, ApiError):
        body: dict[str, Any] = {**exc.extra, "code": exc.error_code, "detail": str(exc.detail)}
    elif isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        if isinstance(fields, dict):
            body = {"code": "invalid", "detail": "Some fields are not valid.", "fields": fields}
        else:
            body = {"code": "invalid", "detail": " ".join(map(str, fields))}
    else:
        code = next((c for cls, c in _DEFAULT_CODES.items() if isinstance(exc, cls)), "error")
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        body = {"code": code, "detail": str(detail)}
    response.data = body
    return response


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF rejections: JSON for API clients, plain text elsewhere. The reason is not echoed."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"code": "csrf_failed", "detail": "CSRF token missing or incorrect. Fetch /api/v1/auth/csrf/ and retry."},
            status=403,
        )
    return HttpResponse("CSRF verification failed.", status=403, content_type="text/plain")
