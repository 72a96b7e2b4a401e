"""The waitlist: patients who want an earlier or any slot of a type, and the offers made to them."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone as dj_timezone

from ehr.models import Location, Patient
from scheduling.models.appointments import Appointment
from scheduling.models.types import AppointmentType


class WaitlistStatus(models.TextChoices):
    ACTIVE = "active", "Waiting"
    BOOKED = "booked", "Booked"
    WITHDRAWN = "withdrawn", "Withdrawn"


class WaitlistEntry(models.Model):
    """A patient waiting for a slot of ``appointment_type`` (optionally with one practitioner) between
    ``earliest`` and ``latest``. Served in ``created_at`` order when a slot frees up."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    appointment_type = models.ForeignKey(AppointmentType, on_delete=models.PROTECT, related_name="+")
    practitioner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    earliest = models.DateTimeField()
    latest = models.DateTimeField()
    status = models.CharField(max_length=20, choices=WaitlistStatus.choices, default=WaitlistStatus.ACTIVE)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(
                fields=["appointment_type", "earliest"], name="waitlist_active", condition=models.Q(status="active")
            )
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(latest__gt=models.F("earliest")), name="waitlist_window"),
            models.CheckConstraint(condition=models.Q(status__in=WaitlistStatus.values), name="waitlist_status"),
        ]

    def __str__(self) -> str:
        return f"Waitlist entry {self.pk} ({self.status})"


class OfferStatus(models.TextChoices):
    OPEN = "open", "Offered"
    ACCEPTED = "accepted", "Accepted"
    TAKEN = "taken", "Taken by someone else"
    DECLINED = "declined", "Declined"
    EXPIRED = "expired", "Expired"


class WaitlistOffer(models.Model):
    """A freed slot offered to one waitlisted patient. The same slot (``offer_group``) is offered to several
    patients at once; the first to accept books it, the others' offers become ``taken``."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    offer_group = models.UUIDField()
    entry = models.ForeignKey(WaitlistEntry, on_delete=models.PROTECT, related_name="offers")
    appointment_type = models.ForeignKey(AppointmentType, on_delete=models.PROTECT, related_name="+")
    practitioner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="+")
    schedule_ids = ArrayField(models.BigIntegerField())
    start = models.DateTimeField()
    end = models.DateTimeField()
    status = models.CharField(max_length=20, choices=OfferStatus.choices, default=OfferStatus.OPEN)
    expires_at = models.DateTimeField()
    appointment = models.ForeignKey(Appointment, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["offer_group"], name="waitlist_offer_group")]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=OfferStatus.values), name="waitlist_offer_status"),
            # At most one accepted offer per freed slot, whatever the races.
            models.UniqueConstraint(
                fields=["offer_group"], condition=models.Q(status="accepted"), name="waitlist_offer_one_winner"
            ),
        ]

    def __str__(self) -> str:
        return f"Offer {self.pk} ({self.status})"
