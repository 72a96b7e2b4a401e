"""Appointments, the busy slots that make double booking impossible, holds, recurring series and domain events."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import DateTimeRangeField, RangeOperators
from django.contrib.postgres.indexes import GistIndex
from django.db import models
from django.utils import timezone as dj_timezone

from ehr.models import Location, Patient
from scheduling.models.resources import Schedule
from scheduling.models.types import AppointmentType, Modality


class AppointmentStatus(models.TextChoices):
    """FHIR appointmentstatus. Changed only by ``scheduling.services.transitions.appointment_transition``."""

    PROPOSED = "proposed", "Proposed"
    PENDING = "pending", "Pending"
    BOOKED = "booked", "Booked"
    ARRIVED = "arrived", "Arrived"
    CHECKED_IN = "checked-in", "Checked in"
    FULFILLED = "fulfilled", "Fulfilled"
    CANCELLED = "cancelled", "Cancelled"
    NOSHOW = "noshow", "No-show"
    ENTERED_IN_ERROR = "entered-in-error", "Entered in error"


class AppointmentSeries(models.Model):
    """A recurring booking: an RFC 5545 ``rrule`` over wall-clock starts in ``time_zone`` beginning at
    ``first_start``. Materialised as one ``Appointment`` per occurrence, each with its own status."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="appointment_series")
    appointment_type = models.ForeignKey(AppointmentType, on_delete=models.PROTECT, related_name="series")
    rrule = models.CharField(max_length=500)
    time_zone = models.CharField(max_length=64)
    first_start = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=dj_timezone.now)

    def __str__(self) -> str:
        return f"Series {self.pk}: {self.rrule}"


class Appointment(models.Model):
    """A booked (or proposed) visit of a patient with a practitioner, plus whatever other resources its type needs.

    Which resources it holds, and when, are its ``Slot`` rows; ``start``/``end`` are the visit itself (without
    buffers). ``status`` moves only through the transition table. ``encounter_id`` is the EHR encounter planned for
    it (an id, not a foreign key: the encounter belongs to ``ehr``). ``version`` increases with every change.
    Invariants (CHECK): end after start; a known status; a cancellation carries its reason; an override carries its.
    """

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="appointments")
    appointment_type = models.ForeignKey(AppointmentType, on_delete=models.PROTECT, related_name="appointments")
    practitioner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="appointments")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="appointments")
    modality = models.CharField(max_length=20, choices=Modality.choices)
    status = models.CharField(max_length=20, choices=AppointmentStatus.choices, default=AppointmentStatus.BOOKED)
    start = models.DateTimeField()
    end = models.DateTimeField()
    series = models.ForeignKey(
        AppointmentSeries, on_delete=models.PROTECT, null=True, blank=True, related_name="occurrences"
    )
    encounter_id = models.BigIntegerField(null=True, blank=True)
    comment = models.CharField(max_length=500, blank=True)
    override_reason = models.CharField(max_length=500, blank=True)
    cancel_reason = models.CharField(max_length=500, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    arrived_at = models.DateTimeField(null=True, blank=True)
    checked_in_at = models.DateTimeField(null=True, blank=True)
    visit_started_at = models.DateTimeField(null=True, blank=True)
    fulfilled_at = models.DateTimeField(null=True, blank=True)
    booked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=dj_timezone.now)
    updated_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        ordering = ["start", "id"]
        indexes = [
            models.Index(fields=["start"], name="appointment_start"),
            models.Index(fields=["patient", "start"], name="appointment_patient_start"),
            models.Index(fields=["practitioner", "start"], name="appointment_practitioner_start"),
            models.Index(
                fields=["status", "start"],
                name="appointment_booked_start",
                condition=models.Q(status="booked"),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(end__gt=models.F("start")), name="appointment_end_after_start"),
            models.CheckConstraint(
                condition=models.Q(status__in=AppointmentStatus.values), name="appointment_status_known"
            ),
            models.CheckConstraint(
                condition=~models.Q(status=AppointmentStatus.CANCELLED)
                | (~models.Q(cancel_reason="") & models.Q(cancelled_at__isnull=False)),
                name="appointment_cancel_has_reason",
            ),
            models.CheckConstraint(condition=models.Q(version__gte=1), name="appointment_version_positive"),
        ]

    def __str__(self) -> str:
        return f"Appointment {self.pk} ({self.status})"


class HoldStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    CONSUMED = "consumed", "Booked"
    RELEASED = "released", "Released"
    EXPIRED = "expired", "Expired"


