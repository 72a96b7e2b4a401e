"""Bookable resources (one Schedule each) and when they can be booked (weekly rules and dated exceptions)."""

from __future__ import annotations

from zoneinfo import available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone as dj_timezone

from ehr.models import Location


class ResourceKind(models.TextChoices):
    PRACTITIONER = "practitioner", "Practitioner"
    ROOM = "room", "Room"
    EQUIPMENT = "equipment", "Equipment"
    INTERPRETER = "interpreter", "Interpreter"


def validate_time_zone(value: str) -> None:
    if value not in available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone.")


class Schedule(models.Model):
    """One bookable resource (FHIR Schedule): a practitioner, a room, a piece of equipment or an interpreter.

    Invariants (CHECK/UNIQUE): a practitioner schedule names its practitioner and no other kind does; a practitioner
    has at most one schedule, so every booking of that person meets the one exclusion constraint on ``Slot``.
    ``category`` narrows a kind for appointment-type requirements (``ecg`` equipment, ``exam`` room, an interpreter's
    language). ``time_zone`` is the IANA zone its weekly hours are written in.
    """

    kind = models.CharField(max_length=20, choices=ResourceKind.choices)
    name = models.CharField(max_length=200)
    category = models.CharField(max_length=50, blank=True)
    practitioner = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="schedule"
    )
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="schedules")
    time_zone = models.CharField(max_length=64, validators=[validate_time_zone])
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        ordering = ["kind", "name"]
        indexes = [models.Index(fields=["location", "kind", "category"], name="schedule_location_kind")]
        constraints = [
            models.CheckConstraint(condition=models.Q(kind__in=ResourceKind.values), name="schedule_kind_known"),
            models.CheckConstraint(
                condition=models.Q(kind=ResourceKind.PRACTITIONER, practitioner__isnull=False)
                | (~models.Q(kind=ResourceKind.PRACTITIONER) & models.Q(practitioner__isnull=True)),
                name="schedule_practitioner_iff_kind",
            ),
            models.CheckConstraint(condition=~models.Q(time_zone=""), name="schedule_time_zone_set"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.name}"


class AvailabilityRule(models.Model):
    """Weekly working hours of a schedule: on ``weekday`` (0 = Monday) from ``start_time`` to ``end_time`` in the
    schedule's time zone, for dates in [``effective_from``, ``effective_until``) (open-ended when null).

    Wall-clock times, so 09:00 stays 09:00 across daylight-saving changes. Invariants (CHECK): weekday 0-6,
    start before end, a non-empty effective range.
    """

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="rules")
    weekday = models.PositiveSmallIntegerField()
    start_time = models.TimeField()
    end_time = models.TimeField()
    effective_from = models.DateField()
    effective_until = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["schedule_id", "weekday", "start_time"]
        indexes = [models.Index(fields=["schedule", "weekday"], name="availability_rule_schedule")]
        constraints = [
            models.CheckConstraint(condition=models.Q(weekday__lte=6), name="availability_rule_weekday"),
            models.CheckConstraint(
                condition=models.Q(start_time__lt=models.F("end_time")), name="availability_rule_start_before_end"
            ),
            models.CheckConstraint(
                condition=models.Q(effective_until__isnull=True)
                | models.Q(effective_until__gt=models.F("effective_from")),
                name="availability_rule_effective_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.schedule_id}: weekday {self.weekday} {self.start_time}-{self.end_time}"


class ExceptionKind(models.TextChoices):
    UNAVAILABLE = "unavailable", "Unavailable (time off, holiday, blocked time)"
    AVAILABLE = "available", "Extra session"


class AvailabilityException(models.Model):
    """A dated change to the weekly hours: time off, a holiday or blocked time (``unavailable``), or an extra session
    (``available``). Instants in UTC. ``reason`` is operational text shown to staff — never clinical detail."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="exceptions")
    kind = models.CharField(max_length=20, choices=ExceptionKind.choices)
    start = models.DateTimeField()
    end = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        ordering = ["schedule_id", "start"]
        indexes = [models.Index(fields=["schedule", "start"], name="availability_exception_start")]
        constraints = [
            models.CheckConstraint(condition=models.Q(kind__in=ExceptionKind.values), name="exception_kind_known"),
            models.CheckConstraint(condition=models.Q(start__lt=models.F("end")), name="exception_start_before_end"),
        ]

    def __str__(self) -> str:
        return f"{self.schedule_id}: {self.kind} {self.start:%Y-%m-%d %H:%M}"
