"""Guests of a video visit (issue 7) over HTTP like the SPA and the guest's browser: who may invite, single-use
links (expired 410, reused 409, bad 400, same session idempotent), the guest's lobby and device check, admit (the
visit switches to relay), mute, remove, forced relay, the relay's telemetry, bad input (4xx, nothing written) and
query counts. Real PostgreSQL and Redis; nothing of ours is patched."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from core.models import StreamEvent
from telehealth import services
from telehealth.errors import GuestNotFound, InvalidInput, VisitNotFound
from telehealth.models import Visit, VisitInvitation, VisitRelayReport
from telehealth.selectors import visit_signaling_grant
from telehealth.services.guests import session_hash
from tests.telehealth.conftest import NOW, client_for, post
from tests.telehealth.test_visit_flow import check_in

pytestmark = pytest.mark.django_db

API = "/api/v1/telehealth/"


def guest_client() -> APIClient:
    """A browser that has never signed in (the guest's), with its CSRF cookie as the SPA fetches it first."""
    client = APIClient(enforce_csrf_checks=True)
    client.get("/api/v1/auth/csrf/")
    return client


def invite(client: APIClient, visit_id: str, **body: Any) -> Any:
    return post(client, f"{API}visits/{visit_id}/invitations/", {"role": "interpreter", "name": "Ana Interp", **body})


def token_of(url: str) -> str:
    return url.rsplit("/visit/join/", 1)[1]


def consume(client: APIClient, token: str) -> Any:
    return post(client, f"{API}invitations/consume/", {"token": token})


@pytest.fixture
def visit_id(appointment, patient_user) -> str:  # type: ignore[no-untyped-def]
    return check_in(patient_user, appointment).id


@pytest.fixture
def doc() -> APIClient:
    return client_for("dr-test")


def invited_guest(doc: APIClient, visit_id: str) -> tuple[APIClient, dict[str, Any]]:
    """A guest invited by the doctor who opened their link; returns (guest browser, lobby)."""
    made = invite(doc, visit_id)
    assert made.status_code == 201, made.content
    guest = guest_client()
    opened = consume(guest, token_of(made.json()["url"]))
    assert opened.status_code == 200, opened.content
    return guest, opened.json()


# --- create ------------------------------------------------------------------------------------------------------


def test_the_practitioner_invites_and_gets_a_signed_absolute_link(visit_id, doc, doctor) -> None:
    made = invite(doc, visit_id, expires_in_minutes=30)
    assert made.status_code == 201
    body = made.json()
    assert body["url"].startswith("http://testserver/visit/join/")
    assert (body["role"], body["name"], body["visit_id"]) == ("interpreter", "Ana Interp", visit_id)
    assert body["participant_id"] == "guest-" + body["id"].replace("-", "")
    row = VisitInvitation.objects.get(pk=body["id"])
    assert row.expires_at == NOW + dt.timedelta(minutes=30)
    assert row.created_by_id == doctor.pk
    assert str(row.pk) not in body["url"]  # the id is signed, not shown in clear
    listed = doc.get(f"{API}visits/{visit_id}/invitations/").json()["results"]
    assert [(g["name"], g["status"]) for g in listed] == [("Ana Interp", "invited")]
    assert "url" not in listed[0]
    assert "token" not in listed[0]


def test_a_scheduler_of_the_clinic_invites_ahead_and_check_in_binds_the_visit(
    appointment, patient_user, scheduler
) -> None:
    sched = client_for("sched-test")
    made = post(sched, f"{API}appointments/{appointment.id}/invitations/", {"role": "family", "name": "Rui Family"})
    assert made.status_code == 201, made.content
    assert made.json()["visit_id"] is None
    guest = guest_client()
    lobby = consume(guest, token_of(made.json()["url"])).json()
    assert (lobby["state"], lobby["visit_id"]) == ("not_started", None)
    visit = check_in(patient_user, appointment)
    assert str(VisitInvitation.objects.get(pk=made.json()["id"]).visit_id) == visit.id
    assert guest.get(f"{API}guest/").json()["state"] == "waiting"


def test_who_may_not_invite_gets_404_or_403_and_nothing_is_written(
    visit_id, appointment, nurse, outsider_doctor, patient_user, doctor2
) -> None:
    for username in ("nurse-test", "dr-out", "pat-test"):
        client = client_for(username)
        assert invite(client, visit_id).status_code == 404
        assert (
            post(
                client, f"{API}appointments/{appointment.id}/invitations/", {"role": "family", "name": "X"}
            ).status_code
            == 404
        )
    assert invite(guest_client(), visit_id).status_code in (401, 403)
    assert VisitInvitation.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "surgeon", "name": "A"}, "role"),
        ({"role": "family", "name": ""}, "name"),
        ({"role": "family", "name": "   "}, "name"),
        ({"role": "family", "name": "x" * 81}, "name"),
        ({"role": "family", "name": 5}, "name"),
        ({"role": "family", "name": "A", "expires_in_minutes": 4}, "expires_in_minutes"),
        ({"role": "family", "name": "A", "expires_in_minutes": 1441}, "expires_in_minutes"),
        ({"role": "family", "name": "A", "expires_in_minutes": "60"}, "expires_in_minutes"),
        ({"role": "family", "name": "A", "expires_in_minutes": True}, "expires_in_minutes"),
        ({"role": "family", "name": "A", "phone": "+351"}, "phone"),
        ({"name": "A"}, "role"),
    ],
)
def test_bad_invitation_input_is_400_and_writes_nothing(visit_id, doc, body, field) -> None:
    answer = post(doc, f"{API}visits/{visit_id}/invitations/", body)
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid"
    assert field in answer.json()["fields"]
    assert VisitInvitation.objects.count() == 0


