"""No existence inference on routes addressed by a clinical record's own id (documents, observations, conditions,
allergies, medications, encounters, notes): to someone who may not read the patient's chart, a record that exists
and one that does not get the same answer, byte for byte (404 ``not_found``). The attempt on an existing record is
still audited as a denial naming its patient. The patient's own routes keep offering break-the-glass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from ehr.models import AuditEvent
from ehr.services.clinical import (
    allergy_add,
    clinical_note_add,
    condition_add,
    encounter_open,
    medication_add,
    observation_record,
)
from ehr.services.documents import IncomingDocument, document_upload
from tests.conftest import csrf_login
from tests.factories import PatientFactory, UserFactory, care_team_join

pytestmark = pytest.mark.django_db

API = "/api/v1/ehr"
MISSING = 987_654_321
PDF = b"%PDF-1.7\n%%EOF\n"

# (method, path template with {id}, body, If-Match) for every route addressed by a record's own id.
ROUTES: dict[str, list[tuple[str, str, dict[str, Any] | None, str]]] = {
    "document": [
        ("get", "/documents/{id}/content/", None, ""),
        ("get", "/documents/{id}/history/", None, ""),
        ("post", "/documents/{id}/entered-in-error/", {"reason": "wrong patient"}, '"1"'),
    ],
    "encounter": [
        ("get", "/encounters/{id}/history/", None, ""),
        ("get", "/encounters/{id}/notes/", None, ""),
        ("post", "/encounters/{id}/notes/", {"subjective": "x"}, ""),
        ("post", "/encounters/{id}/close/", None, ""),
        ("post", "/encounters/{id}/entered-in-error/", {"reason": "wrong patient"}, '"1"'),
    ],
    "note": [
        ("get", "/notes/{id}/", None, ""),
        ("get", "/notes/{id}/history/", None, ""),
        ("patch", "/notes/{id}/", {"plan": "rest"}, '"1"'),
        ("post", "/notes/{id}/sign/", None, '"1"'),
        ("post", "/notes/{id}/addenda/", {"text": "later"}, ""),
    ],
    **{
        plural: [
            ("get", f"/{plural}/{{id}}/history/", None, ""),
            ("patch", f"/{plural}/{{id}}/", {"reason": "review", **change}, '"1"'),
            ("post", f"/{plural}/{{id}}/entered-in-error/", {"reason": "wrong patient"}, '"1"'),
        ]
        for plural, change in (
            ("conditions", {"note": "x"}),
            ("allergies", {"reaction": "rash"}),
            ("medications", {"dose": "1 g"}),
            ("observations", {"value": 72}),
        )
    },
}
# Signed-in users who may not read this patient's chart: a clinician outside the care team (whom a grant would let
# in), another patient, front desk, billing, an administrator without a grant.
OUTSIDERS = ("dr-outside", "pt-other", "sched-x", "bill-x", "admin-x")


@pytest.fixture
def world(doctor: Any, organization: Any, location: Any, settings: Any, tmp_path: Path) -> dict[str, Any]:
    settings.DOCUMENT_STORAGE_ROOT = tmp_path / "documents"
    chart = PatientFactory(user=UserFactory(username="pt-self", roles=["patient"]))
    PatientFactory(user=UserFactory(username="pt-other", roles=["patient"]))
    care_team_join(patient=chart, member=doctor)
    for username, role in (("dr-outside", "practitioner"), ("sched-x", "scheduler"), ("bill-x", "billing")):
        UserFactory(username=username, roles=[role], organization=organization)
    UserFactory(username="admin-x", roles=["admin"], organization=organization)
    encounter = encounter_open(actor=doctor, patient_id=chart.pk, location_id=location.pk, modality="virtual")
    incoming = IncomingDocument(filename="lab.pdf", declared_type="application/pdf")
    incoming.write(PDF)
    ids = {
        "encounter": encounter.id,
        "note": clinical_note_add(actor=doctor, encounter_id=encounter.id, sections={"plan": "x"}).id,
        "document": document_upload(
            actor=doctor, patient_id=chart.pk, incoming=incoming, type="lab-report", title="Panel"
        ).id,
        "conditions": condition_add(actor=doctor, patient_id=chart.pk, code="I10").id,
        "allergies": allergy_add(actor=doctor, patient_id=chart.pk, substance_text="Peanut", criticality="high").id,
        "medications": medication_add(actor=doctor, patient_id=chart.pk, medication_text="Ibuprofen").id,
        "observations": observation_record(actor=doctor, patient_id=chart.pk, code="8867-4", value=70).id,
    }
    return {"chart": chart, "ids": ids}


def signed_in(username: str) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    assert csrf_login(client, username).status_code == 200
    return client


def call(client: APIClient, method: str, path: str, body: dict[str, Any] | None, if_match: str) -> Any:
    headers = {"HTTP_X_CSRFTOKEN": client.cookies["csrftoken"].value}
    if if_match:
        headers["HTTP_IF_MATCH"] = if_match
    return getattr(client, method)(API + path, body, format="json", **headers)


def last_audit_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


@pytest.mark.parametrize("username", OUTSIDERS)
@pytest.mark.parametrize("kind", list(ROUTES))
def test_existing_and_missing_records_answer_alike_to_outsiders(world, username, kind) -> None:
    client = signed_in(username)
    for method, template, body, if_match in ROUTES[kind]:
        marker = last_audit_id()
        existing = call(client, method, template.format(id=world["ids"][kind]), body, if_match)
        denials = list(AuditEvent.objects.filter(id__gt=marker, outcome="denied").values_list("patient_id", flat=True))
        missing = call(client, method, template.format(id=MISSING), body, if_match)
        where = (username, method, template)
        assert (existing.status_code, existing.json()) == (missing.status_code, missing.json()), where
        assert (existing.status_code, existing.json()["code"]) == (404, "not_found"), where
        assert denials == [world["chart"].pk], where  # the attempt on the real record is audited with its patient
        assert not AuditEvent.objects.filter(id__gt=marker, outcome="success").exists(), where


def test_patient_routes_still_offer_break_the_glass_to_an_outside_clinician(world) -> None:
    client = signed_in("dr-outside")
    chart = world["chart"].pk
    for path in (f"/patients/{chart}/summary/", f"/patients/{chart}/documents/", f"/patients/{chart}/conditions/"):
        response = client.get(API + path)
        assert (response.status_code, response.json()["code"]) == (403, "break_glass_required"), path


def test_a_reader_refused_an_action_is_told_so_because_they_know_the_record(world) -> None:
    """The patient may read their own allergy (so its existence is no secret to them) but not change it."""
    client = signed_in("pt-self")
    allergy = world["ids"]["allergies"]
    assert client.get(f"{API}/allergies/{allergy}/history/").status_code == 200
    refused = call(client, "patch", f"/allergies/{allergy}/", {"reaction": "hives", "reason": "mine"}, '"1"')
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")


def test_a_missing_id_is_not_found_for_the_care_team_too(world) -> None:
    client = signed_in("dr-test")
    for path in ("/observations/{id}/history/", "/notes/{id}/", "/documents/{id}/content/"):
        response = client.get(API + path.format(id=MISSING))
        assert (response.status_code, response.json()["code"]) == (404, "not_found"), path
