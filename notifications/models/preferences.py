"""How a patient wants to be reached (phone and email themselves live on the ehr Patient record), and how a staff
member is alerted."""

from __future__ import annotations

from django.conf import settings
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


class StaffContact(models.Model):
    """How a staff member (doctor, nurse) is alerted: a mobile number for SMS alerts (E.164 or digits; blank = no
    SMS) and whether they want alerts by text at all. Their email is the one on their login. Staff alerts carry no
    patient names (``notifications.services.staff_alert_send``). Edited in the admin."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, primary_key=True, related_name="staff_contact"
    )
    phone = models.CharField(max_length=20, blank=True)
    sms_alerts = models.BooleanField(default=True)
    email_alerts = models.BooleanField(default=True)
    updated_at = models.DateTimeField(default=dj_timezone.now)

    def __str__(self) -> str:
        return f"staff contact of user {self.user_id}"  # never the number
