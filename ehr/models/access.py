"""Relationships that grant access to a patient's record: care-team memberships and break-the-glass grants.

Both are read by ``ehr.access`` (the one place access is decided) and written only by ``ehr.services.access``.
Neither is ever deleted: a membership ends (``end`` set), a grant expires and is reviewed.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import DateTimeRangeField, RangeOperators
from django.db import models
from django.db.models.functions import Length, Trim
from django.db.models.lookups import GreaterThanOrEqual
from django.utils import timezone as dj_timezone

from ehr.models.identity import Location
from ehr.models.patient import Patient

BREAK_GLASS_REASON_MIN_LENGTH = 20


class TsTzRange(models.Func):
    """PostgreSQL ``tstzrange(lower, upper, '[)')``; a NULL upper bound means open-ended."""

    function = "TSTZRANGE"
    output_field = DateTimeRangeField()


class CareTeamRole(models.TextChoices):
    ASSIGNED_DOCTOR = "assigned-doctor", "Assigned doctor"
    NURSE = "nurse", "Nurse"
    VISIT_PRACTITIONER = "visit-practitioner", "Visit practitioner"
    SPECIALIST = "specialist", "Specialist"


class CareTeamMember(models.Model):
    """``member`` cares for ``patient`` in ``role`` from ``start`` until ``end`` (open-ended when NULL).

    A membership is active while ``start <= now < end``. Invariant kept by PostgreSQL: the periods of one
    (patient, member) never overlap (exclusion constraint over ``tstzrange(start, end)``), so concurrent adds of
    the same person cannot both succeed. Rows are never deleted; ``care_team_end`` sets ``end``.
    """

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="care_team")
    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="care_teams")
    role = models.CharField(max_length=20, choices=CareTeamRole.choices)
    location = models.ForeignKey(Location, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    start = models.DateTimeField(default=dj_timezone.now)
    end = models.DateTimeField(null=True, blank=True)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    end_reason = models.TextField(blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["member", "patient"], name="careteam_member_patient"),
            models.Index(fields=["patient", "start"], name="careteam_patient_start"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(role__in=CareTeamRole.values), name="careteam_role_known"),
            models.CheckConstraint(
                condition=models.Q(end__isnull=True) | models.Q(end__gte=models.F("start")),
                name="careteam_end_after_start",
            ),
            ExclusionConstraint(
                name="careteam_no_overlap",
                expressions=[
                    ("patient", RangeOperators.EQUAL),
                    ("member", RangeOperators.EQUAL),
                    (TsTzRange("start", "end", models.Value("[)")), RangeOperators.OVERLAPS),
                ],
            ),
        ]

    def __str__(self) -> str:
        return f"careteam {self.pk}: user {self.member_id} -> patient {self.patient_id} ({self.role})"


class BreakGlassReview(models.TextChoices):
    PENDING = "pending", "Pending review"
    APPROPRIATE = "appropriate", "Appropriate"
    INAPPROPRIATE = "inappropriate", "Inappropriate"


class BreakGlassGrant(models.Model):
    """An emergency grant: ``actor`` may open ``patient``'s record, outside their care team, until ``expires_at``.

    Created only by ``ehr.services.break_glass_grant`` with a stated reason (at least 20 characters, CHECK in
    PostgreSQL); every access under it is audited with purpose ``break_glass``. An administrator reviews each grant
    once (``pending`` -> ``appropriate``/``inappropriate``); review fields are set together or not at all.
    """

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="break_glass_grants")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="break_glass_grants")
    reason = models.TextField()
    granted_at = models.DateTimeField(default=dj_timezone.now)
    expires_at = models.DateTimeField()
    review_status = models.CharField(max_length=20, choices=BreakGlassReview.choices, default=BreakGlassReview.PENDING)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["actor", "patient", "expires_at"], name="breakglass_actor_patient"),
            models.Index(fields=["review_status", "granted_at"], name="breakglass_review_queue"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    GreaterThanOrEqual(Length(Trim("reason")), BREAK_GLASS_REASON_MIN_LENGTH),
                ),
                name="breakglass_reason_min_length",
            ),
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("granted_at")), name="breakglass_expires_after_grant"
            ),
            models.CheckConstraint(
                condition=models.Q(review_status__in=BreakGlassReview.values), name="breakglass_review_known"
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(review_status=BreakGlassReview.PENDING, reviewed_by__isnull=True, reviewed_at__isnull=True)
                    | (
                        ~models.Q(review_status=BreakGlassReview.PENDING)
                        & models.Q(reviewed_by__isnull=False, reviewed_at__isnull=False)
                    )
                ),
                name="breakglass_review_fields_together",
            ),
        ]

    def __str__(self) -> str:
        return f"break-glass {self.pk}: user {self.actor_id} -> patient {self.patient_id}"
