"""The telehealth API over HTTP with session + CSRF like the SPA: shapes, permissions, bad input (4xx, nothing
written), and query counts of the lists."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from scheduling.selectors import appointment_get
from telehealth.models import CallQualityReport, ClinicianNotice, Visit, VisitMessage
from tests.telehealth.conftest import NINE, book, client_for, post

pytestmark = pytest.mark.django_db

API = "/api/v1/telehealth/"
ANSWERS = {"reason": "Sore throat", "private": True, "medications_changed": False}


def check_in(client: APIClient, appointment_id: int, body: Any = None) -> Any:
    return post(client, f"{API}appointments/{appointment_id}/check-in/", body or {"consent": True, "answers": ANSWERS})


def test_check_in_page_then_check_in_then_waiting_room(appointment, patient_user, doctor) -> None:
    me = client_for("pat-test")
    info = me.get(f"{API}appointments/{appointment.id}/check-in/")
    assert info.status_code == 200
    body = info.json()
    assert body["appointment"]["practitioner_name"] == doctor.display_name
    assert [q["id"] for q in body["questions"]] == ["reason", "private", "medications_changed"]
    assert body["can_check_in"] is True
    assert body["visit_id"] is None
    created = check_in(me, appointment.id)
    assert created.status_code == 201
    visit = created.json()
    assert visit["status"] == "waiting"
    assert visit["role"] == "patient"
    assert "intake" not in visit
    assert "encounter_id" not in visit
    assert check_in(me, appointment.id).status_code == 200  # again: same visit, new answers
    checked = post(
        me,
        f"{API}visits/{visit['id']}/device-check/",
        {"camera": "pass", "microphone": "pass", "speaker": "skipped", "turn": "fail"},
    )
    assert checked.status_code == 200
    assert checked.json()["ready"] is True
    waiting = me.get(f"{API}visits/{visit['id']}/waiting/").json()
    assert waiting["position"] == 1
    assert waiting["ahead"] == 0
    assert waiting["estimated_wait_minutes"] == 0
    assert waiting["doctor_status"] == "offline"
    assert waiting["notice"] is None


def test_doctor_console_admit_chat_end(frozen_now, appointment, patient_user, doctor) -> None:
    me = client_for("pat-test")
    visit_id = check_in(me, appointment.id).json()["id"]
    dr = client_for("dr-test")
    assert post(dr, f"{API}presence/", {"status": "available"}).json()["status"] == "available"
    assert post(dr, f"{API}notice/", {"body": "Running 10 minutes late"}).status_code == 200
    waiting = me.get(f"{API}visits/{visit_id}/waiting/").json()
    assert waiting["doctor_status"] == "available"
    assert waiting["notice"]["body"] == "Running 10 minutes late"
    queue = dr.get(f"{API}queue/").json()
    assert [e["visit_id"] for e in queue["mine"]] == [visit_id]
    entry = queue["mine"][0]
    assert entry["intake"][0] == {"question": "What is the reason for your visit?", "answer": "Sore throat"}
    assert entry["position"] == 1
    assert entry["patient_name"]
    assert queue["current_visit"] is None
    assert post(me, f"{API}visits/{visit_id}/messages/", {"body": "I am ready"}).status_code == 201
    assert post(dr, f"{API}visits/{visit_id}/messages/", {"body": "Coming in a minute"}).status_code == 201
    messages = dr.get(f"{API}visits/{visit_id}/messages/").json()["results"]
    assert [(m["sender_role"], m["body"]) for m in messages] == [
        ("patient", "I am ready"),
        ("practitioner", "Coming in a minute"),
    ]
    admitted = post(dr, f"{API}visits/{visit_id}/admit/")
    assert admitted.status_code == 200
    assert admitted.json()["status"] == "in-progress"
    assert admitted.json()["encounter_id"] == appointment.encounter_id
    assert dr.get(f"{API}queue/").json()["current_visit"]["visit_id"] == visit_id
    assert me.get(f"{API}visits/{visit_id}/waiting/").json()["doctor_status"] == "in-visit"
    frozen_now.shift(dt.timedelta(minutes=9))
    ended = post(dr, f"{API}visits/{visit_id}/end/", {"summary": "Gargle salt water.", "audio_only": False})
    assert ended.status_code == 200
    assert ended.json()["duration_seconds"] == 540
    mine = me.get(f"{API}visits/{visit_id}/").json()
    assert (mine["status"], mine["summary"]) == ("finished", "Gargle salt water.")
    assert appointment_get(appointment_id=appointment.id).status == "fulfilled"
    assert dr.delete(f"{API}notice/", HTTP_X_CSRFTOKEN=dr.cookies["csrftoken"].value).status_code == 204
    assert not ClinicianNotice.objects.filter(cleared_at__isnull=True).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"consent": False, "answers": ANSWERS}, None),
        ({"answers": ANSWERS}, "consent"),
        ({"consent": True, "answers": {"reason": "x" * 1001, "private": True}}, "answers.reason"),
        ({"consent": True, "answers": {"private": True}}, "answers.reason"),
        ({"consent": True, "answers": ANSWERS, "extra": 1}, "extra"),
        ({"consent": True, "answers": ["not", "an", "object"]}, "answers"),
    ],
)
def test_bad_check_ins_are_400_and_write_nothing(appointment, patient_user, body, field) -> None:
    response = check_in(client_for("pat-test"), appointment.id, body)
    assert response.status_code == 400
    payload = response.json()
    assert payload["code"] in {"invalid", "consent_required"}
    assert payload["detail"]
    if field is not None:
        assert field in payload["fields"]
    assert not Visit.objects.exists()
    assert appointment_get(appointment_id=appointment.id).status == "booked"


def test_check_in_refusals_have_their_codes(appointment, patient_user, patient2_user, patient2, frozen_now) -> None:
    assert check_in(client_for("pat-two"), appointment.id).status_code == 404
    assert check_in(client_for("pat-test"), 999_999).status_code == 404
    frozen_now.move_to(NINE - dt.timedelta(hours=2))
    closed = check_in(client_for("pat-test"), appointment.id)
    assert (closed.status_code, closed.json()["code"]) == (409, "check_in_closed")
    assert not Visit.objects.exists()


def _waiting_visit(appointment: Any) -> str:
    return str(check_in(client_for("pat-test"), appointment.id).json()["id"])


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("device-check/", {"camera": "maybe", "microphone": "pass", "speaker": "pass", "turn": "pass"}, "invalid"),
        ("device-check/", {"camera": "pass"}, "invalid"),
        ("messages/", {"body": ""}, "invalid"),
        ("messages/", {"body": "x" * 1001}, "invalid"),
        ("messages/", {"text": "hi"}, "invalid"),
        ("quality/", {"stats": {"rtt_ms": -1}}, "invalid"),
        ("quality/", {"stats": {"sdp": "v=0"}}, "invalid"),
        ("quality/", {"stats": "fast"}, "invalid"),
    ],
)
def test_bad_visit_input_is_400_and_writes_nothing(appointment, patient_user, path, body, code) -> None:
    visit_id = _waiting_visit(appointment)
    version = Visit.objects.get().version
    response = post(client_for("pat-test"), f"{API}visits/{visit_id}/{path}", body)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert Visit.objects.get().version == version
    assert not VisitMessage.objects.exists()
    assert not CallQualityReport.objects.exists()


def test_clinician_bad_input_is_4xx_and_writes_nothing(appointment, patient_user, doctor, doctor2) -> None:
    visit_id = _waiting_visit(appointment)
    dr = client_for("dr-test")
    assert post(dr, f"{API}visits/{visit_id}/transfer/", {"practitioner_id": "two"}).status_code == 400
    assert post(dr, f"{API}visits/{visit_id}/transfer/", {}).status_code == 400
    assert post(dr, f"{API}visits/{visit_id}/transfer/", {"practitioner_id": 999_999}).status_code == 400
    assert post(dr, f"{API}visits/{visit_id}/end/", {"summary": "x"}).json()["code"] == "not_in_progress"
    assert post(dr, f"{API}notice/", {"body": ""}).status_code == 400
    assert post(dr, f"{API}notice/", {"body": "x" * 281}).status_code == 400
    assert post(dr, f"{API}presence/", {"status": "asleep"}).status_code == 400
    assert post(dr, f"{API}visits/not-a-uuid/admit/").status_code == 404
    assert post(dr, f"{API}ice-servers/", {"visit_id": "nope"}).status_code == 400
    visit = Visit.objects.get()
    assert (visit.status, visit.practitioner_id, visit.version) == ("waiting", doctor.pk, 1)
    assert not ClinicianNotice.objects.exists()


def test_permissions_follow_the_contract(
    appointment, patient_user, doctor, outsider_doctor, scheduler, admin_user
) -> None:
    visit_id = _waiting_visit(appointment)
    outsider = client_for("dr-out")
    assert outsider.get(f"{API}visits/{visit_id}/").status_code == 404
    assert post(outsider, f"{API}visits/{visit_id}/admit/").status_code == 404
    assert post(outsider, f"{API}visits/{visit_id}/messages/", {"body": "hi"}).status_code == 404
    desk = client_for("sched-test")
    staff_view = desk.get(f"{API}visits/{visit_id}/").json()
    assert staff_view["role"] == "staff"
    assert staff_view["intake"]
    assert post(desk, f"{API}visits/{visit_id}/admit/").status_code == 403
    assert desk.get(f"{API}queue/").status_code == 403
    me = client_for("pat-test")
    assert post(me, f"{API}visits/{visit_id}/admit/").status_code == 403
    assert me.get(f"{API}queue/").status_code == 403
    assert me.get(f"{API}quality/").status_code == 403
    assert me.get(f"{API}visits/{visit_id}/quality/").status_code == 403
    assert client_for("admin-test").get(f"{API}quality/").status_code == 200
    anonymous = APIClient()
    assert anonymous.get(f"{API}visits/{visit_id}/").status_code == 401
    assert Visit.objects.get().status == "waiting"


def test_staff_create_a_link_and_it_signs_the_patient_in_once(appointment, patient_user, scheduler) -> None:
    desk = client_for("sched-test")
    made = post(desk, f"{API}appointments/{appointment.id}/check-in-link/")
    assert made.status_code == 201
    token = made.json()["url"].rsplit("/", 1)[1]
    assert post(client_for("pat-test"), f"{API}appointments/{appointment.id}/check-in-link/").status_code == 403
    browser = APIClient(enforce_csrf_checks=True)
    browser.get("/api/v1/auth/csrf/")
    used = post(browser, f"{API}check-in-links/consume/", {"token": token})
    assert used.status_code == 200
    assert used.json() == {"appointment_id": appointment.id}
    assert browser.get("/api/v1/auth/me/").json()["username"] == "pat-test"
    other = APIClient(enforce_csrf_checks=True)
    other.get("/api/v1/auth/csrf/")
    again = post(other, f"{API}check-in-links/consume/", {"token": token})
    assert (again.status_code, again.json()["code"]) == (400, "link_invalid")
    assert other.get("/api/v1/auth/me/").status_code in (401, 403)


def test_ice_servers_over_http(appointment, patient_user) -> None:
    visit_id = _waiting_visit(appointment)
    response = post(client_for("pat-test"), f"{API}ice-servers/", {"visit_id": visit_id})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"iceServers", "iceTransportPolicy", "expiresAt", "ttlSeconds"}
    assert body["iceTransportPolicy"] == "all"
    turn = [s for s in body["iceServers"] if "username" in s]
    assert turn[0]["username"].endswith(f":{patient_user.pk}")
    assert post(client_for("pat-test"), f"{API}ice-servers/", {}).status_code == 403


def test_queue_query_count_does_not_grow_with_the_queue(
    frozen_now, scheduler, doctor, doctor_schedule, video_type, organization, settings
) -> None:
    settings.TELEHEALTH_CHECKIN_OPENS_MINUTES = 240
    from tests.factories import PatientFactory, UserFactory
    from tests.telehealth.test_visit_flow import check_in as service_check_in

    def add_patient(n: int) -> None:
        user = UserFactory(username=f"q-pat-{n}", roles=["patient"], organization=organization)
        patient = PatientFactory(user=user)
        appointment = book(scheduler, patient, doctor, video_type, NINE + dt.timedelta(minutes=30 * n))
        service_check_in(user, appointment)

    add_patient(0)
    add_patient(1)
    dr = client_for("dr-test")
    with CaptureQueriesContext(connection) as few:
        assert len(dr.get(f"{API}queue/").json()["mine"]) == 2
    add_patient(2)
    add_patient(3)
    with CaptureQueriesContext(connection) as more:
        assert len(dr.get(f"{API}queue/").json()["mine"]) == 4
    # Only the EHR's per-patient access checks of the names grow (ehr.selectors.patient_refs_get: a clinician's
    # relationship tests cost one or two indexed queries per id); telehealth's own reads are a fixed number.
    per_patient = (len(more.captured_queries) - len(few.captured_queries)) / 2
    assert per_patient <= 2
    assert len(few.captured_queries) <= 25


def test_message_list_query_count_is_fixed(appointment, patient_user, doctor) -> None:
    visit_id = _waiting_visit(appointment)
    me = client_for("pat-test")
    post(me, f"{API}visits/{visit_id}/messages/", {"body": "one"})
    with CaptureQueriesContext(connection) as few:
        me.get(f"{API}visits/{visit_id}/messages/")
    for n in range(5):
        post(me, f"{API}visits/{visit_id}/messages/", {"body": f"more {n}"})
    with CaptureQueriesContext(connection) as more:
        assert len(me.get(f"{API}visits/{visit_id}/messages/").json()["results"]) == 6
    assert len(more.captured_queries) == len(few.captured_queries)


def test_quality_overview_query_count_is_fixed(
    frozen_now, appointment, appointment2, patient_user, patient2_user, doctor, admin_user
) -> None:
    from tests.telehealth.test_links_ice_quality import STATS

    first = _waiting_visit(appointment)
    post(client_for("dr-test"), f"{API}visits/{first}/admit/")
    post(client_for("pat-test"), f"{API}visits/{first}/quality/", {"stats": STATS})
    support = client_for("admin-test")
    with CaptureQueriesContext(connection) as few:
        assert len(support.get(f"{API}quality/").json()["results"]) == 1
    post(client_for("dr-test"), f"{API}visits/{first}/end/", {})
    frozen_now.shift(dt.timedelta(minutes=1))
    second = str(check_in(client_for("pat-two"), appointment2.id).json()["id"])
    post(client_for("dr-test"), f"{API}visits/{second}/admit/")
    post(client_for("pat-two"), f"{API}visits/{second}/quality/", {"stats": STATS})
    post(client_for("dr-test"), f"{API}visits/{second}/quality/", {"stats": STATS})
    with CaptureQueriesContext(connection) as more:
        results = support.get(f"{API}quality/").json()["results"]
    assert [len(r["reports"]) for r in results] == [2, 1]
    assert len(more.captured_queries) == len(few.captured_queries)
