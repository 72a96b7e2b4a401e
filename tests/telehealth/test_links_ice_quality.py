"""Check-in links (signed, single use, appointment-bound, expiring), TURN REST credentials, quality reports."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import uuid

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.cache import SessionStore
from django.core import signing
from django.test import RequestFactory
from django.utils import timezone

from scheduling.services.booking import appointment_cancel
from telehealth import services
from telehealth.errors import Forbidden, InvalidInput, LinkInvalid, RateLimited, VisitNotFound
from telehealth.models import CallQualityReport, CheckInLink
from telehealth.services.links import SALT
from tests.telehealth.conftest import NINE
from tests.telehealth.test_visit_flow import check_in

pytestmark = pytest.mark.django_db


def _request():  # type: ignore[no-untyped-def]
    request = RequestFactory().post("/api/v1/telehealth/check-in-links/consume/")
    request.session = SessionStore()
    request.user = AnonymousUser()
    return request


# --- links ------------------------------------------------------------------------------------------------------------


def test_a_link_signs_in_the_appointments_patient_once(appointment, patient_user, scheduler) -> None:
    ref = services.checkin_link_create(actor=scheduler, appointment_id=appointment.id)
    assert ref.expires_at == appointment.end  # 24 h would be later than the appointment's end
    request = _request()
    user, appointment_id = services.checkin_link_consume(token=ref.token, request=request)
    assert (user.pk, appointment_id) == (patient_user.pk, appointment.id)
    assert request.user.pk == patient_user.pk
    assert request.session["_auth_user_id"] == str(patient_user.pk)
    with pytest.raises(LinkInvalid):
        services.checkin_link_consume(token=ref.token, request=_request())


def test_an_expired_link_is_refused(frozen_now, appointment, scheduler) -> None:
    ref = services.checkin_link_create(actor=None, appointment_id=appointment.id)
    frozen_now.move_to(appointment.end + dt.timedelta(seconds=1))
    with pytest.raises(LinkInvalid):
        services.checkin_link_consume(token=ref.token, request=_request())
    assert CheckInLink.objects.get().used_at is None


def test_a_forged_or_tampered_token_is_refused(appointment, scheduler) -> None:
    ref = services.checkin_link_create(actor=scheduler, appointment_id=appointment.id)
    link_id = str(CheckInLink.objects.get().pk)
    forged = signing.dumps(link_id, salt="another.salt")
    for token in (forged, ref.token[:-2] + "xx", link_id, "", str(uuid.uuid4()), signing.dumps("x", salt=SALT)):
        with pytest.raises(LinkInvalid):
            services.checkin_link_consume(token=token, request=_request())
    assert CheckInLink.objects.get().used_at is None


def test_a_link_is_bound_to_its_appointment_and_dies_with_it(
    appointment, appointment2, patient2_user, scheduler
) -> None:
    ref = services.checkin_link_create(actor=scheduler, appointment_id=appointment2.id)
    user, appointment_id = services.checkin_link_consume(token=ref.token, request=_request())
    assert (user.pk, appointment_id) == (patient2_user.pk, appointment2.id)  # never the other appointment
    cancelled = services.checkin_link_create(actor=scheduler, appointment_id=appointment.id)
    appointment_cancel(actor=scheduler, appointment_id=appointment.id, reason="Doctor ill")
    with pytest.raises(LinkInvalid):
        services.checkin_link_consume(token=cancelled.token, request=_request())


def test_only_staff_of_the_clinic_create_links(appointment, patient_user, outsider_doctor) -> None:
    for actor in (patient_user, outsider_doctor):
        with pytest.raises(Forbidden):
            services.checkin_link_create(actor=actor, appointment_id=appointment.id)
    assert not CheckInLink.objects.exists()


# --- ICE --------------------------------------------------------------------------------------------------------------


def test_turn_credentials_are_coturn_rest_credentials_that_expire(
    frozen_now, appointment, patient_user, doctor, settings
) -> None:
    settings.TURN_SECRET = "test-turn-secret"
    settings.TURN_CREDENTIAL_TTL_SECONDS = 600
    visit_id = check_in(patient_user, appointment).id
    for user in (patient_user, doctor):
        config = services.ice_servers_issue(actor=user, visit_id=visit_id)
        (turn,) = [s for s in config.ice_servers if s.username]
        expiry, user_id = turn.username.split(":") if turn.username else ("", "")
        assert int(user_id) == user.pk
        assert int(expiry) == int((timezone.now() + dt.timedelta(seconds=600)).timestamp())
        expected = base64.b64encode(hmac.new(b"test-turn-secret", turn.username.encode(), hashlib.sha1).digest())
        assert turn.credential == expected.decode()
        assert config.ttl_seconds == 600
        assert config.expires_at == timezone.now() + dt.timedelta(seconds=600)
        assert all(url.startswith("turn:") for url in turn.urls)


def test_ice_servers_are_refused_to_non_participants(appointment, patient_user, patient2_user, doctor2, nurse) -> None:
    visit_id = check_in(patient_user, appointment).id
    for outsider in (patient2_user, doctor2, nurse):
        with pytest.raises(VisitNotFound):
            services.ice_servers_issue(actor=outsider, visit_id=visit_id)
    with pytest.raises(VisitNotFound):
        services.ice_servers_issue(actor=doctor2, visit_id=str(uuid.uuid4()))
    with pytest.raises(Forbidden):
        services.ice_servers_issue(actor=patient_user, visit_id=None)
    assert services.ice_servers_issue(actor=nurse, visit_id=None).ice_servers  # clinicians' console preview
    with pytest.raises(Forbidden):
        services.ice_servers_issue(actor=AnonymousUser(), visit_id=visit_id)  # type: ignore[arg-type]


def test_relay_policy_comes_from_settings(appointment, patient_user, settings) -> None:
    settings.TELEHEALTH_ICE_TRANSPORT_POLICY = "relay"
    visit_id = check_in(patient_user, appointment).id
    assert services.ice_servers_issue(actor=patient_user, visit_id=visit_id).ice_transport_policy == "relay"


# --- quality ----------------------------------------------------------------------------------------------------------

STATS = {
    "rtt_ms": 12.5,
    "jitter_ms": 1.2,
    "packet_loss_pct": 0.0,
    "bitrate_in_kbps": 900,
    "bitrate_out_kbps": 850.5,
    "frames_decoded": 420,
    "frames_per_second": 29.9,
    "frame_width": 640,
    "frame_height": 480,
    "local_candidate_type": "host",
    "remote_candidate_type": "relay",
    "relay": True,
    "audio_only": False,
}


def test_quality_reports_are_validated_stored_and_rate_limited(frozen_now, appointment, patient_user, doctor) -> None:
    visit_id = check_in(patient_user, appointment).id
    services.visit_admit(actor=doctor, visit_id=visit_id)
    report = services.visit_quality_report(actor=patient_user, visit_id=visit_id, stats=STATS)
    assert report.role == "patient"
    assert report.stats == STATS
    with pytest.raises(RateLimited):
        services.visit_quality_report(actor=patient_user, visit_id=visit_id, stats=STATS)
    services.visit_quality_report(actor=doctor, visit_id=visit_id, stats=STATS)  # per user
    frozen_now.shift(dt.timedelta(seconds=5, milliseconds=1))
    services.visit_quality_report(actor=patient_user, visit_id=visit_id, stats=STATS)
    assert CallQualityReport.objects.count() == 3


@pytest.mark.parametrize(
    "stats",
    [
        {"rtt_ms": "fast"},
        {"packet_loss_pct": 101},
        {"frames_decoded": 1.5},
        {"relay": "yes"},
        {"local_candidate_type": "192.168.1.2"},
        {"candidate": "candidate:1 1 udp 2122260223 10.0.0.1 5000 typ host"},
        {"rtt_ms": float("nan")},
    ],
)
def test_bad_quality_stats_are_refused_and_nothing_is_written(appointment, patient_user, stats) -> None:
    visit_id = check_in(patient_user, appointment).id
    with pytest.raises(InvalidInput):
        services.visit_quality_report(actor=patient_user, visit_id=visit_id, stats=stats)
    assert not CallQualityReport.objects.exists()


def test_only_participants_report_quality(appointment, patient_user, doctor2) -> None:
    visit_id = check_in(patient_user, appointment).id
    with pytest.raises(VisitNotFound):
        services.visit_quality_report(actor=doctor2, visit_id=visit_id, stats=STATS)


def test_links_never_outlive_a_day(frozen_now, scheduler, patient, doctor, doctor_schedule, video_type) -> None:
    from tests.telehealth.conftest import book

    later = book(scheduler, patient, doctor, video_type, NINE + dt.timedelta(days=2))
    ref = services.checkin_link_create(actor=scheduler, appointment_id=later.id)
    assert ref.expires_at == timezone.now() + dt.timedelta(hours=24)