def test_no_invitations_to_a_finished_visit(visit_id, doc, doctor) -> None:
    services.visit_admit(actor=doctor, visit_id=visit_id)
    services.visit_end(actor=doctor, visit_id=visit_id, summary="")
    answer = invite(doc, visit_id)
    assert (answer.status_code, answer.json()["code"]) == (409, "visit_closed")
    assert VisitInvitation.objects.count() == 0


# --- consume -----------------------------------------------------------------------------------------------------


def test_consume_grants_this_session_and_is_idempotent_in_it(visit_id, doc) -> None:
    made = invite(doc, visit_id).json()
    guest = guest_client()
    first = consume(guest, token_of(made["url"]))
    assert first.status_code == 200
    lobby = first.json()
    assert (lobby["visit_id"], lobby["role"], lobby["name"], lobby["participant_id"], lobby["state"]) == (
        visit_id,
        "interpreter",
        "Ana Interp",
        made["participant_id"],
        "waiting",
    )
    again = consume(guest, token_of(made["url"]))
    assert again.status_code == 200
    assert again.json()["participant_id"] == made["participant_id"]
    row = VisitInvitation.objects.get(pk=made["id"])
    assert row.used_session == session_hash(guest.session.session_key)
    assert guest.session["telehealth_guests"] == [made["id"]]
    assert guest.get(f"{API}guest/").json()["participant_id"] == made["participant_id"]


def test_a_link_used_by_another_browser_is_409(visit_id, doc) -> None:
    made = invite(doc, visit_id).json()
    assert consume(guest_client(), token_of(made["url"])).status_code == 200
    other = guest_client()
    refused = consume(other, token_of(made["url"]))
    assert (refused.status_code, refused.json()["code"]) == (409, "invitation_used")
    assert other.get(f"{API}guest/").status_code == 404


def test_an_expired_link_is_410(frozen_now, visit_id, doc) -> None:
    made = invite(doc, visit_id, expires_in_minutes=5).json()
    frozen_now.shift(dt.timedelta(minutes=5))
    refused = consume(guest_client(), token_of(made["url"]))
    assert (refused.status_code, refused.json()["code"]) == (410, "invitation_expired")
    assert VisitInvitation.objects.get(pk=made["id"]).used_at is None


