"""Who may do what with a patient's record: the one place patient access is decided (docs/access.md).

The decision is table-driven: ``POLICY`` maps each action and role to the relationships that grant it; a request is
allowed when the actor holds any relationship one of their roles is granted. Relationships:

- ``ANY``: the role alone decides (searching, registering, admin work).
- ``SELF``: the actor is the patient (``Patient.user``).
- ``CARE_TEAM``: the actor is an active care-team member of the patient (``CareTeamMember``, now in [start, end)).
- ``ASSIGNED_DOCTOR``: as ``CARE_TEAM``, with the care-team role ``assigned-doctor`` (manages the care team).
- ``SAME_CLINIC``: the clinician works at a location where the patient has an encounter. The test belongs with
  the encounter model, so it is a pluggable hook (``register_relationship_test``); until registered it grants nothing.
- ``BREAK_GLASS``: the actor holds an unexpired ``BreakGlassGrant`` for the patient. Access through it is audited
  with purpose ``break_glass`` and ``{"grant": id}``.

Every denial is audited (outcome ``denied``) in its own transaction, so the record of the attempt survives the
error that follows. A denial that a break-the-glass grant would lift raises ``BreakGlassRequired`` (a subclass of
``AccessDenied``), so a client can offer "open in an emergency". Call ``patient_access_check`` before opening the
transaction of the access itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from ehr.errors import AccessDenied, BreakGlassRequired
from ehr.models import AuditAction, AuditOutcome, BreakGlassGrant, CareTeamMember, CareTeamRole, Patient, Role, User
from ehr.services.audit import audit_record


class PatientAction(StrEnum):
    SEARCH = "search"
    READ = "read"
    READ_IDENTIFIERS = "read_identifiers"
    HISTORY = "history"
    REGISTER = "register"
    UPDATE = "update"
    MARK_ENTERED_IN_ERROR = "mark_entered_in_error"
    # Clinical content (encounters, notes, problems, allergies, medications, observations, documents).
    READ_CLINICAL = "read_clinical"
    WRITE_CLINICAL = "write_clinical"
    SIGN_NOTE = "sign_note"
    # Relationships and oversight.
    READ_CARE_TEAM = "read_care_team"
    MANAGE_CARE_TEAM = "manage_care_team"
    BREAK_GLASS = "break_glass"
    REVIEW_BREAK_GLASS = "review_break_glass"
    READ_ACCESS_LOG = "read_access_log"
    # Booking and managing appointments (planned encounters) for this patient: ehr.services.clinical.encounter_plan,
    # encounter_replan, encounter_cancel; the scheduling app checks it before booking.
    SCHEDULE = "schedule"
    # Merging a duplicate record into the surviving one (health-information work): ehr.services.patients.patient_merge.
    MERGE = "merge"


class Relationship(StrEnum):
    """How the actor relates to the patient (see the module docstring)."""

    ANY = "any"
    SELF = "self"
    CARE_TEAM = "care_team"
    ASSIGNED_DOCTOR = "assigned_doctor"
    SAME_CLINIC = "same_clinic"
    BREAK_GLASS = "break_glass"


_ANY = frozenset({Relationship.ANY})
_SELF = frozenset({Relationship.SELF})
# Clinicians reach a patient through a care relationship, otherwise only by breaking the glass.
_CLINICAL = frozenset({Relationship.CARE_TEAM, Relationship.SAME_CLINIC, Relationship.BREAK_GLASS})
_CLINICIANS = (Role.PRACTITIONER, Role.NURSE)

# action -> role -> relationships that grant it. A role absent from an action's row is denied it outright.
POLICY: dict[PatientAction, dict[str, frozenset[Relationship]]] = {
    PatientAction.SEARCH: {
        Role.PRACTITIONER: _ANY,
        Role.NURSE: _ANY,
        Role.SCHEDULER: _ANY,
        Role.BILLING: _ANY,
        Role.ADMIN: _ANY,
    },
    PatientAction.REGISTER: {
        Role.PRACTITIONER: _ANY,
        Role.NURSE: _ANY,
        Role.SCHEDULER: _ANY,
        Role.ADMIN: _ANY,
    },
    PatientAction.READ: {
        Role.PRACTITIONER: _CLINICAL,
        Role.NURSE: _CLINICAL,
        Role.SCHEDULER: _ANY,
        Role.BILLING: _ANY,
        Role.ADMIN: _ANY,
        Role.PATIENT: _SELF,
    },
    PatientAction.HISTORY: {
        Role.PRACTITIONER: _CLINICAL,
        Role.NURSE: _CLINICAL,
        Role.SCHEDULER: _ANY,
        Role.BILLING: _ANY,
        Role.ADMIN: _ANY,
        Role.PATIENT: _SELF,
    },
    PatientAction.UPDATE: {
        Role.PRACTITIONER: _CLINICAL,
        Role.NURSE: _CLINICAL,
        Role.SCHEDULER: _ANY,
        Role.ADMIN: _ANY,
    },
    PatientAction.MARK_ENTERED_IN_ERROR: {
        Role.PRACTITIONER: _CLINICAL,
        Role.NURSE: _CLINICAL,
        Role.SCHEDULER: _ANY,
        Role.ADMIN: _ANY,
    },
    PatientAction.READ_IDENTIFIERS: {
        Role.PRACTITIONER: _CLINICAL,
        Role.NURSE: _CLINICAL,
        Role.BILLING: _ANY,
        Role.ADMIN: _ANY,
    },
    PatientAction.READ_CLINICAL: {
        Role.PRACTITIONER: _CLINICAL,
        Role.NURSE: _CLINICAL,
        Role.ADMIN: frozenset({Relationship.BREAK_GLASS}),
        Role.PATIENT: _SELF,
    },
    PatientAction.WRITE_CLINICAL: {
        Role.PRACTITIONER: _CLINICAL,
        Role.NURSE: _CLINICAL,
    },
    PatientAction.SIGN_NOTE: {
        Role.PRACTITIONER: _CLINICAL,
    },
    PatientAction.READ_CARE_TEAM: {
        Role.PRACTITIONER: _CLINICAL,
        Role.NURSE: _CLINICAL,
        Role.SCHEDULER: _ANY,
        Role.ADMIN: _ANY,
        Role.PATIENT: _SELF,
    },
    PatientAction.MANAGE_CARE_TEAM: {
        Role.PRACTITIONER: frozenset({Relationship.ASSIGNED_DOCTOR}),
        Role.SCHEDULER: _ANY,
        Role.ADMIN: _ANY,
    },
    # Asking for a grant is open to these roles; what the grant then lifts is the BREAK_GLASS entries above
    # (for admins: clinical reading only).
    PatientAction.BREAK_GLASS: {
        Role.PRACTITIONER: _ANY,
        Role.NURSE: _ANY,
        Role.ADMIN: _ANY,
    },
    PatientAction.REVIEW_BREAK_GLASS: {Role.ADMIN: _ANY},
    PatientAction.READ_ACCESS_LOG: {Role.PATIENT: _SELF},
    PatientAction.SCHEDULE: {
        Role.PRACTITIONER: _CLINICAL,
        Role.NURSE: _CLINICAL,
        Role.SCHEDULER: _ANY,
        Role.ADMIN: _ANY,
        Role.PATIENT: _SELF,
    },
    # Checked on both records of a merge.
    PatientAction.MERGE: {
        Role.SCHEDULER: _ANY,
        Role.ADMIN: _ANY,
    },
}

_AUDIT_ACTION = {
    PatientAction.SEARCH: AuditAction.READ,
    PatientAction.READ: AuditAction.READ,
    PatientAction.READ_IDENTIFIERS: AuditAction.READ,
    PatientAction.HISTORY: AuditAction.READ,
    PatientAction.REGISTER: AuditAction.CREATE,
    PatientAction.UPDATE: AuditAction.UPDATE,
    PatientAction.MARK_ENTERED_IN_ERROR: AuditAction.ENTERED_IN_ERROR,
    PatientAction.READ_CLINICAL: AuditAction.READ,
    PatientAction.WRITE_CLINICAL: AuditAction.UPDATE,
    PatientAction.SIGN_NOTE: AuditAction.UPDATE,
    PatientAction.READ_CARE_TEAM: AuditAction.READ,
    PatientAction.MANAGE_CARE_TEAM: AuditAction.UPDATE,
    PatientAction.BREAK_GLASS: AuditAction.BREAK_GLASS,
    PatientAction.REVIEW_BREAK_GLASS: AuditAction.UPDATE,
    PatientAction.READ_ACCESS_LOG: AuditAction.READ,
    PatientAction.SCHEDULE: AuditAction.UPDATE,
    PatientAction.MERGE: AuditAction.UPDATE,
}

_ENTITY = {
    PatientAction.SEARCH: "PatientSearch",
    PatientAction.READ_CARE_TEAM: "CareTeam",
    PatientAction.MANAGE_CARE_TEAM: "CareTeam",
    PatientAction.BREAK_GLASS: "BreakGlassGrant",
    PatientAction.REVIEW_BREAK_GLASS: "BreakGlassGrant",
    PatientAction.READ_ACCESS_LOG: "AccessLog",
}

RelationshipTest = Callable[[User, int], bool]
_PLUGGABLE = frozenset({Relationship.SAME_CLINIC})
_relationship_tests: dict[Relationship, RelationshipTest] = {}


def register_relationship_test(relationship: Relationship, test: RelationshipTest | None) -> RelationshipTest | None:
    """Install (or, with ``None``, remove) the test for a pluggable relationship (only ``SAME_CLINIC``); returns
    the test it replaced, so a caller can put it back.

    ``test(actor, patient_id)`` must return True only when the relationship holds now; it runs on every access
    check that needs it, so keep it one indexed query. Registered once at start-up (e.g. an ``AppConfig.ready``).
    """
    if relationship not in _PLUGGABLE:
        raise ValueError(f"{relationship} is decided by ehr.access itself and cannot be replaced")
    previous = _relationship_tests.get(relationship)
    if test is None:
        _relationship_tests.pop(relationship, None)
    else:
        _relationship_tests[relationship] = test
    return previous


def _active_care_team(actor: User, patient_id: int) -> Q:
    now = timezone.now()
    return Q(patient_id=patient_id, member_id=actor.pk, start__lte=now) & (Q(end__isnull=True) | Q(end__gt=now))


def active_break_glass_grant_id(*, actor: User, patient_id: int) -> int | None:
    """The id of the actor's latest unexpired break-the-glass grant for the patient, or None."""
    now = timezone.now()
    return (
        BreakGlassGrant.objects.filter(
            actor_id=actor.pk, patient_id=patient_id, granted_at__lte=now, expires_at__gt=now
        )
        .order_by("-expires_at", "-id")
        .values_list("id", flat=True)
        .first()
    )


