"""The Patient API over HTTP: status codes, error shapes, ETag/If-Match, access and the audit rows each call writes."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from ehr.models import AuditEvent, Patient, PatientVersion
from tests.conftest import csrf_login
from tests.factories import CareTeamMemberFactory, PatientFactory

pytestmark = pytest.mark.django_db

BASE = "/api/v1/ehr/patients/"
ADA = {
    "given_name": "Ada",
    "family_name": "Lovelace",
    "birth_date": "1985-12-10",
    "sex": "female",
    "phone": "+44 20 7946 0018",
    "email": "ada@example.test",
    "national_id": "QQ123456C",
    "insurance_member_id": "INS-555-1234",
}


def signed_in(username: str) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    assert csrf_login(client, username).status_code == 200
    return client


def send(client: APIClient, method: str, path: str, data: Any = None, **headers: str):  # type: ignore[no-untyped-def]
    token = client.cookies["csrftoken"].value
    return getattr(client, method)(path, data, format="json", HTTP_X_CSRFTOKEN=token, **headers)


class Audit:
    """Audit rows written since the marker was taken."""

    def __init__(self) -> None:
        self.start = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0

    def rows(self) -> list[tuple[str, str, str]]:
        return list(
            AuditEvent.objects.filter(id__gt=self.start).order_by("id").values_list("action", "entity_type", "outcome")
        )


@pytest.fixture
def dr(doctor) -> APIClient:
    return signed_in("dr-test")


def test_register_returns_201_with_etag_masked_identifiers_and_one_audit_row(dr: APIClient) -> None:
    audit = Audit()
    response = send(dr, "post", BASE, ADA)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert response["ETag"] == '"1"'
    assert re.fullmatch(r"MRN[0-9]{8}", body["mrn"])
    assert body["version"] == 1
    assert body["national_id"] == "•••• 456C"
    assert body["insurance_member_id"] == "•••• 1234"
    assert "QQ123456C" not in response.content.decode()
    assert audit.rows() == [("create", "Patient", "success")]
    assert PatientVersion.objects.filter(patient_id=body["id"], version=1).exists()


def test_duplicate_registration_answers_409_with_candidates_then_override(dr: APIClient) -> None:
    first = send(dr, "post", BASE, ADA).json()
    audit = Audit()
    response = send(dr, "post", BASE, {**ADA, "given_name": "Adah", "phone": "", "email": "", "national_id": ""})
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "duplicate_suspected"
    assert body["candidates"] == [
        {"id": first["id"], "mrn": first["mrn"], "name": "Ada Lovelace", "birth_date": "1985-12-10"}
    ]
    assert Patient.objects.count() == 1
    assert audit.rows() == [("read", "PatientSearch", "success")]  # the candidates shown are an audited read

    again = send(dr, "post", BASE, {**ADA, "given_name": "Adah", "allow_duplicate": True})
    assert again.status_code == 201
    assert Patient.objects.count() == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"birth_date": "2999-01-01"}, "birth_date"),
        ({"birth_date": "10/12/1985"}, "birth_date"),
        ({"sex": "M"}, "sex"),
        ({"email": "nope"}, "email"),
        ({"phone": "ring ring"}, "phone"),
        ({"country": "XYZ"}, "country"),
        ({"favourite_colour": "blue"}, "favourite_colour"),
        ({"mrn": "MRN00000001"}, "mrn"),
    ],
)
def test_bad_input_is_400_invalid_with_fields_and_writes_nothing(dr: APIClient, change: dict[str, str], field) -> None:
    audit = Audit()
    response = send(dr, "post", BASE, {**ADA, **change})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert field in body["fields"]
    assert Patient.objects.count() == 0
    assert audit.rows() == []


def test_malformed_json_is_400(dr: APIClient) -> None:
    token = dr.cookies["csrftoken"].value
    response = dr.post(BASE, "{not json", content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_request"


def test_detail_has_etag_and_one_read_audit_row(dr: APIClient, doctor) -> None:
    patient = PatientFactory(registrar=doctor, national_id="PT-123456789")
    CareTeamMemberFactory(patient=patient, member=doctor)  # access rule: clinicians reach patients in their care
    audit = Audit()
    response = dr.get(f"{BASE}{patient.pk}/")
    assert response.status_code == 200
    assert response["ETag"] == '"1"'
    assert response.json()["national_id"] == "•••• 6789"
    assert audit.rows() == [("read", "Patient", "success")]
    # outside their care a clinician is refused (break-the-glass) whether or not the id exists: ids cannot be probed
    assert dr.get(f"{BASE}999999/").json()["code"] == "break_glass_required"


def test_patch_needs_if_match(dr: APIClient, doctor) -> None:
    patient = PatientFactory(registrar=doctor)
    response = send(dr, "patch", f"{BASE}{patient.pk}/", {"city": "Lisbon", "reason": "moved"})
    assert response.status_code == 428
    assert response.json()["code"] == "precondition_required"
    assert send(dr, "patch", f"{BASE}{patient.pk}/", {"city": "X", "reason": "r"}, HTTP_IF_MATCH="*").status_code == 400
    patient.refresh_from_db()
    assert patient.version == 1


def test_patch_with_current_etag_then_stale_etag(dr: APIClient, doctor) -> None:
    patient = PatientFactory(registrar=doctor)
    CareTeamMemberFactory(patient=patient, member=doctor)  # access rule: clinicians reach patients in their care
    audit = Audit()
    ok = send(dr, "patch", f"{BASE}{patient.pk}/", {"city": "Lisbon", "reason": "moved"}, HTTP_IF_MATCH='"1"')
    assert ok.status_code == 200, ok.json()
    assert ok["ETag"] == '"2"'
    assert ok.json()["city"] == "Lisbon"

    stale = send(dr, "patch", f"{BASE}{patient.pk}/", {"city": "Porto", "reason": "moved"}, HTTP_IF_MATCH='"1"')
    assert stale.status_code == 412
    assert stale.json() == {
        "code": "version_conflict",
        "detail": stale.json()["detail"],
        "current_version": 2,
    }
    patient.refresh_from_db()
    assert (patient.city, patient.version) == ("Lisbon", 2)
    assert audit.rows() == [("update", "Patient", "success")]


def test_patch_requires_a_reason_and_known_fields(dr: APIClient, doctor) -> None:
    patient = PatientFactory(registrar=doctor)
    no_reason = send(dr, "patch", f"{BASE}{patient.pk}/", {"city": "Lisbon"}, HTTP_IF_MATCH='"1"')
    assert no_reason.status_code == 400
    assert "reason" in no_reason.json()["fields"]
    unknown = send(dr, "patch", f"{BASE}{patient.pk}/", {"status": "x", "reason": "r"}, HTTP_IF_MATCH='"1"')
    assert unknown.status_code == 400
    assert "status" in unknown.json()["fields"]
    patient.refresh_from_db()
    assert patient.version == 1


def test_history_lists_versions_with_actor_reason_and_diff(dr: APIClient, doctor) -> None:
    patient = PatientFactory(registrar=doctor, family_name="Lovelace")
    CareTeamMemberFactory(patient=patient, member=doctor)  # access rule: clinicians reach patients in their care
    send(dr, "patch", f"{BASE}{patient.pk}/", {"family_name": "King", "reason": "married"}, HTTP_IF_MATCH='"1"')
    audit = Audit()
    response = dr.get(f"{BASE}{patient.pk}/history/")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["version"] for r in results] == [1, 2]
    latest = results[1]
    assert latest["changed_fields"] == ["family_name"]
    assert latest["actor"] == {"id": doctor.pk, "display_name": doctor.display_name}
    assert latest["reason"] == "married"
    assert latest["diff"] == [{"field": "family_name", "from": "Lovelace", "to": "King"}]
    assert audit.rows() == [("read", "Patient", "success")]


def test_entered_in_error_via_api(dr: APIClient, doctor) -> None:
    patient = PatientFactory(registrar=doctor)
    CareTeamMemberFactory(patient=patient, member=doctor)  # access rule: clinicians reach patients in their care
    path = f"{BASE}{patient.pk}/entered-in-error/"
    response = send(dr, "post", path, {"reason": "registered twice"}, HTTP_IF_MATCH='"1"')
    assert response.status_code == 200
    assert response.json()["status"] == "entered-in-error"
    assert response["ETag"] == '"2"'


def test_search_is_constant_in_queries_and_audits_only_the_count(dr: APIClient, doctor, caplog) -> None:  # type: ignore[no-untyped-def]
    for i in range(12):
        PatientFactory(registrar=doctor, family_name=f"Zebrowski{i}")
    PatientFactory(registrar=doctor, family_name="Quattlebaum")
    audit = Audit()
    caplog.set_level(logging.DEBUG)
    with CaptureQueriesContext(connection) as queries:
        response = dr.get(BASE, {"q": "zebrowski"})
    assert response.status_code == 200
    rows = response.json()["results"]
    assert len(rows) == 12
    assert set(rows[0]) == {"id", "mrn", "display_name", "birth_date", "sex", "status"}
    # user (the session comes from the cache), the search itself, the audit insert: no per-row queries
    assert len(queries) == 3, [q["sql"] for q in queries]
    assert audit.rows() == [("read", "PatientSearch", "success")]
    assert AuditEvent.objects.get(id__gt=audit.start).detail == {"results": 12}
    assert "zebrowski" not in caplog.text.lower()

    assert dr.get(BASE).status_code == 400  # no criteria: no bulk listing
    assert dr.get(BASE, {"mrn": rows[0]["mrn"]}).json()["results"][0]["id"] == rows[0]["id"]
    assert "zebrowski" not in caplog.text.lower()


def test_identifiers_for_clinicians_with_purpose_not_for_schedulers(dr: APIClient, doctor, scheduler) -> None:
    patient = PatientFactory(registrar=doctor, national_id="PT-123456789")
    CareTeamMemberFactory(patient=patient, member=doctor)  # access rule: clinicians reach patients in their care
    path = f"{BASE}{patient.pk}/identifiers/"
    assert dr.get(path).status_code == 400  # purpose required
    audit = Audit()
    response = dr.get(path, {"purpose": "treatment"})
    assert response.status_code == 200
    assert response.json() == {"national_id": "PT123456789", "insurance_member_id": ""}
    assert response["Cache-Control"] == "no-store"
    assert audit.rows() == [("read", "Patient", "success")]
    assert AuditEvent.objects.get(id__gt=audit.start).purpose == "treatment"

    desk = signed_in("sched-test")
    audit = Audit()
    denied = desk.get(path, {"purpose": "registration"})
    assert denied.status_code == 403
    assert denied.json()["code"] == "permission_denied"
    assert audit.rows() == [("read", "Patient", "denied")]
    assert desk.get(f"{BASE}{patient.pk}/").status_code == 200  # demographics are fine


def test_patient_user_sees_only_their_own_record(doctor, patient) -> None:
    own = PatientFactory(registrar=doctor, user=patient)
    other = PatientFactory(registrar=doctor)
    client = signed_in("pt-test")
    audit = Audit()

    assert client.get(f"{BASE}{own.pk}/").status_code == 200
    assert client.get(f"{BASE}{own.pk}/history/").status_code == 200
    for response in (
        client.get(f"{BASE}{other.pk}/"),
        client.get(f"{BASE}{other.pk}/history/"),
        client.get(BASE, {"q": "anyone"}),
        client.get(f"{BASE}{own.pk}/identifiers/", {"purpose": "patient_request"}),
        send(client, "post", BASE, ADA),
        send(client, "patch", f"{BASE}{own.pk}/", {"city": "X", "reason": "r"}, HTTP_IF_MATCH='"1"'),
    ):
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
    assert audit.rows() == [
        ("read", "Patient", "success"),
        ("read", "Patient", "success"),
        ("read", "Patient", "denied"),
        ("read", "Patient", "denied"),
        ("read", "PatientSearch", "denied"),
        ("read", "Patient", "denied"),
        ("create", "Patient", "denied"),
        ("update", "Patient", "denied"),
    ]
    own.refresh_from_db()
    assert own.version == 1


def test_anonymous_is_401(api: APIClient) -> None:
    assert api.get(BASE, {"q": "ada"}).status_code == 401
