"""Reads of telehealth: the signaling grant, visit details, the queue and the waiting room's estimate, realtime
audiences. Names of patients come from ``ehr`` (``patient_refs_get``, audited) for staff, and are the patient's
own for the patient."""

from __future__ import annotations

import uuid

from core.realtime.streams import StreamUser
from ehr.models import Role, User
from telehealth.dto import ParticipantRole, SignalingGrant
from telehealth.models import Visit

LOCATION_STAFF = (Role.PRACTITIONER, Role.NURSE, Role.SCHEDULER, Role.ADMIN)


def parse_uuid(value: object) -> uuid.UUID | None:
    """A visit id from the outside world (URL, socket path): a UUID, or None."""
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def visit_signaling_grant(*, user: StreamUser | User, visit_id: str) -> SignalingGrant | None:
    """Who ``user`` is in the visit's signaling channel: its patient (``patient_user``) or its practitioner, else
    None (also for an unknown or malformed id, or an anonymous user). Called by the signaling consumer on connect;
    one indexed query."""
    parsed = parse_uuid(visit_id)
    if parsed is None or not getattr(user, "is_authenticated", False) or not isinstance(user, User):
        return None
    row = Visit.objects.filter(pk=parsed).values_list("patient_user_id", "practitioner_id", "status").first()
    if row is None:
        return None
    patient_user_id, practitioner_id, status = row
    role: ParticipantRole
    if user.pk == practitioner_id:
        role = "practitioner"
    elif user.pk == patient_user_id:
        role = "patient"
    else:
        return None
    return SignalingGrant(
        visit_id=str(parsed), role=role, participant_id=role, display_name=user.display_name, status=status
    )


def _works_at(user: User, location_id: int | None) -> bool:
    return location_id is not None and user.locations.filter(pk=location_id).exists()


def is_location_staff(user: User, location_id: int | None) -> bool:
    """Clinical or front-desk staff (practitioner, nurse, scheduler, admin) who work at the location."""
    return user.has_role(*LOCATION_STAFF) and _works_at(user, location_id)


def visit_group_may_receive(user: StreamUser, name: str) -> bool:
    """Realtime authoriser for ``group:visit.<uuid>``: the visit's patient, its practitioner, and staff of its
    location."""
    _, _, raw = name.partition(".")
    parsed = parse_uuid(raw)
    if parsed is None or not isinstance(user, User):
        return False
    row = Visit.objects.filter(pk=parsed).values_list("patient_user_id", "practitioner_id", "location_id").first()
    if row is None:
        return False
    patient_user_id, practitioner_id, location_id = row
    return user.pk in (patient_user_id, practitioner_id) or is_location_staff(user, location_id)


def queue_group_may_receive(user: StreamUser, name: str) -> bool:
    """Realtime authoriser for ``group:telehealth.queue.<practitioner id>``: that practitioner and staff who work
    at one of their locations."""
    prefix = "telehealth.queue."
    if not name.startswith(prefix) or not isinstance(user, User):
        return False
    raw = name.removeprefix(prefix)
    if not raw.isdigit():
        return False
    practitioner_id = int(raw)
    if user.pk == practitioner_id:
        return user.has_role(Role.PRACTITIONER)
    if not user.has_role(*LOCATION_STAFF):
        return False
    return User.objects.filter(pk=practitioner_id, locations__staff=user).exists()