@pytest.mark.parametrize(
    "token", ["", "nonsense", "a" * 501, 12, None, "InRlbGVoZWFsdGgi:1abc:deadbeef"], ids=lambda t: str(t)[:12]
)
def test_a_bad_token_is_400_invalid_token(visit_id, token) -> None:
    refused = post(guest_client(), f"{API}invitations/consume/", {"token": token})
    assert refused.status_code == 400
    assert refused.json()["code"] in ("invalid_token", "invalid")
    assert not VisitInvitation.objects.filter(used_at__isnull=False).exists()


def test_a_check_in_link_token_is_not_an_invitation(visit_id, appointment, scheduler) -> None:
    link = services.checkin_link_create(actor=scheduler, appointment_id=appointment.id)
    refused = consume(guest_client(), link.token)
    assert (refused.status_code, refused.json()["code"]) == (400, "invalid_token")


def test_consume_body_must_be_just_a_token(visit_id) -> None:
    refused = post(guest_client(), f"{API}invitations/consume/", {"token": "x", "visit": "y"})
    assert refused.status_code == 400
    assert "visit" in refused.json()["fields"]


def test_a_removed_guests_link_is_410_revoked(visit_id, doc) -> None:
    made = invite(doc, visit_id).json()
    assert post(doc, f"{API}visits/{visit_id}/guests/{made['participant_id']}/remove/").status_code == 200
    refused = consume(guest_client(), token_of(made["url"]))
    assert (refused.status_code, refused.json()["code"]) == (410, "invitation_revoked")


# --- lobby, device check, ICE ------------------------------------------------------------------------------------


def test_guest_device_check_and_ice_servers_without_sign_in(visit_id, doc) -> None:
    guest, lobby = invited_guest(doc, visit_id)
    checked = post(
        guest,
        f"{API}guest/device-check/",
        {"camera": "pass", "microphone": "pass", "speaker": "skipped", "turn": "fail"},
    )
    assert checked.status_code == 200
    assert checked.json()["ready"] is True
    wrapped = post(
        guest,
        f"{API}guest/device-check/",
        {"result": {"camera": "fail", "microphone": "pass", "speaker": "pass", "turn": "pass"}},
    )
    assert wrapped.json()["ready"] is False
    ice = guest.get(f"{API}ice-servers/", {"visit": visit_id})
    assert ice.status_code == 200
    assert ice["Cache-Control"] == "no-store"
    turn = [s for s in ice.json()["iceServers"] if "username" in s]
    assert turn[0]["username"].endswith(":g" + lobby["participant_id"].removeprefix("guest-")[:12])
    assert post(guest, f"{API}ice-servers/", {"visit_id": visit_id}).status_code == 200


def test_no_ice_servers_or_lobby_for_a_browser_without_a_grant(visit_id, doc) -> None:
    stranger = guest_client()
    assert stranger.get(f"{API}ice-servers/", {"visit": visit_id}).status_code == 403
    assert stranger.get(f"{API}guest/").json()["code"] == "no_guest_session"
    refused = post(
        stranger,
        f"{API}guest/device-check/",
        {"camera": "pass", "microphone": "pass", "speaker": "pass", "turn": "pass"},
    )
    assert refused.status_code == 404
    guest, _ = invited_guest(doc, visit_id)
    other_visit_id = "00000000-0000-4000-8000-000000000000"
    assert guest.get(f"{API}ice-servers/", {"visit": other_visit_id}).status_code == 404
    assert guest.get(f"{API}ice-servers/", {"visit": "nope"}).status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {"camera": "pass", "microphone": "pass", "speaker": "pass"},
        {"camera": "ok", "microphone": "pass", "speaker": "pass", "turn": "pass"},
        {"camera": "pass", "microphone": "pass", "speaker": "pass", "turn": "pass", "gpu": "pass"},
        {"result": "pass"},
        ["pass"],
    ],
)
def test_bad_guest_device_check_is_400_and_changes_nothing(visit_id, doc, body) -> None:
    guest, _ = invited_guest(doc, visit_id)
    answer = post(guest, f"{API}guest/device-check/", body)
    assert answer.status_code == 400
    assert VisitInvitation.objects.get().device_check == {}


