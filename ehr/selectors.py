"""Reads of the ehr app."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet
from django.http import HttpRequest

from core.realtime.streams import StreamUser
from ehr.models import AuditAction, AuditEvent, Location, Role, User
from ehr.services.audit import audit_record


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


def audit_event_list(
    *,
    viewer: User,
    request: HttpRequest | None = None,
    patient_id: int | None = None,
    actor_username: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEvent]:
    """Audit rows for the admin console, newest first. Callers check the admin role; the search is audited."""
    qs = AuditEvent.objects.select_related("actor").order_by("-occurred_at", "-id")
    if patient_id is not None:
        qs = qs.filter(patient_id=patient_id)
    if actor_username:
        qs = qs.filter(actor__username=actor_username)
    if action:
        qs = qs.filter(action=action)
    if outcome:
        qs = qs.filter(outcome=outcome)
    if since:
        qs = qs.filter(occurred_at__gte=since)
    if until:
        qs = qs.filter(occurred_at__lte=until)
    used = [
        name
        for name, value in (
            ("patient_id", patient_id),
            ("actor", actor_username),
            ("action", action),
            ("outcome", outcome),
            ("since", since),
            ("until", until),
        )
        if value
    ]
    this_search = audit_record(
        actor=viewer,
        action=AuditAction.READ,
        entity_type="AuditLog",
        patient_id=patient_id,
        purpose="audit_review",
        request=request,
        detail={"filters": used},
    )
    return qs.filter(id__lt=this_search.id)  # the log as it stood before this search
