"""Domain events of appointments: one append-only row per change, and a live push to everyone who watches.

Pushes carry ids, times and statuses only — never a patient's name or anything clinical; a board that meets an
appointment it does not know fetches the row over REST (audited there).
"""

from __future__ import annotations

from typing import Any

from core.realtime.services import events_publish_many
from core.realtime.streams import group_stream, user_stream
from ehr.models import Patient, User
from scheduling.models import Appointment, AppointmentEvent

BOARD_GROUP = "scheduling.board"
CHANGED = "appointment.changed"


def appointment_wire(appointment: Appointment, *, event_type: str) -> dict[str, Any]:
    """The push payload: enough for a board or a calendar to place and colour the appointment."""
    return {
        "id": appointment.pk,
        "event": event_type,
        "status": appointment.status,
        "start": appointment.start.isoformat(),
        "end": appointment.end.isoformat(),
        "practitioner_id": appointment.practitioner_id,
        "location_id": appointment.location_id,
        "modality": appointment.modality,
        "appointment_type_id": appointment.appointment_type_id,
        "version": appointment.version,
        "arrived_at": appointment.arrived_at.isoformat() if appointment.arrived_at else None,
        "checked_in_at": appointment.checked_in_at.isoformat() if appointment.checked_in_at else None,
        "visit_started_at": appointment.visit_started_at.isoformat() if appointment.visit_started_at else None,
    }


_UNKNOWN = object()


def appointment_event_record(
    *,
    appointment: Appointment,
    type: str,
    actor: User | None,
    from_status: str,
    to_status: str,
    data: dict[str, Any] | None = None,
    patient_user_id: object = _UNKNOWN,
) -> AppointmentEvent:
    """Record a change of ``appointment`` in the caller's transaction and push it (after commit) to the scheduler
    board, the patient's and the practitioner's own streams. ``data``: ids, times and reasons staff typed for the
    booking — never clinical content. ``patient_user_id``: the patient's portal user id (or None) when the caller
    already read it, saving a query; the three streams are numbered in one statement."""
    event = AppointmentEvent.objects.create(
        appointment=appointment,
        type=type,
        actor=actor,
        from_status=from_status,
        to_status=to_status,
        data=data or {},
    )
    wire = appointment_wire(appointment, event_type=type)
    if patient_user_id is _UNKNOWN:
        patient_user_id = Patient.objects.filter(pk=appointment.patient_id).values_list("user_id", flat=True).first()
    streams = [group_stream(BOARD_GROUP), user_stream(appointment.practitioner_id)]
    if patient_user_id is not None and user_stream(patient_user_id) not in streams:
        streams.append(user_stream(patient_user_id))
    events_publish_many(events=[(stream, CHANGED, wire) for stream in streams])
    return event