# --- admit, mute, remove, relay ----------------------------------------------------------------------------------


def test_admitting_a_guest_switches_the_visit_to_relay_and_tells_the_sockets(visit_id, doc, doctor) -> None:
    guest, lobby = invited_guest(doc, visit_id)
    pid = lobby["participant_id"]
    services.visit_admit(actor=doctor, visit_id=visit_id)
    admitted = post(doc, f"{API}visits/{visit_id}/guests/{pid}/admit/")
    assert admitted.status_code == 200
    assert admitted.json() == {"participant_id": pid, "media_mode": "relay"}
    visit = Visit.objects.get(pk=visit_id)
    assert visit.media_mode == "relay"
    assert StreamEvent.objects.filter(stream=f"group:visit.{visit_id}", type="visit.changed").exists()
    assert guest.get(f"{API}guest/").json()["state"] == "admitted"
    assert doc.get(f"{API}visits/{visit_id}/").json()["media_mode"] == "relay"
    assert post(doc, f"{API}visits/{visit_id}/guests/{pid}/admit/").status_code == 200  # again: no-op
    assert Visit.objects.get(pk=visit_id).version == visit.version
    grant = visit_signaling_grant(user=None, visit_id=visit_id, guest_invitation_ids=[lobby["invitation_id"]])
    assert grant is not None
    assert (grant.role, grant.participant_id, grant.admitted, grant.mode) == ("interpreter", pid, True, "relay")
    assert [e.participant_id for e in grant.roster] == ["practitioner", "patient", pid]


def test_admit_needs_the_practitioner_and_a_guest_who_opened_the_link(visit_id, doc, scheduler) -> None:
    made = invite(doc, visit_id).json()
    not_joined = post(doc, f"{API}visits/{visit_id}/guests/{made['participant_id']}/admit/")
    assert (not_joined.status_code, not_joined.json()["code"]) == (409, "guest_not_joined")
    consume(guest_client(), token_of(made["url"]))
    sched = client_for("sched-test")
    assert post(sched, f"{API}visits/{visit_id}/guests/{made['participant_id']}/admit/").status_code == 403
    for bad in ("guest-" + "0" * 32, "guest-xyz", "patient", "practitioner"):
        assert post(doc, f"{API}visits/{visit_id}/guests/{bad}/admit/").status_code == 404
    assert VisitInvitation.objects.get().admitted_at is None
    assert Visit.objects.get(pk=visit_id).media_mode == "direct"


def test_mute_and_unmute_a_guest_and_the_patient(visit_id, doc) -> None:
    _, lobby = invited_guest(doc, visit_id)
    pid = lobby["participant_id"]
    muted = post(doc, f"{API}visits/{visit_id}/guests/{pid}/mute/", {"audio": False})
    assert muted.json() == {"participant_id": pid, "audio": False}
    assert VisitInvitation.objects.get().muted is True
    assert post(doc, f"{API}visits/{visit_id}/guests/patient/mute/", {"audio": False}).status_code == 200
    assert Visit.objects.get(pk=visit_id).patient_muted is True
    assert post(doc, f"{API}visits/{visit_id}/guests/{pid}/mute/", {"audio": True}).status_code == 200
    assert VisitInvitation.objects.get().muted is False


@pytest.mark.parametrize("body", [{}, {"audio": "false"}, {"audio": 0}, {"audio": None}, {"audio": False, "x": 1}])
def test_bad_mute_input_is_400_and_changes_nothing(visit_id, doc, body) -> None:
    _, lobby = invited_guest(doc, visit_id)
    answer = post(doc, f"{API}visits/{visit_id}/guests/{lobby['participant_id']}/mute/", body)
    assert answer.status_code == 400
    assert VisitInvitation.objects.get().muted is False


