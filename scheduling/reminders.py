"""Reminder plans of appointments, and scheduling's side of two-way SMS (docs/notifications.md).

Booking queues an appointment's reminders in the booking's transaction; rescheduling withdraws the pending ones and
queues them again for the new time; cancelling withdraws them. Reminders are outbox rows in notifications (the
one-minute dispatcher sends them); nothing is scheduled with Celery ``eta``. A reminder falling in the patient's
quiet hours moves earlier, to the last minute before the quiet period, never later than the appointment. Reminders
whose time has already passed collapse into one sent at once (unless now is in quiet hours, or a later reminder of
the same kind is still to come)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from ehr.models import Patient, User
from notifications import registry
from notifications.services import (
    in_quiet_hours,
    messages_enqueue_batch,
    messages_withdraw_for_source,
    quiet_hours_adjust,
)
from notifications.services.messages import PlannedMessage, contact_for
from scheduling.errors import SchedulingError
from scheduling.models import Appointment, AppointmentStatus, Modality, ReminderPlan
from scheduling.services.transitions import ACTIVE_STATUSES

SOURCE = "appointment"
KEY_PREFIX = "reminder:"
VIDEO_KEY = "reminder:video"
DEVICE_CHECK_PATH = "/visits/check-in/{appointment_id}"


@dataclass(frozen=True)
class PlannedReminder:
    key: str
    template_key: str
    due_at: dt.datetime


_UNREAD = object()


def reminder_times(
    *,
    appointment_type_id: int,
    modality: str,
    start: dt.datetime,
    time_zone: str,
    now: dt.datetime,
    plan: ReminderPlan | object | None = _UNREAD,
) -> list[PlannedReminder]:
    """The reminders an appointment starting at ``start`` gets, with quiet hours (in ``time_zone``) applied.
    ``plan``: the type's reminder plan (None: it has none) when the caller already read it."""
    if plan is _UNREAD:
        plan = ReminderPlan.objects.filter(appointment_type_id=appointment_type_id).first()
    assert plan is None or isinstance(plan, ReminderPlan)
    if plan is not None and not plan.active:
        return []
    offsets = list(plan.offsets_minutes) if plan is not None else list(settings.REMINDER_DEFAULT_OFFSETS_MINUTES)
    video_minutes = plan.video_link_minutes if plan is not None else settings.REMINDER_VIDEO_LINK_MINUTES
    wanted = [(f"{KEY_PREFIX}{m}", "reminder", m) for m in sorted(set(offsets), reverse=True)]
    if modality == Modality.VIDEO and video_minutes:
        wanted.append((VIDEO_KEY, "video_checkin", video_minutes))
    result: list[PlannedReminder] = []
    overdue: dict[str, PlannedReminder] = {}  # per template: only the latest of the reminders already past
    for key, template_key, minutes in wanted:
        due = start - dt.timedelta(minutes=minutes)
        due = min(quiet_hours_adjust(due_at=due, time_zone=time_zone), start)
        if due <= now:
            if now < start and not in_quiet_hours(now, time_zone):
                overdue[template_key] = PlannedReminder(key=key, template_key=template_key, due_at=now)
            continue
        result.append(PlannedReminder(key=key, template_key=template_key, due_at=due))
    # A reminder whose time has passed is sent now, once: booking two hours ahead gives one message, not two.
    for reminder in overdue.values():
        if not any(r.template_key == reminder.template_key for r in result):
            result.append(reminder)
    return result


# What a reminder plan reads besides the patient's contact details, in one statement: the clinic's name and zone,
# the practitioner's and the patient's names for the text, and the type's reminder plan.
_PLAN_FACTS_SQL = """
SELECT location.name, location.timezone, practitioner.last_name, patient.given_name,
       plan.id, plan.offsets_minutes, plan.video_link_minutes, plan.active
  FROM (SELECT 1) AS one
  LEFT JOIN ehr_location AS location ON location.id = %(location)s
  LEFT JOIN ehr_user AS practitioner ON practitioner.id = %(practitioner)s
  LEFT JOIN ehr_patient AS patient ON patient.id = %(patient)s
  LEFT JOIN scheduling_reminderplan AS plan ON plan.appointment_type_id = %(type)s
"""


