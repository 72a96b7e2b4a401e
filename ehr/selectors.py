"""Reads of the ehr app."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from core.realtime.streams import StreamUser
from ehr.models import Location, Role, User


def user_get_me(*, user_id: int) -> User:
    """The signed-in user with organization and locations loaded (one query for the user, one for locations)."""
    return User.objects.select_related("organization").prefetch_related("locations").get(pk=user_id)


def user_list(*, search: str = "") -> QuerySet[User]:
    """Users for the admin console, optionally filtered by name or username. Callers check the admin role."""
    qs = User.objects.order_by("last_name", "first_name", "username")
    search = search.strip()
    if search:
        qs = qs.filter(Q(username__icontains=search) | Q(first_name__icontains=search) | Q(last_name__icontains=search))
    return qs


def location_list(*, organization_id: int) -> QuerySet[Location]:
    return Location.objects.filter(organization_id=organization_id).order_by("name")


def location_may_receive(user: StreamUser, name: str) -> bool:
    """Realtime authoriser for ``group:location.<id>``: staff who work at that location."""
    _, _, raw_id = name.partition(".")
    if not raw_id.isdigit() or not isinstance(user, User):
        return False
    if not user.has_role(Role.PRACTITIONER, Role.NURSE, Role.SCHEDULER, Role.ADMIN):
        return False
    return user.locations.filter(pk=int(raw_id)).exists()
