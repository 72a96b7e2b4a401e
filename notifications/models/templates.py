"""The clinic's wording per message kind, channel and language."""

from __future__ import annotations

from django.db import models


class MessageTemplate(models.Model):
    """``subject`` (email) and ``body`` are ``str.format`` templates over the message's context (names of the
    clinic and practitioner, local date and time, links) — never clinical details. One per (kind, channel,
    language); a missing language falls back to English."""

    kind = models.CharField(max_length=60)
    channel = models.CharField(max_length=10)
    language = models.CharField(max_length=35, default="en")
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "channel", "language"], name="message_template_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}/{self.channel}/{self.language}"
