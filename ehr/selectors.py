"""Reads of the ehr app."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.contrib.postgres.search import TrigramSimilarity
from django.db.models import Q, QuerySet, Value
from django.db.models.functions import Concat
from django.http import HttpRequest

from core.realtime.streams import StreamUser
from ehr import crypto
from ehr.access import PatientAction, patient_access_check
from ehr.dto import FieldChange, PatientHistoryEntry, PatientIdentifiers
from ehr.errors import PatientNotFound
from ehr.models import AuditAction, AuditEvent, Location, Patient, PatientStatus, PatientVersion, Role, User
from ehr.services.audit import audit_record


def user_get_me(*, user_id: int) -> User:
    """The signed-in user with organization and locations loaded (one query for the user, one for locations)."""
    return User.objects.select_related("organization").prefetch_related("locations").get(pk=user_id)


def user_list(*, search: str = "") -> QuerySet[User]:
    """Users for the admin console, optionally filtered by name or username. Callers check the admin role."""
    qs = User.objects.order_by("last_name", "first_name", "username")
    search = search.strip()
    if search:
        qs = qs.filter(Q(username__icontains=search) | Q(first_name__icontains=search) | Q(last_name__icontains=search))
    return qs


def location_list(*, organization_id: int) -> QuerySet[Location]:
    return Location.objects.filter(organization_id=organization_id).order_by("name")


def location_may_receive(user: StreamUser, name: str) -> bool:
    """Realtime authoriser for ``group:location.<id>``: staff who work at that location."""
    _, _, raw_id = name.partition(".")
    if not raw_id.isdigit() or not isinstance(user, User):
        return False
    if not user.has_role(Role.PRACTITIONER, Role.NURSE, Role.SCHEDULER, Role.ADMIN):
        return False
    return user.locations.filter(pk=int(raw_id)).exists()


def audit_event_list(
    *,
    viewer: User,
    request: HttpRequest | None = None,
    patient_id: int | None = None,
    actor_username: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEvent]:
    """Audit rows for the admin console, newest first. Callers check the admin role; the search is audited."""
    qs = AuditEvent.objects.select_related("actor").order_by("-occurred_at", "-id")
    if patient_id is not None:
        qs = qs.filter(patient_id=patient_id)
    if actor_username:
        qs = qs.filter(actor__username=actor_username)
    if action:
        qs = qs.filter(action=action)
    if outcome:
        qs = qs.filter(outcome=outcome)
    if since:
        qs = qs.filter(occurred_at__gte=since)
    if until:
        qs = qs.filter(occurred_at__lte=until)
    used = [
        name
        for name, value in (
            ("patient_id", patient_id),
            ("actor", actor_username),
            ("action", action),
            ("outcome", outcome),
            ("since", since),
            ("until", until),
        )
        if value
    ]
    this_search = audit_record(
        actor=viewer,
        action=AuditAction.READ,
        entity_type="AuditLog",
        patient_id=patient_id,
        purpose="audit_review",
        request=request,
        detail={"filters": used},
    )
    return qs.filter(id__lt=this_search.id)  # the log as it stood before this search


# --- Patients ---------------------------------------------------------------------------------------------------

PATIENT_SUMMARY_FIELDS = ("id", "mrn", "given_name", "family_name", "birth_date", "sex", "status")
SEARCH_MAX_TOKENS = 4


def _patient_channel(request: HttpRequest | None) -> str:
    return "api" if request is not None else "system"


def _audit_patient_read(
    *,
    actor: User,
    patient_id: int | None,
    request: HttpRequest | None,
    entity_type: str = "Patient",
    purpose: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    audit_record(
        actor=actor,
        action=AuditAction.READ,
        entity_type=entity_type,
        entity_id="" if patient_id is None else patient_id,
        patient_id=patient_id,
        purpose=purpose,
        request=request,
        channel=_patient_channel(request),
        detail=detail,
    )


def patient_get(*, actor: User, patient_id: int, request: HttpRequest | None = None) -> Patient:
    """One patient record (any status), after the access check; audits one "read". Raises ``AccessDenied``,
    ``PatientNotFound``. Callers: staff, or the patient themselves (``ehr.access``)."""
    patient_access_check(actor=actor, patient_id=patient_id, action=PatientAction.READ, request=request)
    try:
        patient = Patient.objects.get(pk=patient_id)
    except Patient.DoesNotExist:
        raise PatientNotFound(patient_id) from None
    _audit_patient_read(actor=actor, patient_id=patient.pk, request=request)
    return patient


def patient_identifiers_get(
    *, actor: User, patient_id: int, purpose: str, request: HttpRequest | None = None
) -> PatientIdentifiers:
    """The decrypted national and insurance identifiers; audits a "read" with ``purpose``.
    Callers: staff except schedulers (``ehr.access``)."""
    patient_access_check(actor=actor, patient_id=patient_id, action=PatientAction.READ_IDENTIFIERS, request=request)
    patient = Patient.objects.filter(pk=patient_id).only("id", "national_id_encrypted", "insurance_member_id_encrypted")
    found = patient.first()
    if found is None:
        raise PatientNotFound(patient_id)
    _audit_patient_read(
        actor=actor,
        patient_id=found.pk,
        request=request,
        purpose=purpose,
        detail={"fields": ["national_id", "insurance_member_id"]},
    )
    return PatientIdentifiers(
        patient_id=found.pk,
        national_id=crypto.decrypt_identifier(found.national_id_encrypted) if found.national_id_encrypted else "",
        insurance_member_id=(
            crypto.decrypt_identifier(found.insurance_member_id_encrypted)
            if found.insurance_member_id_encrypted
            else ""
        ),
    )


def patient_search(
    *,
    actor: User,
    query: str = "",
    birth_date: date | None = None,
    mrn: str = "",
    identifier: str = "",
    limit: int = 25,
    request: HttpRequest | None = None,
) -> list[Patient]:
    """Patients matching every criterion given, best name match first (summary columns only).

    Name: each word must match the given or family name by substring or trigram similarity (GIN trigram indexes);
    MRN and identifier (keyed hash) are exact and also find records entered in error; name and birth-date searches
    return active records only. Audits one "read" of entity ``PatientSearch`` with the result count (never the
    query). Callers: staff (``ehr.access``).
    """
    patient_access_check(actor=actor, patient_id=None, action=PatientAction.SEARCH, request=request)
    qs = Patient.objects.only(*PATIENT_SUMMARY_FIELDS)
    mrn = mrn.strip().upper()
    identifier = identifier.strip()
    if mrn:
        qs = qs.filter(mrn=mrn)
    if identifier:
        hashed = crypto.identifier_hash(identifier)
        qs = qs.filter(Q(national_id_hash=hashed) | Q(insurance_member_id_hash=hashed))
    if not mrn and not identifier:
        qs = qs.filter(status=PatientStatus.ACTIVE)
    if birth_date is not None:
        qs = qs.filter(birth_date=birth_date)
    words = query.split()[:SEARCH_MAX_TOKENS]
    for word in words:
        qs = qs.filter(
            Q(family_name__icontains=word)
            | Q(given_name__icontains=word)
            | Q(family_name__trigram_similar=word)
            | Q(given_name__trigram_similar=word)
        )
    if words:
        full_name = Concat("given_name", Value(" "), "family_name")
        qs = qs.annotate(score=TrigramSimilarity(full_name, " ".join(words))).order_by(
            "-score", "family_name", "given_name", "id"
        )
    else:
        qs = qs.order_by("family_name", "given_name", "id")
    results = list(qs[: max(1, min(limit, 100))])
    _audit_patient_read(
        actor=actor, patient_id=None, request=request, entity_type="PatientSearch", detail={"results": len(results)}
    )
    return results


def patient_summaries(
    *, actor: User, patient_ids: list[int], purpose: str = "", request: HttpRequest | None = None
) -> list[Patient]:
    """Summary columns of the given patients (e.g. duplicate candidates to offer at registration), in the order
    given; audits one "read" of ``PatientSearch``. Callers: staff (``ehr.access``)."""
    patient_access_check(actor=actor, patient_id=None, action=PatientAction.SEARCH, request=request)
    rows = {p.pk: p for p in Patient.objects.filter(pk__in=patient_ids).only(*PATIENT_SUMMARY_FIELDS)}
    results = [rows[pk] for pk in patient_ids if pk in rows]
    _audit_patient_read(
        actor=actor,
        patient_id=None,
        request=request,
        entity_type="PatientSearch",
        purpose=purpose,
        detail={"results": len(results), "patient_ids": [p.pk for p in results]},
    )
    return results


def _patient_display(value: Any) -> Any:
    if isinstance(value, dict) and "masked" in value:
        return value["masked"]
    return value


def patient_snapshot_diff(before: dict[str, Any] | None, after: dict[str, Any]) -> list[FieldChange]:
    """Field-level differences between two version snapshots (identifiers compared by hash, shown masked)."""
    before = before or {}
    changes = []
    for field in after.keys() | before.keys():
        old, new = before.get(field), after.get(field)
        if old != new and not (before == {} and new in (None, "")):
            changes.append(FieldChange(field=field, before=_patient_display(old), after=_patient_display(new)))
    order = list(after.keys())
    changes.sort(key=lambda c: order.index(c.field) if c.field in order else len(order))
    return changes


def patient_history(*, actor: User, patient_id: int, request: HttpRequest | None = None) -> list[PatientHistoryEntry]:
    """Every version of a patient, oldest first, each with its field-level diff against the previous version;
    audits one "read". Callers: staff, or the patient themselves (``ehr.access``)."""
    patient_access_check(actor=actor, patient_id=patient_id, action=PatientAction.HISTORY, request=request)
    if not Patient.objects.filter(pk=patient_id).exists():
        raise PatientNotFound(patient_id)
    versions = PatientVersion.objects.filter(patient_id=patient_id).select_related("actor").order_by("version")
    entries = []
    previous: dict[str, Any] | None = None
    for row in versions:
        entries.append(
            PatientHistoryEntry(
                version=row.version,
                changed_fields=list(row.changed_fields),
                actor_id=row.actor_id,
                actor_display_name=row.actor.display_name,
                reason=row.reason,
                recorded_at=row.recorded_at,
                diff=patient_snapshot_diff(previous, row.data),
            )
        )
        previous = row.data
    _audit_patient_read(
        actor=actor, patient_id=patient_id, request=request, detail={"view": "history", "versions": len(entries)}
    )
    return entries