@dataclass(frozen=True)
class AccessDecision:
    """``allowed``: whether to proceed; ``via``: the relationship that granted it; ``grant_id``: the break-the-glass
    grant used, if any; ``break_glass_would_help``: denied, but a grant for this actor and patient would lift it."""

    allowed: bool
    via: Relationship | None = None
    grant_id: int | None = None
    break_glass_would_help: bool = False


# Cheapest first: a break-the-glass grant is used only when nothing else grants access, so access through a care
# relationship is never mislabelled as an emergency.
_ORDER = (
    Relationship.ANY,
    Relationship.SELF,
    Relationship.CARE_TEAM,
    Relationship.ASSIGNED_DOCTOR,
    Relationship.SAME_CLINIC,
    Relationship.BREAK_GLASS,
)


def _holds(actor: User, relationship: Relationship, patient_id: int | None) -> bool:
    if relationship is Relationship.ANY:
        return True
    if patient_id is None:
        return False
    if relationship is Relationship.SELF:
        return Patient.objects.filter(pk=patient_id, user_id=actor.pk).exists()
    if relationship is Relationship.CARE_TEAM:
        return CareTeamMember.objects.filter(_active_care_team(actor, patient_id)).exists()
    if relationship is Relationship.ASSIGNED_DOCTOR:
        return CareTeamMember.objects.filter(
            _active_care_team(actor, patient_id), role=CareTeamRole.ASSIGNED_DOCTOR
        ).exists()
    if relationship is Relationship.SAME_CLINIC:
        test = _relationship_tests.get(relationship)
        return test is not None and test(actor, patient_id)
    return False  # BREAK_GLASS is decided in patient_access_decide (it needs the grant id)