def test_only_the_practitioner_mutes_or_removes(visit_id, doc, patient_user) -> None:
    guest, lobby = invited_guest(doc, visit_id)
    pid = lobby["participant_id"]
    me = client_for("pat-test")
    assert post(me, f"{API}visits/{visit_id}/guests/{pid}/mute/", {"audio": False}).status_code == 404
    assert post(me, f"{API}visits/{visit_id}/guests/{pid}/remove/").status_code == 404
    assert post(guest, f"{API}visits/{visit_id}/guests/patient/mute/", {"audio": False}).status_code in (401, 403)
    row = VisitInvitation.objects.get()
    assert (row.muted, row.removed_at) == (False, None)


def test_removing_a_guest_ends_their_grant_and_the_patient_cannot_be_removed(visit_id, doc) -> None:
    guest, lobby = invited_guest(doc, visit_id)
    pid = lobby["participant_id"]
    removed = post(doc, f"{API}visits/{visit_id}/guests/{pid}/remove/")
    assert removed.json() == {"participant_id": pid, "removed": True}
    assert guest.get(f"{API}guest/").json()["state"] == "removed"
    assert guest.get(f"{API}ice-servers/", {"visit": visit_id}).status_code == 403
    grant = visit_signaling_grant(user=None, visit_id=visit_id, guest_invitation_ids=[lobby["invitation_id"]])
    assert grant is not None
    assert grant.removed
    assert pid not in [e.participant_id for e in grant.roster]
    listed = doc.get(f"{API}visits/{visit_id}/invitations/").json()["results"]
    assert listed[0]["status"] == "removed"
    patient = post(doc, f"{API}visits/{visit_id}/guests/patient/remove/")
    assert (patient.status_code, patient.json()["code"]) == (409, "not_allowed")


def test_force_relay_is_for_the_practitioner_and_never_goes_back(visit_id, doc, patient_user) -> None:
    assert post(client_for("pat-test"), f"{API}visits/{visit_id}/relay/").status_code == 404
    assert Visit.objects.get(pk=visit_id).media_mode == "direct"
    forced = post(doc, f"{API}visits/{visit_id}/relay/")
    assert forced.json() == {"media_mode": "relay"}
    assert post(doc, f"{API}visits/{visit_id}/relay/", {"mode": "direct"}).status_code == 400
    with pytest.raises(InvalidInput):
        services.visit_media_mode_set(
            actor=Visit.objects.get(pk=visit_id).practitioner, visit_id=visit_id, mode="direct"
        )
    assert Visit.objects.get(pk=visit_id).media_mode == "relay"


def test_ending_the_visit_expires_unused_links(frozen_now, visit_id, doc, doctor) -> None:
    made = invite(doc, visit_id).json()
    services.visit_admit(actor=doctor, visit_id=visit_id)
    frozen_now.shift(dt.timedelta(minutes=1))
    services.visit_end(actor=doctor, visit_id=visit_id, summary="")
    refused = consume(guest_client(), token_of(made["url"]))
    assert (refused.status_code, refused.json()["code"]) == (410, "invitation_expired")


# --- the relay's telemetry ---------------------------------------------------------------------------------------

TRACK = {
    "kind": "video",
    "source": "practitioner",
    "mode": "forward",
    "codec": "VP8",
    "packets": 10,
    "bytes": 12000,
    "keyframe_requests": 1,
}


