"""The outbox: one row per message (SMS, email, voice) and one row per attempt to hand it to a provider."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone as dj_timezone


class Channel(models.TextChoices):
    SMS = "sms", "SMS"
    EMAIL = "email", "Email"
    VOICE = "voice", "Voice call"


class MessageState(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    UNDELIVERABLE = "undeliverable", "Undeliverable"
    WITHDRAWN = "withdrawn", "Withdrawn"


class Provider(models.TextChoices):
    TWILIO = "twilio", "Twilio"
    TWILIO_SECONDARY = "twilio_secondary", "Second SMS provider"
    SMTP = "smtp", "SMTP"


class OutboundMessage(models.Model):
    """A message to one recipient, written in the same transaction as the event that caused it.

    Invariants: ``state`` changes only through ``notifications.services.transitions.message_transition`` (one
    table) and only under this row's lock; ``idempotency_key`` is unique (it is also the SMTP Message-ID and rides
    in Twilio's StatusCallback URL), so one logical message is one row; while not withdrawn, a source (e.g.
    appointment 7, ``reminder:1440``) has at most one original message (partial UNIQUE index); a failed message
    has at most one fallback (UNIQUE ``fallback_of``). ``recipient`` is a phone number or an address: never
    logged. ``subject``/``body`` are rendered once, when the message is first claimed, so a re-send after a
    crash sends exactly the same text (and a provider lookup can recognise it)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    kind = models.CharField(max_length=40)
    template_key = models.CharField(max_length=60)
    language = models.CharField(max_length=35, default="en")
    recipient = models.CharField(max_length=254, blank=True)
    patient = models.ForeignKey(
        "ehr.Patient", on_delete=models.PROTECT, null=True, blank=True, related_name="outbound_messages"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    context = models.JSONField(default=dict, blank=True)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    state = models.CharField(max_length=20, choices=MessageState.choices, default=MessageState.QUEUED)
    due_at = models.DateTimeField()
    next_attempt_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    provider = models.CharField(max_length=20, choices=Provider.choices, blank=True)
    provider_message_id = models.CharField(max_length=64, blank=True)
    idempotency_key = models.CharField(max_length=120, unique=True)
    fallback_of = models.OneToOneField("self", on_delete=models.PROTECT, null=True, blank=True, related_name="fallback")
    source_type = models.CharField(max_length=40, blank=True)
    source_id = models.CharField(max_length=64, blank=True)
    source_key = models.CharField(max_length=60, blank=True)
    last_error_code = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now)
    updated_at = models.DateTimeField(default=dj_timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="outbound_due",
                condition=models.Q(state="queued"),
            ),
            models.Index(fields=["updated_at"], name="outbound_sending", condition=models.Q(state="sending")),
            models.Index(fields=["source_type", "source_id"], name="outbound_source"),
            models.Index(fields=["created_at"], name="outbound_created"),
            models.Index(fields=["provider_message_id"], name="outbound_provider_id"),
            models.Index(fields=["recipient", "sent_at"], name="outbound_recipient_sent"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(state__in=MessageState.values), name="outbound_state_known"),
            models.CheckConstraint(condition=models.Q(channel__in=Channel.values), name="outbound_channel_known"),
            models.CheckConstraint(
                condition=~models.Q(state="sent") | ~models.Q(provider_message_id=""),
                name="outbound_sent_has_provider_id",
            ),
            models.UniqueConstraint(
                fields=["source_type", "source_id", "source_key"],
                condition=~models.Q(source_type="") & models.Q(fallback_of__isnull=True) & ~models.Q(state="withdrawn"),
                name="outbound_one_per_source",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.channel} {self.id}"  # never the recipient


class DeliveryAttempt(models.Model):
    """One hand-over of a message to a provider. ``finished_at`` empty means the outcome is not known yet (in
    flight, or the worker died): the reconciler asks the provider before anything is sent again."""

    class Outcome(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        ERROR = "error", "Error"
        TIMEOUT = "timeout", "Timeout"

    message = models.ForeignKey(OutboundMessage, on_delete=models.CASCADE, related_name="delivery_attempts")
    number = models.PositiveSmallIntegerField()
    provider = models.CharField(max_length=20, choices=Provider.choices)
    started_at = models.DateTimeField(default=dj_timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    provider_message_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["message_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["message", "number"], name="delivery_attempt_number_unique"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.message_id}"
