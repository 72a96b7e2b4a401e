"""Appointment status changes after booking: arrival, check-in, no-show, fulfilment, entered in error."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, Value
from django.http import HttpRequest
from django.utils import timezone

from ehr.models import Role, User
from scheduling.dto import AppointmentRef
from scheduling.errors import BookingForbidden, InvalidBooking
from scheduling.events import appointment_event_record
from scheduling.models import Appointment, AppointmentStatus
from scheduling.selectors import appointment_dto
from scheduling.services.booking import (
    _cancel_encounter,
    appointment_for_update,
    authorise_change,
    release_slots,
)
from scheduling.services.transitions import RELEASING_STATUSES, appointment_transition

S = AppointmentStatus
# Statuses staff set by hand through ``appointment_status_set`` (cancel and booking have their own services).
STAFF_SETTABLE = frozenset({S.ARRIVED, S.CHECKED_IN, S.FULFILLED, S.NOSHOW, S.ENTERED_IN_ERROR})
FRONT_DESK = (Role.SCHEDULER, Role.ADMIN, Role.NURSE, Role.PRACTITIONER)


def appointment_status_set(
    *,
    actor: User,
    appointment_id: int,
    status: str,
    expected_version: int | None = None,
    reason: str = "",
    request: HttpRequest | None = None,
) -> AppointmentRef:
    """Front-desk and clinical staff move an appointment along the table: arrived, checked in, fulfilled, no-show,
    entered in error (needs a reason). Leaving for no-show or entered-in-error releases the resources and cancels
    the planned encounter. Raises ``InvalidTransition`` (409), ``VersionConflict`` (412), ``BookingForbidden``."""
    if not actor.has_role(*FRONT_DESK):
        raise BookingForbidden("only staff change an appointment's status")
    if status not in STAFF_SETTABLE:
        raise InvalidBooking({"status": [f"Use one of: {', '.join(sorted(STAFF_SETTABLE))}."]})
    reason = reason.strip() if isinstance(reason, str) else ""
    if status == S.ENTERED_IN_ERROR and not reason:
        raise InvalidBooking({"reason": ["Say why the appointment was entered in error."]})
    if len(reason) > 500:
        raise InvalidBooking({"reason": ["At most 500 characters."]})
    authorise_change(actor=actor, appointment_id=appointment_id, request=request)
    with transaction.atomic():
        appointment = appointment_for_update(appointment_id, expected_version)
        previous = _apply(appointment, status, actor=actor, reason=reason, request=request)
        appointment_event_record(
            appointment=appointment,
            type="status_changed",
            actor=actor,
            from_status=previous,
            to_status=appointment.status,
            data={"reason": reason} if reason else {},
        )
    return appointment_dto(appointment)


def _apply(
    appointment: Appointment, status: str, *, actor: User | None, reason: str, request: HttpRequest | None
) -> str:
    previous = appointment_transition(appointment, status)
    appointment.version += 1
    appointment.updated_at = timezone.now()
    appointment.save()
    if status in RELEASING_STATUSES:
        release_slots(appointment)
        _cancel_encounter(actor=actor, appointment=appointment, reason=reason or status, request=request)
    return previous


def appointments_mark_noshow(*, limit: int = 500) -> int:
    """The no-show job (one-minute beat task): every ``booked`` appointment whose start is more than its type's
    ``noshow_after_minutes`` ago becomes ``noshow`` and gives its resources back. Rows are claimed with
    ``skip_locked``, so concurrent runs never process one twice; a row changed meanwhile (checked in) is skipped
    because its status is no longer ``booked`` under the lock.

    The planned encounter stays ``planned``: ehr services act for a signed-in person and this runs as the system;
    the encounter list shows it as not attended (docs/scheduling.md)."""
    now = timezone.now()
    with transaction.atomic():
        due = list(
            Appointment.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("appointment_type")
            .annotate(
                grace=ExpressionWrapper(
                    F("appointment_type__noshow_after_minutes") * dt.timedelta(minutes=1),
                    output_field=DurationField(),
                )
            )
            .filter(
                status=S.BOOKED,
                start__lt=ExpressionWrapper(Value(now) - F("grace"), output_field=DateTimeField()),
            )
            .order_by("start")[:limit]
        )
        for appointment in due:
            previous = _apply(appointment, S.NOSHOW, actor=None, reason="", request=None)
            appointment_event_record(
                appointment=appointment,
                type="status_changed",
                actor=None,
                from_status=previous,
                to_status=appointment.status,
                data={"automatic": True},
            )
    return len(due)