def patient_access_decide(*, actor: User, patient_id: int | None, action: PatientAction) -> AccessDecision:
    """The decision with its reason, without auditing (``patient_access_check`` enforces and audits)."""
    if not actor.is_authenticated or not actor.is_active:
        return AccessDecision(allowed=False)
    grants = POLICY[action]
    wanted: set[Relationship] = set()
    for role in actor.roles:
        wanted |= grants.get(role, frozenset())
    for relationship in _ORDER:
        if relationship not in wanted:
            continue
        if relationship is Relationship.BREAK_GLASS:
            if patient_id is None:
                break
            grant_id = active_break_glass_grant_id(actor=actor, patient_id=patient_id)
            if grant_id is not None:
                return AccessDecision(allowed=True, via=relationship, grant_id=grant_id)
            return AccessDecision(allowed=False, break_glass_would_help=True)
        if _holds(actor, relationship, patient_id):
            return AccessDecision(allowed=True, via=relationship)
    return AccessDecision(allowed=False)


def patient_access_allowed(*, actor: User, patient_id: int | None, action: PatientAction) -> bool:
    """The decision alone, without auditing (for building menus; enforcement uses ``patient_access_check``)."""
    return patient_access_decide(actor=actor, patient_id=patient_id, action=action).allowed


def _entity_type(action: PatientAction) -> str:
    return _ENTITY.get(action, "Patient")


