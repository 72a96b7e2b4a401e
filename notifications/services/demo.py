"""Demo notifications for `make run` (demo mode, with the fake Twilio and SMTP of scripts/fake_providers.sh): the
demo patients can be reached (``patient`` by SMS first, ``patient2`` by email first), the demo doctors have a staff
number for wait alerts, and every demo patient with an upcoming appointment has a reminder due now, so the beat's
dispatcher really hands an SMS and an email to the fakes within a minute of `make run`.

Idempotent: preferences still at the defaults get the demo's order, staff numbers already there are kept,
and a patient who already has a message due within the minute on their first channel gets no other; otherwise one
more reminder of their upcoming appointment is queued (source key ``reminder:demo:<minute>``, withdrawn like any
reminder if the appointment is cancelled). Quiet hours are not applied to this demo reminder: the point is to see
one arrive. Synthetic data; refused in production."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ehr.models import Patient, User
from notifications import registry
from notifications.errors import NotificationsError
from notifications.models import MessageState, OutboundMessage, StaffContact
from notifications.services.messages import (
    DEFAULT_CHANNELS,
    contact_for,
    message_enqueue_for_patient,
    preference_for,
)

DEMO_PATIENT_CHANNELS = {"patient": ["sms", "email"], "patient2": ["email", "sms"]}
DEMO_STAFF_PHONES = {"doctor": "+15550100001", "doctor2": "+15550100002"}
DUE_WITHIN = dt.timedelta(minutes=1)
APPOINTMENT_SOURCE = "appointment"
DEMO_KEY_PREFIX = "reminder:demo:"


class DemoRefused(NotificationsError):
    """The notifications demo refuses to run with production settings."""

    code = "demo_refused"


@dataclass(frozen=True)
class NotificationsDemoSummary:
    preferences_set: int
    staff_contacts_created: int
    patients_due_now: int
    reminders_queued: int


def demo_seed_notifications() -> NotificationsDemoSummary:
    """Make the demo's reminders reach the local fakes now (see the module docstring). Runs after the ehr,
    scheduling and telehealth demos (their bookings queued the reminder plans). Callers: the demo command."""
    if getattr(settings, "ENVIRONMENT", "") == "production":
        raise DemoRefused()
    now = timezone.now()
    preferences = staff = due = queued = 0
    with transaction.atomic():
        patients = dict(
            Patient.objects.filter(user__username__in=list(DEMO_PATIENT_CHANNELS)).values_list("user__username", "pk")
        )
        for username, patient_id in sorted(patients.items()):
            # The bookings of the earlier demos created default preferences; a demo user's own choice is kept.
            preference = preference_for(patient_id, lock=True)
            wanted = DEMO_PATIENT_CHANNELS[username]
            if preference.channels != wanted and list(preference.channels) in ([], DEFAULT_CHANNELS):
                preference.channels = list(wanted)
                preference.save(update_fields=["channels"])
                preferences += 1
        for username, phone in sorted(DEMO_STAFF_PHONES.items()):
            user_id = User.objects.filter(username=username).values_list("pk", flat=True).first()
            if user_id is not None:
                staff += int(StaffContact.objects.get_or_create(user_id=user_id, defaults={"phone": phone})[1])
        for patient_id in sorted(patients.values()):
            # Due now on the patient's first channel: reminders queued by the bookings before their demo channel
            # order was set went by SMS, and patient2 should show an email arriving too.
            usable = contact_for(patient_id).channels
            if (
                usable
                and OutboundMessage.objects.filter(
                    patient_id=patient_id,
                    channel=usable[0][0],
                    state=MessageState.QUEUED,
                    next_attempt_at__lte=now + DUE_WITHIN,
                ).exists()
            ):
                due += 1
                continue
            latest = _latest_current_reminder(patient_id)
            if latest is None:
                continue  # no upcoming appointment with reminders: nothing to remind of
            message_enqueue_for_patient(
                patient_id=patient_id,
                kind="reminder",
                template_key="reminder",
                due_at=now,
                context=latest.context,
                source=(APPOINTMENT_SOURCE, latest.source_id, f"{DEMO_KEY_PREFIX}{now:%Y%m%d%H%M}"),
            )
            due += 1
            queued += 1
    return NotificationsDemoSummary(
        preferences_set=preferences, staff_contacts_created=staff, patients_due_now=due, reminders_queued=queued
    )


def _latest_current_reminder(patient_id: int) -> OutboundMessage | None:
    """The patient's most recently planned appointment reminder whose appointment still wants reminders (booked,
    not started: the source check scheduling registers)."""
    candidates = (
        OutboundMessage.objects.filter(
            patient_id=patient_id, source_type=APPOINTMENT_SOURCE, template_key="reminder", fallback_of__isnull=True
        )
        .exclude(state=MessageState.WITHDRAWN)
        .order_by("-created_at")
    )
    for message in candidates[:20]:
        if registry.source_is_current(APPOINTMENT_SOURCE, message.source_id):
            return message
    return None
