"""Signed, single-use check-in links (sent with reminders)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone as dj_timezone


class CheckInLink(models.Model):
    """One link for one appointment. The URL carries ``django.core.signing`` of the id (salt
    ``telehealth.checkin``), so ids cannot be forged; consuming it sets ``used_at`` under a row lock (single use).
    Invariant (CHECK): it expires after it was created; ``used_at`` (when set) is before ``expires_at``."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    appointment_id = models.BigIntegerField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        indexes = [models.Index(fields=["appointment_id"], name="checkin_link_appointment")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("created_at")), name="checkin_link_expires_after_creation"
            ),
            models.CheckConstraint(
                condition=models.Q(used_at__isnull=True) | models.Q(used_at__lte=models.F("expires_at")),
                name="checkin_link_used_before_expiry",
            ),
        ]

    def __str__(self) -> str:
        return f"Check-in link for appointment {self.appointment_id}"
