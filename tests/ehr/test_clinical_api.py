"""The clinical-record API over HTTP: status codes and error shapes, ETag/If-Match, signed-note immutability,
history with diffs, the chart summary's query count, and the audit rows each call writes."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from ehr.models import AuditEvent, ClinicalNote, Condition, Observation
from tests.conftest import csrf_login
from tests.factories import PatientFactory, UserFactory, care_team_join

pytestmark = pytest.mark.django_db

API = "/api/v1/ehr/"


def signed_in(username: str) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    assert csrf_login(client, username).status_code == 200
    return client


def send(client: APIClient, method: str, path: str, data: Any = None, **headers: str):  # type: ignore[no-untyped-def]
    token = client.cookies["csrftoken"].value
    return getattr(client, method)(API + path, data, format="json", HTTP_X_CSRFTOKEN=token, **headers)


class Audit:
    def __init__(self) -> None:
        self.start = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0

    def rows(self) -> list[tuple[str, str, str]]:
        return list(
            AuditEvent.objects.filter(id__gt=self.start).order_by("id").values_list("action", "entity_type", "outcome")
        )


@pytest.fixture
def chart(doctor):  # type: ignore[no-untyped-def]
    record = PatientFactory()
    care_team_join(patient=record, member=doctor)
    return record


@pytest.fixture
def dr(doctor) -> APIClient:
    return signed_in("dr-test")


@pytest.fixture
def encounter_id(dr, chart, location) -> int:
    response = send(dr, "post", f"patients/{chart.pk}/encounters/", {"location_id": location.pk, "modality": "virtual"})
    assert response.status_code == 201, response.json()
    return int(response.json()["id"])


def test_open_list_and_close_an_encounter(dr, doctor, chart, location) -> None:
    audit = Audit()
    opened = send(
        dr,
        "post",
        f"patients/{chart.pk}/encounters/",
        {"location_id": location.pk, "modality": "in-person", "reason": "cough"},
    )
    assert opened.status_code == 201
    assert opened["ETag"] == '"1"'
    body = opened.json()
    assert (body["status"], body["location_name"], body["practitioner_id"]) == ("in-progress", location.name, doctor.pk)
    listed = send(dr, "get", f"patients/{chart.pk}/encounters/")
    assert [e["id"] for e in listed.json()["results"]] == [body["id"]]
    closed = send(dr, "post", f"encounters/{body['id']}/close/")
    assert closed.status_code == 200
    assert closed.json()["status"] == "finished"
    assert closed.json()["duration_seconds"] is not None
    again = send(dr, "post", f"encounters/{body['id']}/close/")
    assert again.status_code == 409
    assert again.json() | {"detail": ""} == {
        "code": "invalid_transition", "detail": "", "current_status": "finished", "target_status": "finished"
    }  # fmt: skip
    assert audit.rows() == [
        ("create", "Encounter", "success"),
        ("read", "Encounter", "success"),
        ("update", "Encounter", "success"),
    ]


def test_note_autosave_412_carries_current_content_then_sign_and_addendum(dr, encounter_id) -> None:
    created = send(dr, "post", f"encounters/{encounter_id}/notes/", {"subjective": "Cough"})
    assert created.status_code == 201
    note = created.json()
    path = f"notes/{note['id']}/"
    assert send(dr, "patch", path, {"plan": "fluids"}).status_code == 428
    assert send(dr, "patch", path, {"plan": "fluids"}, HTTP_IF_MATCH="*").json()["code"] == "invalid_if_match"
    first = send(dr, "patch", path, {"plan": "fluids"}, HTTP_IF_MATCH='"1"')
    assert (first.status_code, first["ETag"]) == (200, '"2"')
    stale = send(dr, "patch", path, {"plan": "rest"}, HTTP_IF_MATCH='"1"')
    assert stale.status_code == 412
    assert stale.json()["code"] == "version_conflict"
    assert stale.json()["current_version"] == 2
    assert stale.json()["current"] == {"subjective": "Cough", "objective": "", "assessment": "", "plan": "fluids"}
    assert send(dr, "post", f"{path}sign/").status_code == 428
    signed = send(dr, "post", f"{path}sign/", HTTP_IF_MATCH='"2"')
    assert (signed.status_code, signed.json()["status"]) == (200, "signed")
    locked = send(dr, "patch", path, {"plan": "changed"}, HTTP_IF_MATCH='"3"')
    assert (locked.status_code, locked.json()["code"]) == (409, "note_signed")
    addendum = send(dr, "post", f"{path}addenda/", {"text": "No fever."})
    assert addendum.status_code == 201
    assert addendum.json()["status"] == "amended"
    assert [a["text"] for a in addendum.json()["addenda"]] == ["No fever."]
    shown = send(dr, "get", path)
    assert (shown.json()["plan"], shown["ETag"]) == ("fluids", '"4"')
    history = send(dr, "get", f"{path}history/").json()["results"]
    assert [h["version"] for h in history] == [1, 2, 3, 4]
    assert {"field": "plan", "from": "", "to": "fluids"} in history[1]["diff"]
    assert ClinicalNote.objects.get(pk=note["id"]).plan == "fluids"


def test_notes_list_of_an_encounter(dr, encounter_id) -> None:
    send(dr, "post", f"encounters/{encounter_id}/notes/", {"subjective": "a"})
    send(dr, "post", f"encounters/{encounter_id}/notes/", {"subjective": "b"})
    listed = send(dr, "get", f"encounters/{encounter_id}/notes/")
    assert [n["subjective"] for n in listed.json()["results"]] == ["a", "b"]


def test_condition_crud_with_icd_validation_if_match_and_history(dr, chart) -> None:
    bad = send(dr, "post", f"patients/{chart.pk}/conditions/", {"code": "E11.999"})
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid"
    assert "code" in bad.json()["fields"]
    created = send(dr, "post", f"patients/{chart.pk}/conditions/", {"code": "e11.9", "onset_date": "2021-01-01"})
    assert created.status_code == 201
    body = created.json()
    assert (body["code"], body["code_display"]) == ("E11.9", "Type 2 diabetes mellitus without complications")
    path = f"conditions/{body['id']}/"
    assert send(dr, "patch", path, {"clinical_status": "resolved", "reason": "r"}).status_code == 428
    updated = send(dr, "patch", path, {"clinical_status": "resolved", "reason": "controlled"}, HTTP_IF_MATCH='"1"')
    assert (updated.status_code, updated["ETag"]) == (200, '"2"')
    stale = send(dr, "patch", path, {"note": "x", "reason": "r"}, HTTP_IF_MATCH='"1"')
    assert (stale.status_code, stale.json()["current_version"]) == (412, 2)
    unknown = send(dr, "patch", path, {"patient_id": 3, "reason": "r"}, HTTP_IF_MATCH='"2"')
    assert unknown.status_code == 400
    eie = send(dr, "post", f"{path}entered-in-error/", {"reason": "wrong chart"}, HTTP_IF_MATCH='"2"')
    assert eie.json()["verification_status"] == "entered-in-error"
    assert send(dr, "get", f"patients/{chart.pk}/conditions/").json()["results"] == []
    everything = send(dr, "get", f"patients/{chart.pk}/conditions/?include_entered_in_error=true").json()["results"]
    assert [c["version"] for c in everything] == [3]
    history = send(dr, "get", f"{path}history/").json()["results"]
    assert [(h["version"], h["reason"]) for h in history] == [(1, "recorded"), (2, "controlled"), (3, "wrong chart")]
    assert Condition.objects.count() == 1


def test_impossible_vitals_and_malformed_json_are_400_and_write_nothing(dr, chart) -> None:
    audit = Audit()
    impossible = send(dr, "post", f"patients/{chart.pk}/observations/", {"code": "8867-4", "value": 500})
    assert impossible.status_code == 400
    assert "not a possible heart rate" in impossible.json()["fields"]["value"][0]
    token = dr.cookies["csrftoken"].value
    malformed = dr.post(
        f"{API}patients/{chart.pk}/observations/", data='{"code": "8867-4", "value": ', content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )  # fmt: skip
    assert (malformed.status_code, malformed.json()["code"]) == (400, "malformed_request")
    not_object = send(dr, "post", f"patients/{chart.pk}/observations/", [1, 2])
    assert not_object.status_code == 400
    assert not Observation.objects.exists()
    assert audit.rows() == []


def test_observation_amend_allergy_and_medication_endpoints(dr, chart) -> None:
    obs = send(
        dr, "post", f"patients/{chart.pk}/observations/", {"code": "8310-5", "value": "37.2", "unit": "Cel"}
    ).json()
    assert (obs["value"], obs["unit"], obs["status"]) == (37.2, "Cel", "final")
    amended = send(dr, "patch", f"observations/{obs['id']}/", {"value": 38.1, "reason": "misread"}, HTTP_IF_MATCH='"1"')
    assert (amended.json()["status"], amended.json()["value"]) == ("amended", 38.1)
    filtered = send(dr, "get", f"patients/{chart.pk}/observations/?code=8310-5").json()["results"]
    assert [o["id"] for o in filtered] == [obs["id"]]
    allergy = send(dr, "post", f"patients/{chart.pk}/allergies/", {"substance_text": "Peanut", "criticality": "high"})
    assert allergy.status_code == 201
    bad_allergy = send(
        dr, "post", f"patients/{chart.pk}/allergies/", {"substance_text": "Peanut", "criticality": "huge"}
    )
    assert bad_allergy.status_code == 400
    med = send(
        dr,
        "post",
        f"patients/{chart.pk}/medications/",
        {"medication_text": "Ibuprofen 400 mg", "rxnorm_code": "197806"},
    )
    assert med.status_code == 201
    stopped = send(
        dr, "patch", f"medications/{med.json()['id']}/", {"status": "stopped", "reason": "done"}, HTTP_IF_MATCH='"1"'
    )
    assert stopped.json()["status"] == "stopped"


def test_summary_is_a_fixed_number_of_queries_and_audited_once(dr, chart) -> None:
    def add_some(n: int) -> None:
        for i in range(n):
            send(dr, "post", f"patients/{chart.pk}/conditions/", {"code": "I10", "note": str(i)})
            send(dr, "post", f"patients/{chart.pk}/allergies/", {"substance_text": f"S{i}", "criticality": "low"})
            send(dr, "post", f"patients/{chart.pk}/medications/", {"medication_text": f"M{i}"})
            for code, value in (("8867-4", 60 + i), ("8310-5", 37), ("59408-5", 97)):
                send(dr, "post", f"patients/{chart.pk}/observations/", {"code": code, "value": value})

    def measure() -> tuple[int, dict[str, Any]]:
        with CaptureQueriesContext(connection) as ctx:
            response = dr.get(f"{API}patients/{chart.pk}/summary/")
        assert response.status_code == 200
        return len(ctx.captured_queries), response.json()

    add_some(1)
    few, _ = measure()
    add_some(5)
    audit = Audit()
    many, body = measure()
    assert many == few
    assert many <= 12  # session + user, access check, patient, four lists, audit row
    assert len(body["problems"]) == 6
    assert len(body["medications"]) == 6
    assert len(body["allergies"]) == 6
    assert {o["code"]: o["value"] for o in body["latest_observations"]} == {"8867-4": 64, "8310-5": 37, "59408-5": 97}
    assert audit.rows() == [("read", "ChartSummary", "success")]


@pytest.mark.parametrize("role", ["scheduler", "billing"])
def test_scheduler_and_billing_get_403_on_clinical_endpoints(chart, doctor, organization, location, role) -> None:
    UserFactory(username=f"{role}-x", roles=[role], organization=organization, locations=[location])
    client = signed_in(f"{role}-x")
    audit = Audit()
    for method, path, data in (
        ("get", f"patients/{chart.pk}/summary/", None),
        ("get", f"patients/{chart.pk}/encounters/", None),
        ("post", f"patients/{chart.pk}/encounters/", {"location_id": location.pk, "modality": "virtual"}),
        ("get", f"patients/{chart.pk}/conditions/", None),
        ("post", f"patients/{chart.pk}/conditions/", {"code": "I10"}),
        ("post", f"patients/{chart.pk}/observations/", {"code": "8867-4", "value": 70}),
    ):
        response = send(client, method, path, data)
        assert response.status_code == 403, (path, response.json())
        assert response.json()["code"] in ("permission_denied", "break_glass_required")
    assert {row[2] for row in audit.rows()} == {"denied"}
    assert len(audit.rows()) == 6


def test_another_clinician_cannot_edit_or_sign_my_draft(dr, doctor2, chart, encounter_id) -> None:
    care_team_join(patient=chart, member=doctor2, role="specialist")
    note = send(dr, "post", f"encounters/{encounter_id}/notes/", {"plan": "x"}).json()
    other = signed_in("dr-two")
    assert (
        send(other, "patch", f"notes/{note['id']}/", {"plan": "y"}, HTTP_IF_MATCH='"1"').json()["code"]
        == "not_note_author"
    )
    assert send(other, "post", f"notes/{note['id']}/sign/", HTTP_IF_MATCH='"1"').status_code == 403
    assert send(other, "get", f"notes/{note['id']}/").status_code == 200  # reading is fine