def test_relay_report_latest_wins_and_shows_in_quality(frozen_now, visit_id, doc, doctor) -> None:
    services.visit_relay_report(visit_id=visit_id, participant_id="patient", report={"tracks": [TRACK]})
    frozen_now.shift(dt.timedelta(seconds=10))
    second = {
        "tracks": [TRACK, {**TRACK, "kind": "audio", "mode": "transcode", "codec": "opus", "encoded_frames": 3}],
        "pcs": {"pub": "connected", "sub:practitioner": "connected"},
        "published": [
            {"kind": "video", "codec": "VP8", "frames": 5, "bytes": 100, "keyframes": 1, "keyframe_requests": 0}
        ],
    }
    ref = services.visit_relay_report(visit_id=visit_id, participant_id="patient", report=second)
    assert (ref.forwarded, ref.transcoded, ref.connection) == (1, 1, "connected")
    assert VisitRelayReport.objects.count() == 1
    body = doc.get(f"{API}visits/{visit_id}/quality/").json()
    assert body["relay_reports"][0]["participant_id"] == "patient"
    assert (body["relay_reports"][0]["forwarded"], body["relay_reports"][0]["transcoded"]) == (1, 1)


@pytest.mark.parametrize(
    "report",
    [
        None,
        [],
        {},
        {"tracks": "all"},
        {"tracks": [{**TRACK, "sdp": "v=0"}]},
        {"tracks": [{**TRACK, "mode": "decode"}]},
        {"tracks": [{**TRACK, "packets": -1}]},
        {"tracks": [{**TRACK, "bytes": True}]},
        {"tracks": [{**TRACK, "source": "10.0.0.1"}]},
        {"tracks": [{**TRACK, "codec": "VP8; rm -rf"}]},
        {"tracks": [TRACK] * 65},
        {"tracks": [], "address": "192.0.2.1"},
        {"tracks": [], "pcs": {"evil": "connected"}},
        {"tracks": [], "pcs": {"pub": "melting"}},
        {"tracks": [], "published": [{"kind": "video"}]},
        {"tracks": [], "connection": "fine"},
    ],
)
def test_bad_relay_reports_are_refused_and_nothing_is_stored(visit_id, report) -> None:
    with pytest.raises(InvalidInput):
        services.visit_relay_report(visit_id=visit_id, participant_id="patient", report=report)
    assert VisitRelayReport.objects.count() == 0


def test_relay_report_for_unknown_visit_or_participant_is_refused(visit_id) -> None:
    with pytest.raises(VisitNotFound):
        services.visit_relay_report(
            visit_id="00000000-0000-4000-8000-000000000000", participant_id="patient", report={"tracks": []}
        )
    with pytest.raises(GuestNotFound):
        services.visit_relay_report(visit_id=visit_id, participant_id="guest-" + "a" * 32, report={"tracks": []})
    with pytest.raises(InvalidInput):
        services.visit_relay_report(visit_id=visit_id, participant_id="nurse", report={"tracks": []})
    assert VisitRelayReport.objects.count() == 0


# --- query counts ------------------------------------------------------------------------------------------------


def test_invitation_list_query_count_does_not_grow_with_guests(visit_id, doc) -> None:
    invite(doc, visit_id)
    with CaptureQueriesContext(connection) as few:
        assert len(doc.get(f"{API}visits/{visit_id}/invitations/").json()["results"]) == 1
    for n in range(5):
        invite(doc, visit_id, name=f"Guest {n}")
    with CaptureQueriesContext(connection) as more:
        assert len(doc.get(f"{API}visits/{visit_id}/invitations/").json()["results"]) == 6
    assert len(more) == len(few)


def test_signaling_grant_query_count_does_not_grow_with_guests(visit_id, doc, doctor) -> None:
    invite(doc, visit_id)
    with CaptureQueriesContext(connection) as few:
        visit_signaling_grant(user=doctor, visit_id=visit_id)
    for n in range(5):
        invite(doc, visit_id, name=f"Guest {n}")
    with CaptureQueriesContext(connection) as more:
        grant = visit_signaling_grant(user=doctor, visit_id=visit_id)
    assert grant is not None
    assert len(grant.roster) == 8
    assert len(more) == len(few) <= 2


def test_time_machine_is_frozen_for_links(frozen_now) -> None:
    assert isinstance(frozen_now, time_machine.Traveller)
