"""Inbound SMS replies (C, R, X, STOP, START, HELP)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone as dj_timezone


class InboundAction(models.TextChoices):
    CONFIRM = "confirm", "Confirm"
    RESCHEDULE = "reschedule", "Reschedule request"
    CANCEL = "cancel", "Cancel"
    STOP = "stop", "Stop"
    START = "start", "Start"
    HELP = "help", "Help"
    UNKNOWN = "unknown", "Unknown"


class InboundSms(models.Model):
    """One reply, keyed by the provider's message sid (UNIQUE): a webhook delivered twice is handled once and
    answered with the same reply. ``from_number`` and ``body`` are never logged."""

    sid = models.CharField(max_length=64, unique=True)
    from_number = models.CharField(max_length=20)
    body = models.CharField(max_length=1600)
    received_at = models.DateTimeField(default=dj_timezone.now)
    action = models.CharField(max_length=20, choices=InboundAction.choices)
    handled_at = models.DateTimeField(null=True, blank=True)
    result = models.CharField(max_length=40, blank=True)
    reply = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["from_number", "received_at"], name="inbound_sms_from")]

    def __str__(self) -> str:
        return f"inbound sms {self.sid}"
