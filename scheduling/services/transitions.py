"""The appointment state machine: one table, one function. Nothing else assigns ``Appointment.status``."""

from __future__ import annotations

from django.utils import timezone

from scheduling.errors import InvalidTransition
from scheduling.listeners import status_changed
from scheduling.models import Appointment, AppointmentStatus

S = AppointmentStatus

APPOINTMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    S.PROPOSED: frozenset({S.PENDING, S.BOOKED, S.CANCELLED, S.ENTERED_IN_ERROR}),
    S.PENDING: frozenset({S.BOOKED, S.CANCELLED, S.ENTERED_IN_ERROR}),
    S.BOOKED: frozenset({S.ARRIVED, S.CHECKED_IN, S.CANCELLED, S.NOSHOW, S.ENTERED_IN_ERROR}),
    S.ARRIVED: frozenset({S.CHECKED_IN, S.FULFILLED, S.CANCELLED, S.ENTERED_IN_ERROR}),
    S.CHECKED_IN: frozenset({S.FULFILLED, S.CANCELLED, S.ENTERED_IN_ERROR}),
    S.FULFILLED: frozenset({S.ENTERED_IN_ERROR}),
    S.CANCELLED: frozenset({S.ENTERED_IN_ERROR}),
    S.NOSHOW: frozenset({S.ENTERED_IN_ERROR}),
    S.ENTERED_IN_ERROR: frozenset(),
}

# Statuses whose resources are given back (their slots stop blocking).
RELEASING_STATUSES = frozenset({S.CANCELLED, S.NOSHOW, S.ENTERED_IN_ERROR})
# Statuses that still hold their resources and can still change.
ACTIVE_STATUSES = frozenset({S.PROPOSED, S.PENDING, S.BOOKED, S.ARRIVED, S.CHECKED_IN})


def appointment_transition(appointment: Appointment, target: str) -> str:
    """Move ``appointment`` to ``target`` if the table allows it, stamping the matching time; returns the previous
    status. Raises ``InvalidTransition``. Does not save (the calling service does, under its row lock, in the
    transaction in which the registered status listeners (``scheduling.listeners``) are called from here)."""
    current = appointment.status
    if target not in APPOINTMENT_TRANSITIONS.get(current, frozenset()):
        raise InvalidTransition(current, target)
    now = timezone.now()
    appointment.status = target
    if target == S.ARRIVED:
        appointment.arrived_at = now
    elif target == S.CHECKED_IN:
        appointment.checked_in_at = now
    elif target == S.FULFILLED:
        appointment.fulfilled_at = now
    elif target == S.CANCELLED:
        appointment.cancelled_at = now
    status_changed(appointment_id=appointment.pk, previous=current, new=target)
    return current
