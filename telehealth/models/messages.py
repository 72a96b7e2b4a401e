"""Chat and notices around a visit."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Length
from django.utils import timezone as dj_timezone

from telehealth.models.visits import Visit


class MessageKind(models.TextChoices):
    CHAT = "chat", "Chat"
    NOTICE = "notice", "Notice"


class VisitMessage(models.Model):
    """A chat line around a visit (waiting room and in call). ``sender`` is None for system notices. The body is
    1 to 1000 characters (CHECK); bodies are PHI: pushed only to the visit's audience, never logged."""

    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, related_name="messages")
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=10, choices=MessageKind.choices, default=MessageKind.CHAT)
    body = models.TextField()
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["visit", "created_at"], name="visit_message_visit")]
        constraints = [
            models.CheckConstraint(condition=models.Q(kind__in=MessageKind.values), name="visit_message_kind_known"),
            models.CheckConstraint(
                condition=models.lookups.GreaterThanOrEqual(Length("body"), 1)
                & models.lookups.LessThanOrEqual(Length("body"), 1000),
                name="visit_message_body_length",
            ),
        ]

    def __str__(self) -> str:
        return f"Message {self.pk} of visit {self.visit_id}"