def patient_access_check(
    *, actor: User, patient_id: int | None, action: PatientAction, request: HttpRequest | None = None
) -> None:
    """Raise ``AccessDenied`` (after auditing the attempt as denied) unless ``actor`` may do ``action``.

    ``BreakGlassRequired`` (an ``AccessDenied``) when a break-the-glass grant would allow it. Access granted
    through a grant is audited here (purpose ``break_glass``, detail ``{"grant": id}``) besides the caller's own
    audit row. Called by every patient service and selector; a patient user asking about another patient's id is
    denied whether or not that id exists, so ids cannot be probed.
    """
    decision = patient_access_decide(actor=actor, patient_id=patient_id, action=action)
    channel = "api" if request is not None else "system"
    if decision.allowed:
        if decision.grant_id is not None:
            with transaction.atomic():
                audit_record(
                    actor=actor,
                    action=_AUDIT_ACTION[action],
                    entity_type=_entity_type(action),
                    entity_id="" if patient_id is None else patient_id,
                    patient_id=patient_id,
                    purpose="break_glass",
                    request=request,
                    channel=channel,
                    detail={"grant": decision.grant_id, "action": str(action)},
                )
        return
    detail: dict[str, object] = {"action": str(action)}
    if decision.break_glass_would_help:
        detail["break_glass_possible"] = True
    with transaction.atomic():
        audit_record(
            actor=actor if actor.is_authenticated else None,
            action=_AUDIT_ACTION[action],
            entity_type=_entity_type(action),
            entity_id="" if patient_id is None else patient_id,
            patient_id=patient_id,
            outcome=AuditOutcome.DENIED,
            request=request,
            channel=channel,
            detail=detail,
        )
    if decision.break_glass_would_help:
        raise BreakGlassRequired(str(action))
    raise AccessDenied(str(action))
