"""Appointment types: what a visit takes (duration, modality, resources, buffers) and who may book it."""

from __future__ import annotations

from django.db import models

from scheduling.models.resources import ResourceKind


class Modality(models.TextChoices):
    VIDEO = "video", "Video visit"
    IN_PERSON = "in-person", "In person"


class AppointmentType(models.Model):
    """A kind of visit. ``duration_minutes`` is the visit; buffers (before/after) are busy time around it on every
    resource it uses (room turnover; video visits usually need none). Patients may book it themselves only when
    ``patient_bookable``, no sooner than ``min_notice_minutes`` ahead and no later than ``horizon_days`` ahead, at
    starts aligned to ``slot_interval_minutes`` in the practitioner's time zone; they may cancel until
    ``cancellation_window_minutes`` before the start. Not checked in ``noshow_after_minutes`` after the start, a
    booking becomes ``noshow``.
    """

    code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    modality = models.CharField(max_length=20, choices=Modality.choices)
    duration_minutes = models.PositiveSmallIntegerField()
    buffer_before_minutes = models.PositiveSmallIntegerField(default=0)
    buffer_after_minutes = models.PositiveSmallIntegerField(default=0)
    slot_interval_minutes = models.PositiveSmallIntegerField(default=15)
    min_notice_minutes = models.PositiveIntegerField(default=60)
    horizon_days = models.PositiveSmallIntegerField(default=90)
    cancellation_window_minutes = models.PositiveIntegerField(default=24 * 60)
    noshow_after_minutes = models.PositiveSmallIntegerField(default=15)
    patient_bookable = models.BooleanField(default=False)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(modality__in=Modality.values), name="appointment_type_modality"),
            models.CheckConstraint(
                condition=models.Q(duration_minutes__gte=5, duration_minutes__lte=480),
                name="appointment_type_duration_range",
            ),
            models.CheckConstraint(
                condition=models.Q(slot_interval_minutes__gte=5, slot_interval_minutes__lte=240),
                name="appointment_type_interval_range",
            ),
            models.CheckConstraint(
                condition=models.Q(buffer_before_minutes__lte=240, buffer_after_minutes__lte=240),
                name="appointment_type_buffer_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ResourceRequirement(models.Model):
    """One resource an appointment type needs: a schedule of ``kind`` (and ``category``, when set). Every type needs
    exactly one practitioner; ``optional`` requirements (e.g. an interpreter for a video visit) are booked only when
    the booking names one."""

    appointment_type = models.ForeignKey(AppointmentType, on_delete=models.CASCADE, related_name="requirements")
    kind = models.CharField(max_length=20, choices=ResourceKind.choices)
    category = models.CharField(max_length=50, blank=True)
    optional = models.BooleanField(default=False)

    class Meta:
        ordering = ["appointment_type_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["appointment_type", "kind", "category"], name="requirement_unique"),
            models.CheckConstraint(condition=models.Q(kind__in=ResourceKind.values), name="requirement_kind_known"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.category}".strip()
