"""The clinical permission matrix: every clinical route of ehr/api/urls.py (summary, encounters, notes, conditions,
allergies, medications, observations, histories, documents) x every role and relationship, against an explicit table.

Any 2xx where the table says "deny" fails (zero unauthorised successes); every "allow" must succeed; every refusal of
a signed-in user answers with the code the table names (403; or 404 ``not_found`` on a route addressed by a record's
own id for whoever may not read the chart, exactly as for a missing id) and is audited (one row with outcome
``denied``); anonymous requests get 401 before any record is touched. The patient-demographic and access routes
have their own matrix (test_access_matrix.py).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from ehr.models import AuditEvent, Location, Patient
from ehr.services.access import break_glass_grant
from ehr.services.clinical import (
    allergy_add,
    clinical_note_add,
    clinical_note_sign,
    condition_add,
    encounter_open,
    encounter_plan,
    medication_add,
    observation_record,
)
from ehr.services.documents import IncomingDocument, document_upload
from tests.conftest import csrf_login
from tests.factories import CareTeamMemberFactory, LocationFactory, OrganizationFactory, PatientFactory, UserFactory

pytestmark = pytest.mark.django_db

BASE = "/api/v1/ehr"
PDF = b"%PDF-1.7\n%%EOF\n"

ROLES = (
    "anonymous",
    "patient_self",
    "patient_other",
    "dr_team",  # on the care team; author of the notes below
    "dr_outside",
    "dr_glass",  # outside the care team, holding a break-the-glass grant
    "nurse_team",
    "scheduler",
    "billing",
    "admin",
    "admin_glass",  # an administrator holding a grant (lifts reading only)
)
READERS = {"dr_team", "dr_glass", "nurse_team", "admin_glass", "patient_self"}
WRITERS = {"dr_team", "dr_glass", "nurse_team"}
AUTHOR = {"dr_team"}


@dataclass
class World:
    patient: Patient
    users: dict[str, Any]
    location: Location
    ids: dict[str, int]


@pytest.fixture
def world(settings: Any, tmp_path: Path) -> World:
    settings.DOCUMENT_STORAGE_ROOT = tmp_path / "documents"
    org = OrganizationFactory(name="Clinical Matrix Health")
    location = LocationFactory(organization=org)
    glass_location = LocationFactory(organization=org)  # the patient was never seen here: no SAME_CLINIC

    def staff(name: str, role: str, *locations: Location) -> Any:
        return UserFactory(username=name, roles=[role], organization=org, locations=list(locations))

    admin = staff("admin", "admin")
    users: dict[str, Any] = {
        "patient_self": UserFactory(username="patient_self", roles=["patient"]),
        "patient_other": UserFactory(username="patient_other", roles=["patient"]),
        "dr_team": staff("dr_team", "practitioner", location),
        "dr_outside": staff("dr_outside", "practitioner"),
        "dr_glass": staff("dr_glass", "practitioner", glass_location),
        "nurse_team": staff("nurse_team", "nurse", location),
        "scheduler": staff("scheduler", "scheduler", location),
        "billing": staff("billing", "billing", location),
        "admin": admin,
        "admin_glass": staff("admin_glass", "admin"),
    }
    patient = PatientFactory(registrar=admin, user=users["patient_self"])
    PatientFactory(registrar=admin, user=users["patient_other"])
    CareTeamMemberFactory(patient=patient, member=users["dr_team"], role="assigned-doctor", manager=admin)
    CareTeamMemberFactory(patient=patient, member=users["nurse_team"], manager=admin)
    for name in ("dr_glass", "admin_glass"):
        break_glass_grant(actor=users[name], patient_id=patient.pk, reason="Unconscious in the ER, no team reachable")

    dr = users["dr_team"]
    encounter = encounter_open(actor=dr, patient_id=patient.pk, location_id=location.pk, modality="virtual")
    draft = clinical_note_add(actor=dr, encounter_id=encounter.id, sections={"subjective": "cough"})
    signed = clinical_note_add(actor=dr, encounter_id=encounter.id, sections={"plan": "rest"})
    clinical_note_sign(actor=dr, note_id=signed.id, expected_version=1)
    soon = timezone.now() + datetime.timedelta(days=2)
    planned = encounter_plan(
        actor=users["scheduler"], patient_id=patient.pk, practitioner_id=dr.pk, location_id=location.pk,
        modality="virtual", planned_start=soon, planned_end=soon + datetime.timedelta(minutes=20),
    )  # fmt: skip
    incoming = IncomingDocument(filename="lab.pdf", declared_type="application/pdf")
    incoming.write(PDF)
    ids = {
        "encounter": encounter.id,
        "planned": planned.id,
        "draft": draft.id,
        "signed": signed.id,
        "conditions": condition_add(actor=dr, patient_id=patient.pk, code="I10").id,
        "allergies": allergy_add(actor=dr, patient_id=patient.pk, substance_text="Peanut", criticality="high").id,
        "medications": medication_add(actor=dr, patient_id=patient.pk, medication_text="Ibuprofen").id,
        "observations": observation_record(actor=dr, patient_id=patient.pk, code="8867-4", value=70).id,
        "document": document_upload(
            actor=dr, patient_id=patient.pk, incoming=incoming, type="lab-report", title="Panel"
        ).id,
    }
    return World(patient=patient, users=users, location=location, ids=ids)


def _client(role: str) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    if role == "anonymous":
        client.get("/api/v1/auth/csrf/")
    else:
        assert csrf_login(client, role).status_code == 200
    return client


def _send(client: APIClient, method: str, path: str, data: Any = None, fmt: str = "json", **headers: str) -> Any:
    token = client.cookies["csrftoken"].value
    return getattr(client, method)(BASE + path, data, format=fmt, HTTP_X_CSRFTOKEN=token, **headers)


def _get(path: Callable[[World], str]) -> Callable[[APIClient, World, str], Any]:
    return lambda c, w, role: c.get(BASE + path(w))


def _post(
    path: Callable[[World], str], body: Callable[[World, str], Any] | None = None, *, if_match: str = ""
) -> Callable[[APIClient, World, str], Any]:
    headers = {"HTTP_IF_MATCH": if_match} if if_match else {}
    return lambda c, w, role: _send(c, "post", path(w), body(w, role) if body else None, **headers)


def _patch(path: Callable[[World], str], body: dict[str, Any]) -> Callable[[APIClient, World, str], Any]:
    return lambda c, w, role: _send(c, "patch", path(w), body, HTTP_IF_MATCH='"1"')


def _my_location(w: World, role: str) -> int:
    user = w.users.get(role)
    mine = user.locations.first() if user is not None and role != "anonymous" else None
    return int((mine or w.location).pk)


def _upload(c: APIClient, w: World, role: str) -> Any:
    body = {"file": SimpleUploadedFile("x.pdf", PDF, "application/pdf"), "type": "referral", "title": "Letter"}
    return _send(c, "post", f"/patients/{w.patient.pk}/documents/", body, fmt="multipart")


Request = Callable[[APIClient, World, str], Any]
P = "/patients/{}"

ENDPOINTS: dict[str, Request] = {
    "summary": _get(lambda w: f"/patients/{w.patient.pk}/summary/"),
    "encounters_list": _get(lambda w: f"/patients/{w.patient.pk}/encounters/"),
    "encounters_open": _post(
        lambda w: f"/patients/{w.patient.pk}/encounters/",
        lambda w, role: {"location_id": _my_location(w, role), "modality": "in-person"},
    ),
    "encounter_close": _post(lambda w: f"/encounters/{w.ids['encounter']}/close/"),
    "encounter_entered_in_error": _post(
        lambda w: f"/encounters/{w.ids['encounter']}/entered-in-error/",
        lambda w, role: {"reason": "recorded on the wrong patient"},
        if_match='"1"',
    ),
    "encounter_history": _get(lambda w: f"/encounters/{w.ids['encounter']}/history/"),
    "encounter_cancel": _post(
        lambda w: f"/encounters/{w.ids['planned']}/cancel/", lambda w, r: {"reason": "patient rang"}, if_match='"1"'
    ),
    "notes_list": _get(lambda w: f"/encounters/{w.ids['encounter']}/notes/"),
    "notes_create": _post(lambda w: f"/encounters/{w.ids['encounter']}/notes/", lambda w, r: {"subjective": "x"}),
    "note_detail": _get(lambda w: f"/notes/{w.ids['draft']}/"),
    "note_save_draft": _patch(lambda w: f"/notes/{w.ids['draft']}/", {"plan": "fluids"}),
    "note_sign": _post(lambda w: f"/notes/{w.ids['draft']}/sign/", if_match='"1"'),
    "note_addendum": _post(lambda w: f"/notes/{w.ids['signed']}/addenda/", lambda w, r: {"text": "No fever."}),
    "note_history": _get(lambda w: f"/notes/{w.ids['draft']}/history/"),
    "documents_list": _get(lambda w: f"/patients/{w.patient.pk}/documents/"),
    "documents_upload": _upload,
    "document_content": _get(lambda w: f"/documents/{w.ids['document']}/content/"),
    "document_entered_in_error": _post(
        lambda w: f"/documents/{w.ids['document']}/entered-in-error/", lambda w, r: {"reason": "wrong"}, if_match='"1"'
    ),
    "document_history": _get(lambda w: f"/documents/{w.ids['document']}/history/"),
    "record_export": _get(lambda w: f"/patients/{w.patient.pk}/export/"),
}
CREATE_BODIES: dict[str, dict[str, Any]] = {
    "conditions": {"code": "E11.9"},
    "allergies": {"substance_text": "Latex", "criticality": "low"},
    "medications": {"medication_text": "Paracetamol"},
    "observations": {"code": "8310-5", "value": 37},
}
UPDATE_BODIES: dict[str, dict[str, Any]] = {
    "conditions": {"note": "controlled", "reason": "review"},
    "allergies": {"reaction": "rash", "reason": "review"},
    "medications": {"dose": "1 g", "reason": "review"},
    "observations": {"value": 72, "reason": "misread"},
}


def _record_endpoints(plural: str) -> dict[str, Request]:
    def record(w: World) -> int:
        return w.ids[plural]

    return {
        f"{plural}_list": _get(lambda w: f"/patients/{w.patient.pk}/{plural}/"),
        f"{plural}_create": _post(lambda w: f"/patients/{w.patient.pk}/{plural}/", lambda w, r: CREATE_BODIES[plural]),
        f"{plural}_update": _patch(lambda w: f"/{plural}/{record(w)}/", UPDATE_BODIES[plural]),
        f"{plural}_entered_in_error": _post(
            lambda w: f"/{plural}/{record(w)}/entered-in-error/", lambda w, r: {"reason": "wrong"}, if_match='"1"'
        ),
        f"{plural}_history": _get(lambda w: f"/{plural}/{record(w)}/history/"),
    }


for _plural in CREATE_BODIES:
    ENDPOINTS.update(_record_endpoints(_plural))

READS = {
    name
    for name in ENDPOINTS
    if name.endswith(("_list", "_history", "_detail", "_content")) or name in ("summary", "record_export")
}
WRITES = set(ENDPOINTS) - READS

# endpoint -> the roles allowed; every other role must be refused.
ALLOWED: dict[str, set[str]] = {
    **dict.fromkeys(READS, READERS),
    **dict.fromkeys(WRITES, WRITERS),
    # Only a draft's author edits and signs it (and signing needs a practitioner).
    "note_save_draft": AUTHOR,
    "note_sign": AUTHOR,
    # Booked visits are managed under SCHEDULE: front desk and admins for anyone, clinicians in a care relationship
    # (or under a grant), the patient for themselves.
    "encounter_cancel": WRITERS | {"scheduler", "admin", "admin_glass", "patient_self"},
}


# Routes addressed by the patient's id; every other route is addressed by a record's own id (no existence inference).
PATIENT_LEVEL = {"summary", "record_export", "encounters_list", "encounters_open", "documents_list"} | {
    "documents_upload",
    *(f"{plural}_{op}" for plural in CREATE_BODIES for op in ("list", "create")),
}


def expected_code(endpoint: str, role: str) -> str:
    """The code a refused, signed-in role gets (403, or 404 for ``not_found``)."""
    if endpoint not in PATIENT_LEVEL and role not in READERS:
        return "not_found"  # the same answer as for an id that does not exist
    if role == "dr_outside":
        return "break_glass_required"  # every clinical action of a practitioner can be lifted by a grant
    if role == "admin" and endpoint in READS:
        return "break_glass_required"  # an admin reads clinical data only under a grant
    if endpoint == "note_save_draft" and role in WRITERS:
        return "not_note_author"
    if endpoint == "note_sign" and role == "dr_glass":
        return "not_note_author"
    return "permission_denied"


# Every clinical route this matrix drives (ehr/api/urls.py).
ROUTES = {
    "patients/<int:patient_id>/summary/",
    "patients/<int:patient_id>/encounters/",
    "encounters/<int:encounter_id>/close/",
    "encounters/<int:encounter_id>/cancel/",
    "encounters/<int:encounter_id>/entered-in-error/",
    "encounters/<int:record_id>/history/",
    "encounters/<int:encounter_id>/notes/",
    "notes/<int:note_id>/",
    "notes/<int:note_id>/sign/",
    "notes/<int:note_id>/addenda/",
    "notes/<int:record_id>/history/",
    "patients/<int:patient_id>/documents/",
    "documents/<int:document_id>/content/",
    "documents/<int:document_id>/entered-in-error/",
    "documents/<int:record_id>/history/",
    "patients/<int:patient_id>/export/",
    *(f"patients/<int:patient_id>/{p}/" for p in CREATE_BODIES),
    *(f"{p}/<int:record_id>/" for p in CREATE_BODIES),
    *(f"{p}/<int:record_id>/entered-in-error/" for p in CREATE_BODIES),
    *(f"{p}/<int:record_id>/history/" for p in CREATE_BODIES),
}


def test_the_table_covers_every_clinical_route() -> None:
    from ehr.api.urls import urlpatterns
    from tests.ehr.test_access_matrix import ROUTES as DEMOGRAPHIC_ROUTES

    routes = {str(p.pattern) for p in urlpatterns}
    assert routes >= ROUTES
    others = {"users/", "users/<int:user_id>/deactivate/", "users/<int:user_id>/activate/", "audit-events/"}
    assert routes - ROUTES - DEMOGRAPHIC_ROUTES - others == set(), "a route no matrix drives"
    assert set(ENDPOINTS) == set(ALLOWED)
    assert all(ALLOWED[e] <= set(ROLES) for e in ALLOWED)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_clinical_permission_matrix(world: World, endpoint: str, role: str) -> None:
    client = _client(role)
    marker = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    response = ENDPOINTS[endpoint](client, world, role)
    if role in ALLOWED[endpoint]:
        body = b"" if response.streaming else response.content[:300]
        assert 200 <= response.status_code < 300, (endpoint, role, response.status_code, body)
        assert AuditEvent.objects.filter(id__gt=marker, outcome="success", actor=world.users[role]).exists()
        return
    assert not 200 <= response.status_code < 300, f"UNAUTHORISED SUCCESS: {role} on {endpoint}"
    if role == "anonymous":
        assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")
        assert not AuditEvent.objects.filter(id__gt=marker).exists()
        return
    code = expected_code(endpoint, role)
    assert response.status_code == (404 if code == "not_found" else 403), (endpoint, role, response.content[:300])
    assert response.json()["code"] == code, (endpoint, role)
    assert AuditEvent.objects.filter(id__gt=marker, outcome="denied", actor=world.users[role]).count() == 1
    # Nothing was read or written (a grant's own "used break-the-glass" row may precede an author check).
    assert not AuditEvent.objects.filter(id__gt=marker, outcome="success").exclude(purpose="break_glass").exists()
