from __future__ import annotations

from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from ehr.models import Role


class IsAdminRole(BasePermission):
    """The signed-in user holds the admin role."""

    message = "Only administrators may do this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and Role.ADMIN in getattr(user, "roles", []))
