"""Patient-record export over HTTP against real PostgreSQL: the document's content (entered-in-error rows and draft
notes left out, documents as metadata), identifiers in full only for those who may read them, the download headers,
who may export (the patient's clinicians, the patient, an administrator under a grant) and who may not, one
``export`` audit row with the purpose, denials audited, and a query count that does not grow with the record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from ehr.models import AuditEvent
from ehr.services.access import break_glass_grant
from ehr.services.clinical import (
    allergy_add,
    clinical_note_add,
    clinical_note_addendum,
    clinical_note_sign,
    condition_add,
    condition_mark_entered_in_error,
    encounter_open,
    medication_add,
    observation_record,
)
from ehr.services.documents import IncomingDocument, document_upload
from tests.conftest import csrf_login
from tests.factories import PatientFactory, UserFactory, care_team_join

pytestmark = pytest.mark.django_db

API = "/api/v1/ehr"
PDF = b"%PDF-1.7\n%%EOF\n"
NATIONAL_ID = "AB1234567"


@pytest.fixture(autouse=True)
def store(settings: Any, tmp_path: Path) -> Path:
    settings.DOCUMENT_STORAGE_ROOT = tmp_path / "documents"
    return tmp_path / "documents"


@pytest.fixture
def chart(doctor: Any) -> Any:
    record = PatientFactory(
        user=UserFactory(username="pt-export", roles=["patient"]),
        given_name="Iris",
        family_name="Marlowe",
        national_id=NATIONAL_ID,
    )
    care_team_join(patient=record, member=doctor)
    return record


def add_document(doctor: Any, chart: Any, title: str = "Panel") -> int:
    incoming = IncomingDocument(filename="lab.pdf", declared_type="application/pdf")
    incoming.write(PDF)
    return document_upload(actor=doctor, patient_id=chart.pk, incoming=incoming, type="lab-report", title=title).id


@pytest.fixture
def filled(chart: Any, doctor: Any, location: Any) -> dict[str, Any]:
    """A record with one of everything, plus rows the export must leave out."""
    encounter = encounter_open(actor=doctor, patient_id=chart.pk, location_id=location.pk, modality="virtual")
    signed = clinical_note_add(actor=doctor, encounter_id=encounter.id, sections={"assessment": "viral cough"})
    clinical_note_sign(actor=doctor, note_id=signed.id, expected_version=1)
    clinical_note_addendum(actor=doctor, note_id=signed.id, text="Fever gone on day 3.")
    draft = clinical_note_add(actor=doctor, encounter_id=encounter.id, sections={"plan": "unfinished thought"})
    wrong = condition_add(actor=doctor, patient_id=chart.pk, code="E11.9")
    condition_mark_entered_in_error(actor=doctor, condition_id=wrong.id, expected_version=1, reason="wrong patient")
    return {
        "encounter": encounter.id,
        "signed": signed.id,
        "draft": draft.id,
        "wrong_condition": wrong.id,
        "condition": condition_add(actor=doctor, patient_id=chart.pk, code="I10").id,
        "resolved": condition_add(actor=doctor, patient_id=chart.pk, code="J06.9", clinical_status="resolved").id,
        "allergy": allergy_add(actor=doctor, patient_id=chart.pk, substance_text="Peanut", criticality="high").id,
        "medication": medication_add(actor=doctor, patient_id=chart.pk, medication_text="Amlodipine", dose="5 mg").id,
        "observation": observation_record(actor=doctor, patient_id=chart.pk, code="8867-4", value=72).id,
        "document": add_document(doctor, chart),
    }


def signed_in(username: str) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    assert csrf_login(client, username).status_code == 200
    return client


def export(client: APIClient, patient_id: int, **params: str) -> Any:
    return client.get(f"{API}/patients/{patient_id}/export/", params)


def last_audit_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def test_export_holds_the_whole_record_as_a_json_download(chart, filled, doctor) -> None:
    response = export(signed_in("dr-test"), chart.pk)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"].startswith(f'attachment; filename="consulta-record-{chart.pk}-')
    assert response["Content-Disposition"].endswith('.json"')
    assert response["Cache-Control"] == "no-store"
    assert response["X-Content-Type-Options"] == "nosniff"
    body = json.loads(response.content)
    assert (body["format"], body["version"], body["purpose"]) == ("consulta.patient-record", 1, "export")
    assert (body["exported_by_id"], body["exported_by_display_name"]) == (doctor.pk, doctor.display_name)
    record = body["record"]
    patient = record["patient"]
    assert (patient["id"], patient["mrn"], patient["given_name"], patient["family_name"]) == (
        chart.pk, chart.mrn, "Iris", "Marlowe"
    )  # fmt: skip
    assert (patient["national_id"], patient["identifiers_masked"]) == (NATIONAL_ID, False)
    assert patient["insurance_member_id"] == ""
    assert {p["id"] for p in record["problems"]} == {filled["condition"], filled["resolved"]}  # not entered-in-error
    assert [a["id"] for a in record["allergies"]] == [filled["allergy"]]
    assert [(m["id"], m["dose"]) for m in record["medications"]] == [(filled["medication"], "5 mg")]
    assert [(o["id"], o["code"], o["value"]) for o in record["observations"]] == [
        (filled["observation"], "8867-4", 72.0)
    ]
    (encounter,) = record["encounters"]
    assert encounter["id"] == filled["encounter"]
    (note,) = encounter["notes"]  # the draft is not part of the record until signed
    assert (note["id"], note["status"], note["assessment"]) == (filled["signed"], "amended", "viral cough")
    assert [a["text"] for a in note["addenda"]] == ["Fever gone on day 3."]
    (document,) = record["documents"]
    assert (document["id"], document["title"], document["content_type"]) == (
        filled["document"], "Panel", "application/pdf"
    )  # fmt: skip
    assert "storage_key" not in document
    assert PDF.decode() not in response.content.decode()  # metadata, never the bytes


def test_export_is_audited_as_one_export_row_with_its_purpose(chart, filled, doctor) -> None:
    marker = last_audit_id()
    response = export(signed_in("dr-test"), chart.pk, purpose="continuity-of-care")
    assert response.status_code == 200
    assert json.loads(response.content)["purpose"] == "continuity-of-care"
    rows = list(AuditEvent.objects.filter(id__gt=marker, actor=doctor).order_by("id"))
    (row,) = [r for r in rows if r.action == "export"]
    assert (row.entity_type, row.entity_id, row.patient_id) == ("PatientRecord", str(chart.pk), chart.pk)
    assert (row.purpose, row.channel, row.outcome, row.actor_role) == (
        "continuity-of-care", "export", "success", "practitioner"
    )  # fmt: skip
    assert row.detail == {
        "counts": {
            "problems": 2, "allergies": 1, "medications": 1, "observations": 1, "encounters": 1, "notes": 1,
            "documents": 1,
        },
        "identifiers": "full",
        "format": "consulta.patient-record/1",
    }  # fmt: skip
    assert [r.action for r in rows] == ["export"]  # the export is the one row (nothing else read separately)


def test_the_patient_downloads_their_own_record_with_identifiers_masked(chart, filled) -> None:
    marker = last_audit_id()
    response = export(signed_in("pt-export"), chart.pk)
    assert response.status_code == 200
    patient = json.loads(response.content)["record"]["patient"]
    assert patient["identifiers_masked"] is True
    assert patient["national_id"] == "•••• 4567"
    assert NATIONAL_ID not in response.content.decode()
    row = AuditEvent.objects.get(id__gt=marker, action="export")
    assert (row.purpose, row.detail["identifiers"], row.actor_role) == ("export", "masked", "patient")
    log = signed_in("pt-export").get(f"{API}/me/access-log/").json()["results"]
    assert any(entry["what"] == "exported your record" and entry["who"] == "You" for entry in log)


def test_unknown_purpose_is_refused_and_nothing_is_audited(chart) -> None:
    client = signed_in("dr-test")
    marker = last_audit_id()
    response = export(client, chart.pk, purpose="curiosity")
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert "purpose" in response.json()["fields"]
    assert not AuditEvent.objects.filter(id__gt=marker).exists()


@pytest.mark.parametrize(
    ("username", "role", "status", "code"),
    [
        ("nurse-x", "nurse", 200, ""),  # on the care team (below)
        ("dr-outside", "practitioner", 403, "break_glass_required"),
        ("sched-x", "scheduler", 403, "permission_denied"),
        ("bill-x", "billing", 403, "permission_denied"),
        ("admin-x", "admin", 403, "break_glass_required"),
        ("pt-other", "patient", 403, "permission_denied"),
    ],
)
def test_who_may_export(chart, filled, organization, location, username, role, status, code) -> None:
    user = UserFactory(username=username, roles=[role], organization=organization)
    if username == "nurse-x":
        care_team_join(patient=chart, member=user, role="nurse")
    if role == "patient":
        PatientFactory(user=user)
    marker = last_audit_id()
    response = export(signed_in(username), chart.pk)
    assert response.status_code == status
    rows = list(AuditEvent.objects.filter(id__gt=marker, actor=user).values_list("action", "outcome", "patient_id"))
    if status == 200:
        assert rows == [("export", "success", chart.pk)]
        return
    assert response.json()["code"] == code
    assert "Content-Disposition" not in response
    assert rows == [("read", "denied", chart.pk)]  # the denial, audited by the access module


def test_an_administrator_exports_only_under_a_break_the_glass_grant(chart, filled, organization) -> None:
    admin = UserFactory(username="admin-glass", roles=["admin"], organization=organization)
    break_glass_grant(actor=admin, patient_id=chart.pk, reason="Patient transferred unconscious, records needed now")
    marker = last_audit_id()
    response = export(signed_in("admin-glass"), chart.pk)
    assert response.status_code == 200
    rows = list(AuditEvent.objects.filter(id__gt=marker, actor=admin).values_list("action", "purpose"))
    assert rows == [("read", "break_glass"), ("export", "export")]


def test_anonymous_export_is_refused_before_anything_is_read(chart) -> None:
    client = APIClient(enforce_csrf_checks=True)
    marker = last_audit_id()
    response = export(client, chart.pk)
    assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")
    assert not AuditEvent.objects.filter(id__gt=marker).exists()


def test_query_count_does_not_grow_with_the_record(chart, filled, doctor, location) -> None:
    client = signed_in("dr-test")
    with CaptureQueriesContext(connection) as small:
        assert export(client, chart.pk).status_code == 200
    for n in range(3):
        encounter = encounter_open(actor=doctor, patient_id=chart.pk, location_id=location.pk, modality="in-person")
        note = clinical_note_add(actor=doctor, encounter_id=encounter.id, sections={"plan": f"step {n}"})
        clinical_note_sign(actor=doctor, note_id=note.id, expected_version=1)
        clinical_note_addendum(actor=doctor, note_id=note.id, text=f"addendum {n}")
        observation_record(actor=doctor, patient_id=chart.pk, code="8310-5", value=37)
        add_document(doctor, chart, title=f"Scan {n}")
    with CaptureQueriesContext(connection) as large:
        response = export(client, chart.pk)
    assert len(json.loads(response.content)["record"]["encounters"]) == 4
    assert len(large) == len(small)
