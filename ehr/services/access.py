"""Writes of the relationships ``ehr.access`` decides by: care-team memberships and break-the-glass grants.

Each function checks access first (``ehr.access``), validates, then writes and audits in one transaction. A
failure at any point writes nothing (denials are audited by the access check in their own transaction).
"""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from core.realtime.services import publish_to_role
from ehr.access import PatientAction, patient_access_check
from ehr.errors import (
    BreakGlassAlreadyReviewed,
    BreakGlassGrantNotFound,
    CannotReviewOwnBreakGlass,
    CareTeamAlreadyEnded,
    CareTeamMemberNotFound,
    CareTeamOverlap,
    InvalidAccessRequest,
    PatientNotFound,
)
from ehr.models import (
    AuditAction,
    BreakGlassGrant,
    BreakGlassReview,
    CareTeamMember,
    CareTeamRole,
    Location,
    Patient,
    PatientStatus,
    Role,
    User,
)
from ehr.models.access import BREAK_GLASS_REASON_MIN_LENGTH
from ehr.services.audit import audit_record

REASON_MAX_LENGTH = 500
BREAK_GLASS_REASON_MAX_LENGTH = 1000
DEFAULT_BREAK_GLASS_MINUTES = 240


def break_glass_minutes() -> int:
    """How long a grant lasts: ``settings.BREAK_GLASS_MINUTES`` (env ``BREAK_GLASS_MINUTES``), default 240."""
    return int(getattr(settings, "BREAK_GLASS_MINUTES", DEFAULT_BREAK_GLASS_MINUTES))


def _channel(request: HttpRequest | None) -> str:
    return "api" if request is not None else "system"


def _reason(value: Any, *, field: str = "reason", minimum: int = 1, maximum: int = REASON_MAX_LENGTH) -> str:
    if not isinstance(value, str) or len(value.strip()) < minimum:
        message = "Say why." if minimum <= 1 else f"Give a reason of at least {minimum} characters."
        raise InvalidAccessRequest({field: [message]})
    if len(value) > maximum:
        raise InvalidAccessRequest({field: [f"At most {maximum} characters."]})
    return value.strip()


def _is_exclusion_violation(exc: IntegrityError, name: str) -> bool:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) == name


