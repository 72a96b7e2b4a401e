"""Two-way SMS: replies to reminders (C confirm, R reschedule request, X cancel) and STOP/START/HELP."""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from ehr.models import Patient
from notifications import registry
from notifications.models import Channel, InboundAction, InboundSms, MessageState, OutboundMessage
from notifications.services.dispatch import _opt_out_sms
from notifications.services.messages import preference_for

A = InboundAction
KEYWORDS: dict[str, str] = {
    "C": A.CONFIRM,
    "CONFIRM": A.CONFIRM,
    "YES": A.CONFIRM,
    "R": A.RESCHEDULE,
    "RESCHEDULE": A.RESCHEDULE,
    "X": A.CANCEL,
    "CANCEL": A.CANCEL,
    "STOP": A.STOP,
    "STOPALL": A.STOP,
    "UNSUBSCRIBE": A.STOP,
    "END": A.STOP,
    "QUIT": A.STOP,
    "START": A.START,
    "UNSTOP": A.START,
    "HELP": A.HELP,
    "INFO": A.HELP,
}
HANDLERS: dict[str, str] = {
    A.CONFIRM: "appointment.confirm",
    A.CANCEL: "appointment.cancel",
    A.RESCHEDULE: "appointment.reschedule_request",
}
REPLY_WINDOW = dt.timedelta(days=14)

REPLIES: dict[str, str] = {
    "stopped": "You will no longer receive text messages from your clinic. Reply START to receive them again.",
    "started": "Text messages from your clinic are on again. Reply STOP to stop them.",
    "help": "Reply C to confirm your appointment, R to ask for another time, X to cancel. STOP to stop texts.",
    "confirmed": "Thank you, your appointment is confirmed.",
    "cancelled": "Your appointment is cancelled. Reply R or call the clinic to book another time.",
    "reschedule_requested": "Thank you. The clinic will contact you to find another time.",
    "too_late": "It is too close to your appointment to change it by text. Please call the clinic.",
    "not_active": "This appointment can no longer be changed by text. Please call the clinic.",
    "no_appointment": "We could not find an upcoming appointment for this number. Please call the clinic.",
    "unknown": "Sorry, we did not understand. Reply C to confirm, R to reschedule, X to cancel, or HELP.",
}


def parse_action(body: str) -> str:
    words = body.strip().upper().split()
    return KEYWORDS.get(words[0].strip(".!"), A.UNKNOWN) if words else A.UNKNOWN


def _phone_forms(number: str) -> list[str]:
    digits = number.strip()
    bare = digits.lstrip("+")
    return [bare, f"+{bare}"]


def inbound_sms_handle(*, sid: str, from_number: str, body: str) -> str:
    """Handle one verified inbound SMS and return the reply text. Idempotent on ``sid``: a webhook delivered again
    gets the same reply and changes nothing more. STOP/START set the SMS opt-out of every patient with this number
    at once (every later message honours it at dispatch). C/R/X act on the appointment of the latest reminder sent
    to this number within two weeks, through the handlers scheduling registered (``notifications.registry``).
    Callers: the Twilio inbound webhook view."""
    action = parse_action(body)
    with transaction.atomic():
        existing = InboundSms.objects.select_for_update().filter(sid=sid).first()
        if existing is not None:
            return existing.reply
        row = InboundSms(sid=sid, from_number=from_number[:20], body=body[:1600], action=action)
        try:
            with transaction.atomic():
                row.save(force_insert=True)
        except IntegrityError:
            return InboundSms.objects.get(sid=sid).reply
        result = _act(action, from_number)
        row.result = result
        row.reply = REPLIES.get(result, REPLIES["unknown"])
        row.handled_at = timezone.now()
        row.save(update_fields=["result", "reply", "handled_at"])
        return row.reply


def _act(action: str, from_number: str) -> str:
    forms = _phone_forms(from_number)
    if action in (A.STOP, A.START):
        for patient_id in Patient.objects.filter(phone__in=forms).values_list("id", flat=True):
            if action == A.STOP:
                _opt_out_sms(patient_id)
            else:
                preference = preference_for(patient_id, lock=True)
                preference.sms_opt_out = False
                preference.updated_at = timezone.now()
                preference.save(update_fields=["sms_opt_out", "updated_at"])
        return "stopped" if action == A.STOP else "started"
    if action == A.HELP:
        return "help"
    if action not in HANDLERS:
        return "unknown"
    reminder = (
        OutboundMessage.objects.filter(
            Q(recipient__in=forms),
            channel=Channel.SMS,
            source_type="appointment",
            state__in=[MessageState.SENT, MessageState.DELIVERED],
            sent_at__gte=timezone.now() - REPLY_WINDOW,
            patient__isnull=False,
        )
        .order_by("-sent_at")
        .values_list("source_id", "patient_id")
        .first()
    )
    if reminder is None:
        return "no_appointment"
    handler = registry.action_handler(HANDLERS[action])
    if handler is None:
        return "no_appointment"
    source_id, patient_id = reminder
    assert patient_id is not None
    return handler(source_id, patient_id)
