"""The scheduling API over HTTP: status codes and error shapes for every kind of bad input (and that nothing is
written), ETag/If-Match, who may book for whom, names read through the audited EHR selector, query counts."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from ehr.models import AuditEvent
from scheduling.models import Appointment, Slot
from tests.conftest import csrf_login
from tests.factories import PatientFactory, UserFactory

pytestmark = pytest.mark.django_db

API = "/api/v1/scheduling/"
TUESDAY_10 = "2031-03-04T10:00:00+00:00"


def signed_in(username: str) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    assert csrf_login(client, username).status_code == 200
    return client


def send(client: APIClient, method: str, path: str, data: Any = None, **headers: str):  # type: ignore[no-untyped-def]
    token = client.cookies["csrftoken"].value
    return getattr(client, method)(API + path, data, format="json", HTTP_X_CSRFTOKEN=token, **headers)


def booking(video_type, doctor, **extra: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return {"appointment_type_id": video_type.pk, "practitioner_id": doctor.pk, "start": TUESDAY_10, **extra}


@pytest.fixture
def desk(scheduler) -> APIClient:
    return signed_in(scheduler.username)


@pytest.fixture
def me(patient_user, patient) -> APIClient:
    return signed_in(patient_user.username)


@pytest.fixture
def base(frozen_now, doctor_schedule, video_type):  # type: ignore[no-untyped-def]
    return doctor_schedule


def test_scheduler_books_and_gets_names_etag_and_location(base, desk, patient, doctor, video_type):
    response = send(desk, "post", "appointments/", booking(video_type, doctor, patient_id=patient.pk))
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "booked"
    assert body["patient_display_name"]
    assert body["patient_mrn"] == patient.mrn
    assert response["ETag"] == '"1"'
    assert body["resources"] == [{"schedule_id": base.pk, "kind": "practitioner", "name": base.name}]


def test_patient_books_for_themselves_without_naming_the_patient(base, me, patient, doctor, video_type):
    response = send(me, "post", "appointments/", booking(video_type, doctor))
    assert response.status_code == 201, response.json()
    assert response.json()["patient_id"] == patient.pk
    other = PatientFactory()
    response = send(me, "post", "appointments/", booking(video_type, doctor, patient_id=other.pk))
    assert response.status_code == 403
    assert Appointment.objects.count() == 1


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"start": "2031-03-04T10:00:00"}, 400, "invalid"),  # no offset, no time zone
        ({"start": "not a time"}, 400, "invalid"),
        ({"start": "2031-03-09T02:30:00", "time_zone": "America/New_York"}, 400, "nonexistent_local_time"),
        ({"start": "2031-11-02T01:30:00", "time_zone": "America/New_York"}, 400, "ambiguous_local_time"),
        ({"start": "2031-03-04T10:00:00", "time_zone": "Mars/Olympus"}, 400, "invalid"),
        ({"start": "2031-03-01T10:00:00+00:00"}, 400, "booking_in_past"),
        ({"start": "2031-03-04T06:00:00+00:00"}, 422, "outside_availability"),
        ({"start": "2032-03-04T10:00:00+00:00"}, 400, "beyond_booking_horizon"),
        ({"appointment_type_id": 999999}, 400, "invalid"),
        ({"practitioner_id": "x"}, 400, "invalid"),
        ({"resource_ids": [999999]}, 400, "invalid"),
        ({"surprise": 1}, 400, "invalid"),
        ({"comment": "x" * 501}, 400, "invalid"),
    ],
)
def test_bad_bookings_get_a_clear_code_and_write_nothing(
    base, desk, patient, doctor, video_type, payload, status, code
):
    response = send(desk, "post", "appointments/", booking(video_type, doctor, patient_id=patient.pk, **payload))
    assert (response.status_code, response.json()["code"]) == (status, code), response.json()
    assert not Appointment.objects.exists()
    assert not Slot.objects.exists()


def test_malformed_json_is_refused(base, desk):
    token = desk.cookies["csrftoken"].value
    response = desk.post(
        API + "appointments/", data="{not json", content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert (response.status_code, response.json()["code"]) == (400, "malformed_request")


def test_conflict_is_409_naming_the_resource(base, desk, patient, doctor, video_type):
    assert send(desk, "post", "appointments/", booking(video_type, doctor, patient_id=patient.pk)).status_code == 201
    response = send(desk, "post", "appointments/", booking(video_type, doctor, patient_id=PatientFactory().pk))
    assert response.status_code == 409
    assert response.json()["code"] == "slot_unavailable"
    assert response.json()["conflicting_resource"] == {"schedule_id": base.pk, "name": base.name}


def test_reschedule_and_cancel_need_if_match_and_refuse_stale_versions(base, desk, patient, doctor, video_type):
    created = send(desk, "post", "appointments/", booking(video_type, doctor, patient_id=patient.pk)).json()
    path = f"appointments/{created['id']}/"
    move = {"start": "2031-03-04T11:00:00+00:00", "reason": "clinic asked"}
    assert send(desk, "post", path + "reschedule/", move).status_code == 428
    stale = send(desk, "post", path + "reschedule/", move, HTTP_IF_MATCH='"9"')
    assert (stale.status_code, stale.json()["current_version"]) == (412, 1)
    moved = send(desk, "post", path + "reschedule/", move, HTTP_IF_MATCH='"1"')
    assert moved.status_code == 200, moved.json()
    assert moved.json()["start"].startswith("2031-03-04T11:00:00")
    cancelled = send(desk, "post", path + "cancel/", {"reason": "patient unwell"}, HTTP_IF_MATCH='"2"')
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    again = send(desk, "post", path + "cancel/", {"reason": "again"}, HTTP_IF_MATCH='"3"')
    assert (again.status_code, again.json()["code"]) == (409, "invalid_transition")


def test_status_endpoint_moves_through_the_table(base, desk, patient, doctor, video_type):
    created = send(desk, "post", "appointments/", booking(video_type, doctor, patient_id=patient.pk)).json()
    path = f"appointments/{created['id']}/status/"
    wrong = send(desk, "post", path, {"status": "fulfilled"}, HTTP_IF_MATCH='"1"')
    assert (wrong.status_code, wrong.json()["code"]) == (409, "invalid_transition")
    bogus = send(desk, "post", path, {"status": "teleported"}, HTTP_IF_MATCH='"1"')
    assert bogus.status_code == 400
    arrived = send(desk, "post", path, {"status": "arrived"}, HTTP_IF_MATCH='"1"')
    assert (arrived.status_code, arrived.json()["status"]) == (200, "arrived")


def test_hold_confirm_flow_and_expired_hold(base, me, doctor, video_type, frozen_now):
    hold = send(me, "post", "holds/", booking(video_type, doctor))
    assert hold.status_code == 201, hold.json()
    confirmed = send(me, "post", f"holds/{hold.json()['id']}/confirm/", {})
    assert (confirmed.status_code, confirmed.json()["status"]) == (201, "booked")
    reused = send(me, "post", f"holds/{hold.json()['id']}/confirm/", {})
    assert (reused.status_code, reused.json()["code"]) == (409, "hold_not_active")
    second = send(me, "post", "holds/", booking(video_type, doctor, start="2031-03-04T12:00:00+00:00")).json()
    frozen_now.shift(dt.timedelta(minutes=6))
    expired = send(me, "post", f"holds/{second['id']}/confirm/", {})
    assert (expired.status_code, expired.json()["code"]) == (409, "hold_expired")
    assert send(me, "post", "holds/not-a-uuid/confirm/", {}).status_code == 404


def test_other_patients_cannot_see_or_change_an_appointment(base, desk, patient, doctor, video_type, organization):
    created = send(desk, "post", "appointments/", booking(video_type, doctor, patient_id=patient.pk)).json()
    stranger_user = UserFactory(username="stranger", roles=["patient"], organization=organization)
    PatientFactory(user=stranger_user)
    stranger = signed_in("stranger")
    assert stranger.get(API + f"appointments/{created['id']}/").status_code == 404
    response = send(stranger, "post", f"appointments/{created['id']}/cancel/", {"reason": "x"}, HTTP_IF_MATCH='"1"')
    assert response.status_code == 404
    assert stranger.get(API + "appointments/?start=2031-03-04T00:00:00Z&end=2031-03-05T00:00:00Z").status_code == 403
    assert stranger.get(API + "me/appointments/").json() == {"results": []}


def test_patient_sees_own_appointments(base, me, doctor, video_type):
    send(me, "post", "appointments/", booking(video_type, doctor))
    results = me.get(API + "me/appointments/").json()["results"]
    assert [r["status"] for r in results] == ["booked"]


def test_appointment_list_names_are_read_through_the_audited_ehr(base, desk, patient, doctor, video_type):
    for start in ("2031-03-04T10:00:00+00:00", "2031-03-04T11:00:00+00:00", "2031-03-04T12:00:00+00:00"):
        send(desk, "post", "appointments/", booking(video_type, doctor, patient_id=PatientFactory().pk, start=start))
    before = AuditEvent.objects.count()
    url = API + "appointments/?start=2031-03-04T00:00:00Z&end=2031-03-05T00:00:00Z"
    with CaptureQueriesContext(connection) as few:
        response = desk.get(url)
    assert response.status_code == 200
    assert all(r["patient_display_name"] for r in response.json()["results"])
    assert AuditEvent.objects.count() == before + 1
    for start in ("2031-03-04T13:00:00+00:00", "2031-03-04T14:00:00+00:00", "2031-03-04T15:00:00+00:00"):
        send(desk, "post", "appointments/", booking(video_type, doctor, patient_id=PatientFactory().pk, start=start))
    with CaptureQueriesContext(connection) as more:
        assert len(desk.get(url).json()["results"]) == 6
    # The query count does not grow with the number of appointments.
    assert len(more.captured_queries) == len(few.captured_queries)


def test_slot_search_over_http(base, me, video_type):
    ok = me.get(API + f"slots/?appointment_type={video_type.pk}&start=2031-03-04T00:00:00Z&end=2031-03-05T00:00:00Z")
    assert ok.status_code == 200
    starts = [s["start"] for s in ok.json()["results"]]
    assert starts[0].startswith("2031-03-04T09:00:00")
    assert starts[-1].startswith("2031-03-04T16:30:00")
    assert len(starts) == 31  # 09:00 to 16:30 every 15 minutes
    too_long = me.get(API + f"slots/?appointment_type={video_type.pk}&start=2031-03-04T00:00:00Z&end=2031-06-04T00:00Z")
    assert (too_long.status_code, too_long.json()["code"]) == (400, "invalid")


def test_availability_is_managed_by_schedulers_only(base, desk, me):
    path = f"schedules/{base.pk}/availability/"
    rules = {"rules": [{"weekday": 0, "start_time": "08:00", "end_time": "12:00", "effective_from": "2031-01-01"}]}
    assert send(me, "put", path, rules).status_code == 403
    saved = send(desk, "put", path, rules)
    assert saved.status_code == 200, saved.json()
    assert saved.json()["rules"] == [
        {
            "weekday": 0,
            "start_time": "08:00",
            "end_time": "12:00",
            "effective_from": "2031-01-01",
            "effective_until": None,
        }
    ]
    overlapping = {"rules": rules["rules"] * 2}
    assert send(desk, "put", path, overlapping).status_code == 400
    blocked = send(
        desk,
        "post",
        f"schedules/{base.pk}/exceptions/",
        {"kind": "unavailable", "start": "2031-03-04T09:00:00Z", "end": "2031-03-04T10:00:00Z", "reason": "meeting"},
    )
    assert blocked.status_code == 201, blocked.json()
    assert send(desk, "delete", f"exceptions/{blocked.json()['id']}/").status_code == 204


# --- the booking permission matrix ------------------------------------------------------------------------------

ROLES = ["patient-self", "patient-other", "practitioner-unrelated", "nurse-unrelated", "scheduler", "billing", "admin"]
MAY_BOOK = {"patient-self", "scheduler", "admin"}


@pytest.mark.parametrize("who", ROLES)
def test_booking_matrix_zero_unauthorised_successes(base, patient, patient_user, doctor, video_type, organization, who):
    if who == "patient-self":
        username = patient_user.username
    else:
        role = who.split("-")[0]
        username = f"matrix-{who}"
        UserFactory(username=username, roles=[role], organization=organization)
        if role == "patient":
            PatientFactory(user=UserFactory._meta.model.objects.get(username=username))
    client = signed_in(username)
    response = send(client, "post", "appointments/", booking(video_type, doctor, patient_id=patient.pk))
    if who in MAY_BOOK:
        assert response.status_code == 201, response.json()
    else:
        assert response.status_code == 403, response.json()
        assert not Appointment.objects.exists()


def test_unrelated_clinician_is_refused_but_the_patients_clinician_may_book(
    base, patient, doctor, video_type, organization
):
    from tests.factories import care_team_join

    colleague = UserFactory(username="matrix-dr", roles=["practitioner"], organization=organization)
    client = signed_in("matrix-dr")
    assert send(client, "post", "appointments/", booking(video_type, doctor, patient_id=patient.pk)).status_code == 403
    care_team_join(patient=patient, member=colleague)
    response = send(client, "post", "appointments/", booking(video_type, doctor, patient_id=patient.pk))
    assert response.status_code == 201, response.json()


def test_unauthenticated_requests_are_refused():
    client = APIClient()
    assert client.get(API + "appointment-types/").status_code in (401, 403)


def test_schedule_list_filters_and_refuses_unknown_kinds(base, desk, me):
    rooms = desk.get(API + "schedules/?kind=room").json()["results"]
    assert rooms == []
    doctors = desk.get(API + f"schedules/?kind=practitioner&location={base.location_id}").json()["results"]
    assert [d["id"] for d in doctors] == [base.pk]
    bad = desk.get(API + "schedules/?kind=spaceship")
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid")
    assert desk.get(API + "schedules/?location=x").status_code == 400
    # Patients choose a doctor, never a room.
    assert {s["kind"] for s in me.get(API + "schedules/").json()["results"]} == {"practitioner"}