def _context(
    appointment: Appointment, time_zone: str, clinic: str, practitioner_last_name: str | None, first_name: str | None
) -> dict[str, Any]:
    zone = ZoneInfo(time_zone)
    local = appointment.start.astimezone(zone)
    base = settings.NOTIFICATIONS_PUBLIC_BASE_URL.rstrip("/")
    return {
        "appointment_id": appointment.pk,
        "first_name": first_name or "",
        "practitioner": f"Dr {practitioner_last_name}" if practitioner_last_name else "your clinician",
        "clinic": clinic,
        "when": local.strftime("%a %d %b %H:%M"),
        "time": local.strftime("%H:%M"),
        "device_check_url": base + DEVICE_CHECK_PATH.format(appointment_id=appointment.pk),
    }


def reminders_plan(*, appointment: Appointment) -> int:
    """Queue the reminders of a just-booked (or just-moved) appointment in the caller's transaction, in one INSERT;
    returns how many the plan has. Idempotent per reminder key while not withdrawn (a repeated call writes nothing).
    Callers: booking services (this is on booking's hot path: three queries, the contact, the facts above and the
    insert)."""
    if appointment.status not in ACTIVE_STATUSES:
        return 0
    contact = contact_for(appointment.patient_id)
    with connection.cursor() as cursor:
        cursor.execute(
            _PLAN_FACTS_SQL,
            {
                "location": appointment.location_id,
                "practitioner": appointment.practitioner_id,
                "patient": appointment.patient_id,
                "type": appointment.appointment_type_id,
            },
        )
        clinic, location_zone, last_name, first_name, plan_id, offsets, video_minutes, active = cursor.fetchone()
    plan = (
        None
        if plan_id is None
        else ReminderPlan(
            pk=plan_id,
            appointment_type_id=appointment.appointment_type_id,
            offsets_minutes=offsets,
            video_link_minutes=video_minutes,
            active=active,
        )
    )
    time_zone = contact.time_zone or location_zone or "UTC"
    planned = reminder_times(
        appointment_type_id=appointment.appointment_type_id,
        modality=appointment.modality,
        start=appointment.start,
        time_zone=time_zone,
        now=timezone.now(),
        plan=plan,
    )
    if not planned:
        return 0
    messages_enqueue_batch(
        patient_id=appointment.patient_id,
        kind="reminder",
        messages=[PlannedMessage(template_key=r.template_key, due_at=r.due_at, source_key=r.key) for r in planned],
        context=_context(appointment, time_zone, clinic or "", last_name, first_name),
        source=(SOURCE, appointment.pk),
        contact=contact,
    )
    return len(planned)


def reminders_withdraw(*, appointment_id: int) -> int:
    """Withdraw the appointment's pending reminders (cancel), in the caller's transaction."""
    return messages_withdraw_for_source(source_type=SOURCE, source_id=appointment_id, key_prefix=KEY_PREFIX)


def reminders_replan(*, appointment: Appointment) -> int:
    """After a reschedule: withdraw the pending reminders, queue the new ones (same transaction)."""
    reminders_withdraw(appointment_id=appointment.pk)
    return reminders_plan(appointment=appointment)


def reminders_backfill(*, batch_size: int = 200) -> int:
    """Plan the reminders of every active appointment that has not started yet (e.g. appointments booked before
    reminders existed, or after a plan was switched on); returns how many appointments have reminders in their
    plan. Safe to run any number of times: ``reminders_plan`` writes nothing for a reminder key that already has a
    live message (queued, sent or delivered), so nothing is sent twice. One transaction per batch. Callers: the
    ``reminders_backfill`` management command (``make run`` runs it after the demo data)."""
    planned = 0
    last_id = 0
    while True:
        with transaction.atomic():
            batch = list(
                Appointment.objects.filter(
                    pk__gt=last_id, status__in=ACTIVE_STATUSES, start__gt=timezone.now()
                ).order_by("pk")[:batch_size]
            )
            for appointment in batch:
                if reminders_plan(appointment=appointment):
                    planned += 1
        if len(batch) < batch_size:
            return planned
        last_id = batch[-1].pk


