"""How a patient wants to be reached. Phone and email themselves live on the ehr Patient record."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone as dj_timezone


class ContactPreference(models.Model):
    """One per patient (created on first use with the defaults). ``channels`` is the order in which channels are
    tried (first = primary, the rest = fallbacks). An opt-out is honoured for every message queued later and for
    every queued one at dispatch. ``time_zone`` (IANA, blank = the clinic's) places quiet hours."""

    patient = models.OneToOneField("ehr.Patient", on_delete=models.PROTECT, related_name="contact_preference")
    channels = ArrayField(models.CharField(max_length=10), default=list)
    language = models.CharField(max_length=35, default="en")
    sms_opt_out = models.BooleanField(default=False)
    email_opt_out = models.BooleanField(default=False)
    time_zone = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(channels__contained_by=["sms", "email", "voice"]), name="contact_channels_known"
            ),
        ]

    def __str__(self) -> str:
        return f"contact preference of patient {self.patient_id}"
