"""Reminder plans: which messages an appointment of a type sends, and when."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models

from scheduling.models.types import AppointmentType


class ReminderPlan(models.Model):
    """The reminders of one appointment type: one message ``offsets_minutes`` before the start each (e.g. 1440 and
    120), and for video types a message ``video_link_minutes`` before with the signed check-in link and a
    device-check link (null = none). A type without a plan uses the defaults in settings
    (``REMINDER_DEFAULT_OFFSETS_MINUTES``, ``REMINDER_VIDEO_LINK_MINUTES``); ``active=False`` sends none."""

    appointment_type = models.OneToOneField(AppointmentType, on_delete=models.CASCADE, related_name="reminder_plan")
    offsets_minutes = ArrayField(models.PositiveIntegerField(), default=list)
    video_link_minutes = models.PositiveIntegerField(null=True, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(video_link_minutes__isnull=True) | models.Q(video_link_minutes__gte=1),
                name="reminder_plan_video_link_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"reminder plan of type {self.appointment_type_id}"
