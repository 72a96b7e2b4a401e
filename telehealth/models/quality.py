"""Call-quality summaries the browsers report during a visit (for support staff)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone as dj_timezone

from telehealth.models.visits import Visit


class CallQualityReport(models.Model):
    """One summary of WebRTC stats from one participant's browser (``stats`` validated by the service: numbers,
    candidate types, flags; never SDP or addresses). At most one per user per visit every 5 seconds (service, under
    an advisory lock). ``role``: patient or practitioner (CHECK)."""

    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, related_name="quality_reports")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=20)
    stats = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        indexes = [models.Index(fields=["visit", "user", "created_at"], name="quality_visit_user_time")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(role__in=["patient", "practitioner"]), name="quality_report_role_known"
            ),
        ]

    def __str__(self) -> str:
        return f"Quality report {self.pk} of visit {self.visit_id}"
