"""Video visits: one per video appointment, created when the patient checks in, and the messages around it."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Length
from django.utils import timezone as dj_timezone

from ehr.models import Patient


class VisitStatus(models.TextChoices):
    """Changed only by ``telehealth.services.transitions.visit_transition`` (explicit table there)."""

    WAITING = "waiting", "Waiting"
    IN_PROGRESS = "in-progress", "In progress"
    FINISHED = "finished", "Finished"
    LEFT = "left", "Left the waiting room"


class MediaMode(models.TextChoices):
    """How the browsers of a visit exchange media: ``direct`` (1:1 browser to browser) or through the media
    ``relay``. A visit goes from direct to relay (first guest admitted, or forced) and stays relay."""

    DIRECT = "direct", "Direct"
    RELAY = "relay", "Relay"


class Visit(models.Model):
    """The video visit of one appointment (``appointment_id`` is unique: an appointment has one visit, which a
        patient who left and checks in again reuses). ``practitioner`` is who will see the patient (transfer changes
        it); ``queue_key`` is the appointment's start, so the queue is ordered by (queue_key, checked_in_at).

        Invariants (PostgreSQL): a known status; in progress and finished visits were admitted; a finished visit has
        ``ended_at`` and a non-negative ``duration_seconds``; a practitioner has at most one visit in progress;
        ``version`` increases with every change; ``media_mode`` is direct or relay (and never goes back to direct:
    ``visit_media_mode_set``). ``patient_muted``: the practitioner muted the patient (the relay drops their audio).
        ``intake`` and ``device_check`` hold the patient's answers and the device check result (PHI: never logged)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    appointment_id = models.BigIntegerField()
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    patient_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    practitioner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    location_id = models.BigIntegerField(null=True, blank=True)
    encounter_id = models.BigIntegerField(null=True, blank=True)
    planned_minutes = models.PositiveSmallIntegerField(default=30)
    status = models.CharField(max_length=20, choices=VisitStatus.choices, default=VisitStatus.WAITING)
    consent_at = models.DateTimeField()
    intake = models.JSONField(default=dict, blank=True)
    device_check = models.JSONField(default=dict, blank=True)
    ready = models.BooleanField(default=False)
    checked_in_at = models.DateTimeField()
    queue_key = models.DateTimeField()
    admitted_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    audio_only = models.BooleanField(default=False)
    patient_connected = models.BooleanField(default=False)
    patient_left_at = models.DateTimeField(null=True, blank=True)
    summary = models.TextField(blank=True, default="")
    media_mode = models.CharField(max_length=10, choices=MediaMode.choices, default=MediaMode.DIRECT)
    patient_muted = models.BooleanField(default=False)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=dj_timezone.now)
    updated_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        indexes = [
            models.Index(
                fields=["practitioner", "queue_key", "checked_in_at"],
                name="visit_waiting_queue",
                condition=models.Q(status="waiting"),
            ),
            models.Index(fields=["location_id"], name="visit_waiting_location", condition=models.Q(status="waiting")),
            models.Index(
                fields=["patient_left_at"],
                name="visit_waiting_disconnected",
                condition=models.Q(status="waiting", patient_connected=False, patient_left_at__isnull=False),
            ),
            models.Index(fields=["practitioner", "ended_at"], name="visit_practitioner_ended"),
            models.Index(fields=["patient_user"], name="visit_patient_user"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["appointment_id"], name="visit_one_per_appointment"),
            models.UniqueConstraint(
                fields=["practitioner"],
                condition=models.Q(status="in-progress"),
                name="visit_one_in_progress_per_practitioner",
            ),
            models.CheckConstraint(condition=models.Q(status__in=VisitStatus.values), name="visit_status_known"),
            models.CheckConstraint(
                condition=~models.Q(status__in=["in-progress", "finished"]) | models.Q(admitted_at__isnull=False),
                name="visit_admitted_has_admitted_at",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="finished")
                | models.Q(ended_at__isnull=False, duration_seconds__isnull=False),
                name="visit_finished_has_end",
            ),
            models.CheckConstraint(condition=models.Q(version__gte=1), name="visit_version_positive"),
            models.CheckConstraint(condition=models.Q(media_mode__in=MediaMode.values), name="visit_media_mode_known"),
            models.CheckConstraint(
                condition=models.lookups.LessThanOrEqual(Length("summary"), 4000), name="visit_summary_length"
            ),
        ]

    def __str__(self) -> str:
        return f"Visit {self.pk} ({self.status})"
