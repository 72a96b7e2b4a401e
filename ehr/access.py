"""Who may do what with a patient's record: the one place patient access is decided.

Interim rule (issue 3, first slice): staff roles may search, read, register and update patients; schedulers may not
see full identifiers; billing may not mark records entered-in-error; a patient user may read only their own record
(linked through ``Patient.user``). The decision is a table of role x action, then a relationship test, so
care-team and break-the-glass rules slot in as further relationships later.

Every denial is audited (outcome ``denied``) in its own transaction, so the record of the attempt survives the
error that follows. Call ``patient_access_check`` before opening the transaction of the access itself.
"""

from __future__ import annotations

from enum import StrEnum

from django.db import transaction
from django.http import HttpRequest

from ehr.errors import AccessDenied
from ehr.models import AuditAction, AuditOutcome, Patient, Role, User
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


class Relationship(StrEnum):
    """How the actor relates to the patient. Later: CARE_TEAM, VISIT_AT_CLINIC, BREAK_THE_GLASS."""

    ANY = "any"  # the role alone decides (no particular patient, or role-wide access)
    SELF = "self"  # the actor is the patient (Patient.user)


_STAFF = frozenset({Role.PRACTITIONER, Role.NURSE, Role.SCHEDULER, Role.BILLING, Role.ADMIN})

# action -> role -> relationships that grant it
_POLICY: dict[PatientAction, dict[str, frozenset[Relationship]]] = {
    PatientAction.SEARCH: {role: frozenset({Relationship.ANY}) for role in _STAFF},
    PatientAction.REGISTER: {role: frozenset({Relationship.ANY}) for role in _STAFF},
    PatientAction.UPDATE: {role: frozenset({Relationship.ANY}) for role in _STAFF},
    PatientAction.MARK_ENTERED_IN_ERROR: {role: frozenset({Relationship.ANY}) for role in _STAFF - {Role.BILLING}},
    PatientAction.READ: {
        **{role: frozenset({Relationship.ANY}) for role in _STAFF},
        Role.PATIENT: frozenset({Relationship.SELF}),
    },
    PatientAction.HISTORY: {
        **{role: frozenset({Relationship.ANY}) for role in _STAFF},
        Role.PATIENT: frozenset({Relationship.SELF}),
    },
    PatientAction.READ_IDENTIFIERS: {role: frozenset({Relationship.ANY}) for role in _STAFF - {Role.SCHEDULER}},
    # Interim until care teams land: clinicians only (never schedulers, billing or admins); patients their own.
    PatientAction.READ_CLINICAL: {
        Role.PRACTITIONER: frozenset({Relationship.ANY}),
        Role.NURSE: frozenset({Relationship.ANY}),
        Role.PATIENT: frozenset({Relationship.SELF}),
    },
    PatientAction.WRITE_CLINICAL: {
        Role.PRACTITIONER: frozenset({Relationship.ANY}),
        Role.NURSE: frozenset({Relationship.ANY}),
    },
    PatientAction.SIGN_NOTE: {Role.PRACTITIONER: frozenset({Relationship.ANY})},
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
}


def _holds(actor: User, relationship: Relationship, patient_id: int | None) -> bool:
    if relationship is Relationship.ANY:
        return True
    if relationship is Relationship.SELF:
        return patient_id is not None and Patient.objects.filter(pk=patient_id, user_id=actor.pk).exists()
    return False  # pragma: no cover -- every relationship is handled above


def patient_access_allowed(*, actor: User, patient_id: int | None, action: PatientAction) -> bool:
    """The decision alone, without auditing (for building menus; enforcement uses ``patient_access_check``)."""
    if not actor.is_authenticated or not actor.is_active:
        return False
    grants = _POLICY[action]
    wanted: set[Relationship] = set()
    for role in actor.roles:
        wanted |= grants.get(role, frozenset())
    if Relationship.ANY in wanted:
        return True
    return any(_holds(actor, relationship, patient_id) for relationship in wanted)


def patient_access_check(
    *, actor: User, patient_id: int | None, action: PatientAction, request: HttpRequest | None = None
) -> None:
    """Raise ``AccessDenied`` (after auditing the attempt as denied) unless ``actor`` may do ``action``.

    Called by every patient service and selector; a patient user asking about another patient's id is denied
    whether or not that id exists, so ids cannot be probed.
    """
    if patient_access_allowed(actor=actor, patient_id=patient_id, action=action):
        return
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=_AUDIT_ACTION[action],
            entity_type="PatientSearch" if action is PatientAction.SEARCH else "Patient",
            entity_id="" if patient_id is None else patient_id,
            patient_id=patient_id,
            outcome=AuditOutcome.DENIED,
            request=request,
            channel="api" if request is not None else "system",
            detail={"action": str(action)},
        )
    raise AccessDenied(str(action))
