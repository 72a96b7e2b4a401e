"""What patients see of their doctor while waiting: a notice ("running 10 minutes late") and presence."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Length
from django.utils import timezone as dj_timezone


class ClinicianNotice(models.Model):
    """A practitioner's message to everyone waiting for them. At most one active (``cleared_at`` null) notice per
    practitioner (partial UNIQUE); setting a new one clears the previous. Body 1 to 280 characters (CHECK)."""

    practitioner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.CharField(max_length=280)
    created_at = models.DateTimeField(default=dj_timezone.now)
    cleared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["practitioner"],
                condition=models.Q(cleared_at__isnull=True),
                name="clinician_notice_one_active",
            ),
            models.CheckConstraint(
                condition=models.lookups.GreaterThanOrEqual(Length("body"), 1), name="clinician_notice_body_nonempty"
            ),
        ]

    def __str__(self) -> str:
        return f"Notice {self.pk} of practitioner {self.practitioner_id}"


class PresenceStatus(models.TextChoices):
    AVAILABLE = "available", "Available"
    AWAY = "away", "Away"


class ClinicianPresence(models.Model):
    """The console heartbeat of a practitioner (one row each). Seen within the last minute, they are ``status``;
    otherwise offline. Being in an in-progress visit shows as ``in-visit`` whatever the heartbeat says."""

    practitioner = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, primary_key=True, related_name="+"
    )
    status = models.CharField(max_length=20, choices=PresenceStatus.choices, default=PresenceStatus.AVAILABLE)
    last_seen_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=PresenceStatus.values), name="clinician_presence_status_known"
            ),
        ]

    def __str__(self) -> str:
        return f"Presence of {self.practitioner_id}: {self.status}"
