"""Appointment status changes after booking: arrival, check-in, no-show, fulfilment, entered in error."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, Value
from django.http import HttpRequest
from django.utils import timezone

from ehr.models import Patient, Role, User
from ehr.services.clinical import encounter_close, encounter_start
from scheduling.dto import AppointmentRef
from scheduling.errors import BookingForbidden, InvalidBooking, InvalidTransition, NotFound
from scheduling.events import appointment_event_record
from scheduling.models import Appointment, AppointmentStatus
from scheduling.selectors import appointment_dto
from scheduling.services.booking import (
    appointment_for_update,
    authorise_change,
    cancel_planned_encounter,
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
        cancel_planned_encounter(actor=actor, appointment=appointment, reason=reason or status, request=request)
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


def appointment_patient_arrive(
    *, actor: User, appointment_id: int, request: HttpRequest | None = None
) -> AppointmentRef:
    """The patient themself says they are here (telehealth check-in): their own ``booked`` appointment becomes
    ``arrived`` and the change is recorded as an appointment event (the board shows it live). An appointment that
    has already arrived is returned unchanged (check-in is repeatable). Only the patient whose portal login is
    linked to the appointment's patient may call it; anyone else gets ``NotFound`` (nothing about the appointment
    is revealed). Other statuses raise ``InvalidTransition``."""
    with transaction.atomic():
        appointment = appointment_for_update(appointment_id, None)
        patient_user_id = Patient.objects.filter(pk=appointment.patient_id).values_list("user_id", flat=True).first()
        if patient_user_id is None or patient_user_id != actor.pk:
            raise NotFound("Appointment", appointment_id)
        if appointment.status == S.ARRIVED:
            return appointment_dto(appointment)
        previous = appointment_transition(appointment, S.ARRIVED)
        appointment.version += 1
        appointment.updated_at = timezone.now()
        appointment.save()
        appointment_event_record(
            appointment=appointment,
            type="patient_arrived",
            actor=actor,
            from_status=previous,
            to_status=appointment.status,
        )
    return appointment_dto(appointment)


CLINICIANS = (Role.PRACTITIONER, Role.NURSE)


def _clinician_change(actor: User, appointment_id: int, request: HttpRequest | None) -> None:
    if not actor.has_role(*CLINICIANS):
        raise BookingForbidden("only clinicians start and complete visits")
    authorise_change(actor=actor, appointment_id=appointment_id, request=request)


def appointment_visit_start(
    *, actor: User, appointment_id: int, expected_version: int | None = None, request: HttpRequest | None = None
) -> AppointmentRef:
    """The clinician begins the visit: a booked or arrived appointment is checked in first, ``visit_started_at`` is
    stamped (the board's "in visit") and the planned EHR encounter goes in progress (``ehr encounter_start``), in
    one transaction. Telehealth calls this when the doctor admits the patient. Starting twice raises
    ``InvalidBooking``."""
    _clinician_change(actor, appointment_id, request)
    with transaction.atomic():
        appointment = appointment_for_update(appointment_id, expected_version)
        if appointment.visit_started_at is not None:
            raise InvalidBooking({"status": ["The visit has already started."]})
        previous = appointment.status
        if appointment.status in (S.BOOKED, S.ARRIVED):
            appointment_transition(appointment, S.CHECKED_IN)
        elif appointment.status != S.CHECKED_IN:
            raise InvalidTransition(appointment.status, "in visit")
        appointment.visit_started_at = timezone.now()
        appointment.version += 1
        appointment.updated_at = appointment.visit_started_at
        appointment.save()
        if appointment.encounter_id is not None:
            encounter_start(actor=actor, encounter_id=appointment.encounter_id, request=request)
        appointment_event_record(
            appointment=appointment,
            type="visit_started",
            actor=actor,
            from_status=previous,
            to_status=appointment.status,
        )
    return appointment_dto(appointment)


def appointment_complete(
    *, actor: User, appointment_id: int, expected_version: int | None = None, request: HttpRequest | None = None
) -> AppointmentRef:
    """The visit is over: the appointment becomes ``fulfilled`` and its EHR encounter is closed (duration and
    modality recorded there for billing), in one transaction. Only a started visit can be completed."""
    _clinician_change(actor, appointment_id, request)
    with transaction.atomic():
        appointment = appointment_for_update(appointment_id, expected_version)
        if appointment.visit_started_at is None:
            raise InvalidBooking({"status": ["Start the visit before completing it."]})
        previous = appointment_transition(appointment, S.FULFILLED)
        appointment.version += 1
        appointment.updated_at = timezone.now()
        appointment.save()
        if appointment.encounter_id is not None:
            encounter_close(actor=actor, encounter_id=appointment.encounter_id, request=request)
        appointment_event_record(
            appointment=appointment, type="fulfilled", actor=actor, from_status=previous, to_status=appointment.status
        )
    return appointment_dto(appointment)