def _queue_membership_writers(patient_id: int, member_id: int) -> None:
    """Make the writers of one member's periods on one patient's team wait for each other, until commit (an advisory
    lock of the transaction). Without it, two overlapping inserts at the same moment (or an insert and an end) can
    each find the other's uncommitted row while checking ``careteam_no_overlap``, and each waits for the other.
    PostgreSQL breaks that deadlock after a second by failing one with an error that is not an exclusion violation
    (an HTTP 500, not ``CareTeamOverlap``). The constraint still decides; the lock only queues them."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"ehr.care_team:{patient_id}:{member_id}"])


def care_team_add(
    *,
    actor: User,
    patient_id: int,
    member_id: int,
    role: str,
    reason: str,
    end: datetime.datetime | None = None,
    location_id: int | None = None,
    request: HttpRequest | None = None,
) -> CareTeamMember:
    """Put ``member`` on the patient's care team in ``role`` from now until ``end`` (open-ended when None).

    The member must be an active practitioner (any care-team role) or nurse (role ``nurse``). Raises
    ``CareTeamOverlap`` when they are already on the team for part of that period: the exclusion constraint
    decides, so of two concurrent adds exactly one succeeds. Audited as an "update" of ``CareTeam``.
    Callers: admins, schedulers and the patient's current assigned doctor (``ehr.access``).
    """
    patient_access_check(actor=actor, patient_id=patient_id, action=PatientAction.MANAGE_CARE_TEAM, request=request)
    reason = _reason(reason)
    errors: dict[str, list[str]] = {}
    if role not in CareTeamRole.values:
        errors["role"] = [f"Must be one of {', '.join(CareTeamRole.values)}."]
    member = User.objects.filter(pk=member_id, is_active=True).only("id", "roles").first()
    if member is None:
        errors["member_id"] = ["No active staff member with this id."]
    elif role == CareTeamRole.NURSE and Role.NURSE not in member.roles:
        errors["member_id"] = ["Only a nurse can join as nurse."]
    elif role in CareTeamRole.values and role != CareTeamRole.NURSE and Role.PRACTITIONER not in member.roles:
        errors["member_id"] = ["Only a practitioner can join in this role."]
    now = timezone.now()
    if end is not None and end <= now:
        errors["end"] = ["Must be in the future."]
    if location_id is not None and not Location.objects.filter(pk=location_id).exists():
        errors["location_id"] = ["No such location."]
    if errors:
        raise InvalidAccessRequest(errors)
    with transaction.atomic():
        patient = Patient.objects.filter(pk=patient_id).only("id", "status").first()
        if patient is None:
            raise PatientNotFound(patient_id)
        if patient.status != PatientStatus.ACTIVE:
            raise InvalidAccessRequest({"patient": ["The record is entered in error."]})
        _queue_membership_writers(patient_id, member_id)
        membership = CareTeamMember(
            patient_id=patient_id,
            member_id=member_id,
            role=role,
            location_id=location_id,
            start=now,
            end=end,
            added_by=actor,
            reason=reason,
        )
        try:
            with transaction.atomic():
                membership.save(force_insert=True)
        except IntegrityError as exc:
            if _is_exclusion_violation(exc, "careteam_no_overlap"):
                raise CareTeamOverlap(member_id) from None
            raise
        audit_record(
            actor=actor,
            action=AuditAction.UPDATE,
            entity_type="CareTeam",
            entity_id=membership.pk,
            patient_id=patient_id,
            request=request,
            channel=_channel(request),
            detail={"op": "add", "membership": membership.pk, "member": member_id, "role": role},
        )
    return membership


def care_team_end(
    *, actor: User, membership_id: int, reason: str, request: HttpRequest | None = None
) -> CareTeamMember:
    """End a membership now (``end`` = now, with who and why); the row stays. Raises ``CareTeamMemberNotFound``,
    ``CareTeamAlreadyEnded``. Audited as an "update" of ``CareTeam``. Callers: as ``care_team_add``."""
    pair = CareTeamMember.objects.filter(pk=membership_id).values_list("patient_id", "member_id").first()
    if pair is None:
        raise CareTeamMemberNotFound(membership_id)
    patient_id, member_id = pair
    patient_access_check(actor=actor, patient_id=patient_id, action=PatientAction.MANAGE_CARE_TEAM, request=request)
    reason = _reason(reason)
    with transaction.atomic():
        _queue_membership_writers(patient_id, member_id)  # its new version meets a racing add's row, as an add would
        membership = CareTeamMember.objects.select_for_update().get(pk=membership_id)
        now = timezone.now()
        if membership.end is not None and membership.end <= now:
            raise CareTeamAlreadyEnded(membership_id)
        membership.end = max(now, membership.start)
        membership.ended_by = actor
        membership.end_reason = reason
        membership.save(update_fields=["end", "ended_by", "end_reason"])
        audit_record(
            actor=actor,
            action=AuditAction.UPDATE,
            entity_type="CareTeam",
            entity_id=membership.pk,
            patient_id=membership.patient_id,
            request=request,
            channel=_channel(request),
            detail={"op": "end", "membership": membership.pk, "member": membership.member_id},
        )
    return membership


def break_glass_grant(
    *, actor: User, patient_id: int, reason: str, request: HttpRequest | None = None
) -> BreakGlassGrant:
    """Open ``patient``'s record in an emergency: a grant for ``BREAK_GLASS_MINUTES`` with a stated reason (at least
    20 characters). Audited as action ``break_glass``, purpose ``emergency``; administrators are told in real time
    (``break_glass.granted`` to role:admin, ids only) and the grant waits in their review queue.
    Callers: practitioners and nurses; admins (whose grant lifts clinical reading only) (``ehr.access``).
    """
    patient_access_check(actor=actor, patient_id=patient_id, action=PatientAction.BREAK_GLASS, request=request)
    reason = _reason(reason, minimum=BREAK_GLASS_REASON_MIN_LENGTH, maximum=BREAK_GLASS_REASON_MAX_LENGTH)
    with transaction.atomic():
        if not Patient.objects.filter(pk=patient_id).exists():
            raise PatientNotFound(patient_id)
        now = timezone.now()
        grant = BreakGlassGrant.objects.create(
            actor=actor,
            patient_id=patient_id,
            reason=reason,
            granted_at=now,
            expires_at=now + datetime.timedelta(minutes=break_glass_minutes()),
        )
        audit_record(
            actor=actor,
            action=AuditAction.BREAK_GLASS,
            entity_type="BreakGlassGrant",
            entity_id=grant.pk,
            patient_id=patient_id,
            purpose="emergency",
            request=request,
            channel=_channel(request),
            detail={"grant": grant.pk},
        )
        # Numbered in this transaction, pushed after commit (event_publish); ids only, never PHI.
        publish_to_role(role=Role.ADMIN, type="break_glass.granted", data={"id": grant.pk})
    return grant


def break_glass_review(
    *, actor: User, grant_id: int, outcome: str, note: str = "", request: HttpRequest | None = None
) -> BreakGlassGrant:
    """Record an administrator's judgement of a grant (``appropriate`` or ``inappropriate``), once. Raises
    ``BreakGlassGrantNotFound``, ``BreakGlassAlreadyReviewed``, ``CannotReviewOwnBreakGlass``. Audited.
    Callers: admins (``ehr.access``)."""
    patient_access_check(actor=actor, patient_id=None, action=PatientAction.REVIEW_BREAK_GLASS, request=request)
    if outcome not in (BreakGlassReview.APPROPRIATE, BreakGlassReview.INAPPROPRIATE):
        raise InvalidAccessRequest({"outcome": ["Must be appropriate or inappropriate."]})
    if not isinstance(note, str) or len(note) > BREAK_GLASS_REASON_MAX_LENGTH:
        raise InvalidAccessRequest({"note": [f"At most {BREAK_GLASS_REASON_MAX_LENGTH} characters."]})
    if outcome == BreakGlassReview.INAPPROPRIATE and not note.strip():
        raise InvalidAccessRequest({"note": ["Say why the access was inappropriate."]})
    with transaction.atomic():
        grant = BreakGlassGrant.objects.select_for_update().filter(pk=grant_id).first()
        if grant is None:
            raise BreakGlassGrantNotFound(grant_id)
        if grant.actor_id == actor.pk:
            raise CannotReviewOwnBreakGlass(grant_id)
        if grant.review_status != BreakGlassReview.PENDING:
            raise BreakGlassAlreadyReviewed(grant_id)
        grant.review_status = outcome
        grant.reviewed_by = actor
        grant.reviewed_at = timezone.now()
        grant.review_note = note.strip()
        grant.save(update_fields=["review_status", "reviewed_by", "reviewed_at", "review_note"])
        audit_record(
            actor=actor,
            action=AuditAction.UPDATE,
            entity_type="BreakGlassGrant",
            entity_id=grant.pk,
            patient_id=grant.patient_id,
            purpose="audit_review",
            request=request,
            channel=_channel(request),
            detail={"grant": grant.pk, "outcome": outcome},
        )
    return grant
