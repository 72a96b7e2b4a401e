"""Guests of a video visit (issue 7): invitations for an interpreter, a family member or a second clinician, and
the media relay's telemetry of each participant."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Length
from django.utils import timezone as dj_timezone

from telehealth.models.visits import Visit


class GuestRole(models.TextChoices):
    INTERPRETER = "interpreter", "Interpreter"
    FAMILY = "family", "Family member"
    CLINICIAN = "clinician", "Clinician"


class VisitInvitation(models.Model):
    """One guest's invitation to the video visit of ``appointment_id``. ``visit`` is null while the appointment has
    no visit yet (a scheduler invites ahead of time); check-in binds it. The link carries ``django.core.signing`` of
    the id (salt ``telehealth.invite``); consuming it stamps ``used_at`` and ``used_session`` (a SHA-256 of the
    browser's session key) under the row lock, so it is single use, and the same session may consume it again.
    The guest's participant id on the signaling socket is ``guest-<id hex>``.

    Invariants (PostgreSQL): a known role; a name of 1 to 80 characters; it expires after it was created; it was
    used (if at all) before it expired; an admitted guest used the link and belongs to a visit; a used link names
    its session; nobody is removed before the invitation existed. ``muted`` and ``connected`` are the live state
    the practitioner sees (the relay stops forwarding a muted guest's audio)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    appointment_id = models.BigIntegerField()
    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, null=True, blank=True, related_name="invitations")
    role = models.CharField(max_length=20, choices=GuestRole.choices)
    name = models.CharField(max_length=80)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_session = models.CharField(max_length=64, blank=True, default="")
    device_check = models.JSONField(default=dict, blank=True)
    admitted_at = models.DateTimeField(null=True, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    muted = models.BooleanField(default=False)
    connected = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["visit", "created_at"], name="invitation_visit"),
            models.Index(fields=["appointment_id"], name="invitation_appointment"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(role__in=GuestRole.values), name="invitation_role_known"),
            models.CheckConstraint(
                condition=models.lookups.GreaterThanOrEqual(Length("name"), 1)
                & models.lookups.LessThanOrEqual(Length("name"), 80),
                name="invitation_name_length",
            ),
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("created_at")), name="invitation_expires_after_creation"
            ),
            models.CheckConstraint(
                condition=models.Q(used_at__isnull=True) | models.Q(used_at__lte=models.F("expires_at")),
                name="invitation_used_before_expiry",
            ),
            models.CheckConstraint(
                condition=models.Q(used_at__isnull=True) | ~models.Q(used_session=""),
                name="invitation_used_names_session",
            ),
            models.CheckConstraint(
                condition=models.Q(admitted_at__isnull=True)
                | models.Q(used_at__isnull=False, visit__isnull=False, admitted_at__gte=models.F("used_at")),
                name="invitation_admitted_after_use",
            ),
            models.CheckConstraint(
                condition=models.Q(removed_at__isnull=True) | models.Q(removed_at__gte=models.F("created_at")),
                name="invitation_removed_after_creation",
            ),
        ]

    def __str__(self) -> str:
        return f"Invitation {self.pk} ({self.role}) to appointment {self.appointment_id}"

    @property
    def participant_id(self) -> str:
        return guest_participant_id(self.pk)


def guest_participant_id(invitation_id: uuid.UUID) -> str:
    """``guest-<32 hex>``: the guest's id on the signaling socket and at the relay."""
    return f"guest-{invitation_id.hex}"


class VisitRelayReport(models.Model):
    """The media relay's latest telemetry of one participant of a visit (``participant_id``: ``practitioner``,
    ``patient`` or ``guest-<hex>``): per forwarded track its source, ``forward`` or ``transcode``, codec and
    counters (validated by ``visit_relay_report``; never SDP or addresses). One row per (visit, participant): the
    latest report replaces the previous (UNIQUE)."""

    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, related_name="relay_reports")
    participant_id = models.CharField(max_length=40)
    report = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=dj_timezone.now)
    updated_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["visit", "participant_id"], name="relay_report_one_per_participant"),
            models.CheckConstraint(
                condition=models.Q(participant_id__in=["patient", "practitioner"])
                | models.Q(participant_id__regex=r"^guest-[0-9a-f]{32}$"),
                name="relay_report_participant_known",
            ),
        ]

    def __str__(self) -> str:
        return f"Relay report of {self.participant_id} in visit {self.visit_id}"