# --- registered with notifications (SchedulingConfig.ready) ------------------------------------------------------


def appointment_is_current(source_id: str) -> bool:
    """Reminders of an appointment are still wanted while it is booked and has not started."""
    row = Appointment.objects.filter(pk=int(source_id)).values_list("status", "start").first()
    return row is not None and row[0] == AppointmentStatus.BOOKED and row[1] > timezone.now()


def appointments_current(source_ids: list[str]) -> set[str]:
    """``appointment_is_current`` for many appointments in one query (a dispatch pass)."""
    ids = [int(source_id) for source_id in source_ids if source_id.isdigit()]
    current = Appointment.objects.filter(pk__in=ids, status=AppointmentStatus.BOOKED, start__gt=timezone.now())
    return {str(pk) for pk in current.values_list("pk", flat=True)}


def _patient_actor(appointment_id: int, patient_id: int) -> tuple[Appointment | None, User | None]:
    appointment = Appointment.objects.filter(pk=appointment_id, patient_id=patient_id).first()
    user_id = Patient.objects.filter(pk=patient_id).values_list("user_id", flat=True).first()
    return appointment, User.objects.filter(pk=user_id).first() if user_id else None


def appointment_confirm_by_sms(source_id: str, patient_id: int) -> str:
    """C: the patient confirms; recorded as an appointment event (the status stays ``booked``)."""
    from scheduling.events import appointment_event_record

    with transaction.atomic():
        appointment = Appointment.objects.select_for_update().filter(pk=int(source_id), patient_id=patient_id).first()
        if appointment is None or appointment.status != AppointmentStatus.BOOKED:
            return "not_active"
        appointment_event_record(
            appointment=appointment,
            type="confirmed",
            actor=None,
            from_status=appointment.status,
            to_status=appointment.status,
            data={"channel": "sms"},
        )
    return "confirmed"


def appointment_cancel_by_sms(source_id: str, patient_id: int) -> str:
    """X: cancelled through ``appointment_cancel`` as the patient (their cancellation window applies)."""
    from scheduling.services.booking import appointment_cancel

    appointment, actor = _patient_actor(int(source_id), patient_id)
    if appointment is None or appointment.status != AppointmentStatus.BOOKED:
        return "not_active"
    if actor is None:
        return "too_late"  # no portal account to act as: the clinic cancels it
    try:
        appointment_cancel(actor=actor, appointment_id=appointment.pk, reason="Cancelled by text message reply")
    except SchedulingError as exc:
        return "too_late" if exc.code == "too_late" else "not_active"
    return "cancelled"


def appointment_reschedule_request_by_sms(source_id: str, patient_id: int) -> str:
    """R: recorded as an appointment event for the front desk to call the patient back."""
    from scheduling.events import appointment_event_record

    with transaction.atomic():
        appointment = Appointment.objects.select_for_update().filter(pk=int(source_id), patient_id=patient_id).first()
        if appointment is None or appointment.status != AppointmentStatus.BOOKED:
            return "not_active"
        appointment_event_record(
            appointment=appointment,
            type="reschedule_requested",
            actor=None,
            from_status=appointment.status,
            to_status=appointment.status,
            data={"channel": "sms"},
        )
    return "reschedule_requested"


def register() -> None:
    registry.register_source_check(SOURCE, appointment_is_current, many=appointments_current)
    registry.register_action_handler("appointment.confirm", appointment_confirm_by_sms)
    registry.register_action_handler("appointment.cancel", appointment_cancel_by_sms)
    registry.register_action_handler("appointment.reschedule_request", appointment_reschedule_request_by_sms)