class Hold(models.Model):
    """A short-lived reservation of every resource a booking needs, while a patient confirms. Its tentative slots
    block others like a booking until ``expires_at``; after that anyone may take them (expired tentative slots are
    deleted by the booking that needs the time, and by a one-minute beat task). The id is a random UUID so holds
    cannot be enumerated."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    appointment_type = models.ForeignKey(AppointmentType, on_delete=models.PROTECT, related_name="+")
    practitioner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="+")
    start = models.DateTimeField()
    end = models.DateTimeField()
    status = models.CharField(max_length=20, choices=HoldStatus.choices, default=HoldStatus.ACTIVE)
    expires_at = models.DateTimeField()
    appointment = models.ForeignKey(Appointment, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["expires_at"], name="hold_active_expiry", condition=models.Q(status="active")),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=HoldStatus.values), name="hold_status_known"),
            models.CheckConstraint(condition=models.Q(end__gt=models.F("start")), name="hold_end_after_start"),
        ]

    def __str__(self) -> str:
        return f"Hold {self.pk} ({self.status})"


class SlotStatus(models.TextChoices):
    """FHIR slotstatus, busy-only: a row exists while time is taken. ``free`` keeps a released booking's
    resources on record (which room a cancelled visit had) without blocking anyone."""

    BUSY = "busy", "Busy"
    BUSY_TENTATIVE = "busy-tentative", "Held"
    FREE = "free", "Released"


BLOCKING_SLOT_STATUSES = (SlotStatus.BUSY, SlotStatus.BUSY_TENTATIVE)


class Slot(models.Model):
    """Time taken on one schedule by one appointment (``busy``) or hold (``busy-tentative``), buffers included.

    THE no-double-booking invariant lives here, in PostgreSQL: an exclusion constraint (btree_gist) forbids two
    blocking slots of the same schedule whose periods overlap. Ranges are half-open, so back-to-back bookings fit.
    Only a booking with an audited ``override`` (deliberate double booking, with a reason on the appointment) is
    exempt. Exactly one of appointment/hold is set; a tentative slot belongs to a hold and carries its expiry.
    """

    schedule = models.ForeignKey(Schedule, on_delete=models.PROTECT, related_name="slots")
    period = DateTimeRangeField()
    status = models.CharField(max_length=20, choices=SlotStatus.choices)
    appointment = models.ForeignKey(Appointment, on_delete=models.PROTECT, null=True, blank=True, related_name="slots")
    hold = models.ForeignKey(Hold, on_delete=models.CASCADE, null=True, blank=True, related_name="slots")
    expires_at = models.DateTimeField(null=True, blank=True)
    override = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(fields=["appointment"], name="slot_appointment"),
            # Free-slot search reads every blocking period of many schedules in a window, override or not (the
            # exclusion constraint's own index leaves overrides out): months of history stay out of that scan.
            GistIndex(
                fields=["schedule", "period"],
                name="slot_blocking_period",
                condition=models.Q(status__in=BLOCKING_SLOT_STATUSES),
            ),
        ]
        constraints = [
            ExclusionConstraint(
                name="slot_no_double_booking",
                expressions=[("schedule", RangeOperators.EQUAL), ("period", RangeOperators.OVERLAPS)],
                condition=models.Q(status__in=BLOCKING_SLOT_STATUSES, override=False),
            ),
            models.CheckConstraint(condition=models.Q(status__in=SlotStatus.values), name="slot_status_known"),
            models.CheckConstraint(
                condition=models.Q(appointment__isnull=False, hold__isnull=True)
                | models.Q(appointment__isnull=True, hold__isnull=False),
                name="slot_one_owner",
            ),
            models.CheckConstraint(
                condition=~models.Q(status=SlotStatus.BUSY_TENTATIVE)
                | models.Q(hold__isnull=False, expires_at__isnull=False),
                name="slot_tentative_is_hold",
            ),
            models.CheckConstraint(
                condition=models.Q(period__isempty=False, period__lower_inf=False, period__upper_inf=False),
                name="slot_period_bounded",
            ),
        ]

    def __str__(self) -> str:
        return f"Slot {self.pk} on schedule {self.schedule_id} ({self.status})"


class AppointmentEvent(models.Model):
    """The domain event log of appointments: one row per change, written in the same transaction as the change.
    Append-only (a trigger rejects UPDATE and DELETE). ``data`` holds ids and times, never clinical detail."""

    appointment = models.ForeignKey(Appointment, on_delete=models.PROTECT, related_name="events")
    type = models.CharField(max_length=50)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True)
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, blank=True)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["appointment", "id"], name="appointment_event_appt")]

    def __str__(self) -> str:
        return f"{self.type} of appointment {self.appointment_id}"
