"""Provider paths the main dispatch tests leave out, through the real Twilio SDK against the fake Twilio: a voice
call (Calls.json, TwiML <Say>, its signed `completed` callback replayed to our webhook), the second SMS carrier slot
taking over when the first fails, and the video reminder's signed check-in link, consumed through the telehealth
API. Time frozen."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit
from xml.sax.saxutils import escape

import pytest
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from notifications.models import DeliveryAttempt, OutboundMessage
from notifications.services import message_enqueue, message_enqueue_for_patient, messages_dispatch_due
from scheduling.services.booking import appointment_book
from tests.factories.scheduling import AppointmentTypeFactory
from tests.fakes.twilio_server import FakeTwilio
from tests.notifications.conftest import NOW, PUBLIC

pytestmark = pytest.mark.django_db(transaction=True)

SID2 = "AC" + "9" * 32
TOKEN2 = "second-carrier-token"
FROM2 = "+15005550009"
CONTEXT = {"first_name": "Ana", "practitioner": "Dr Who", "clinic": "Lisbon", "when": "Tue 10:00"}


@pytest.fixture
def second_carrier(settings: Any, providers: Any) -> Iterator[FakeTwilio]:
    """A second Twilio account (another carrier) in the TWILIO_SECONDARY_* slot, on its own fake."""
    fake = FakeTwilio(account_sid=SID2, auth_token=TOKEN2).start()
    settings.TWILIO_SECONDARY_ACCOUNT_SID = SID2
    settings.TWILIO_SECONDARY_AUTH_TOKEN = TOKEN2
    settings.TWILIO_SECONDARY_FROM_NUMBER = FROM2
    settings.TWILIO_SECONDARY_API_BASE = fake.base_url
    try:
        yield fake
    finally:
        fake.stop()


def _sms(patient: Any) -> str:
    with transaction.atomic():
        ref = message_enqueue_for_patient(
            patient_id=patient.pk,
            kind="reminder",
            template_key="reminder",
            due_at=timezone.now(),
            context=CONTEXT,
            source=("test", 1, "reminder:120"),
        )
    return ref.id


def _replay_callback(callback: dict[str, Any]) -> Any:
    """POST a status callback the fake signed (for PUBLIC, where it could not reach us) to our webhook."""
    parts = urlsplit(callback["url"])
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC
    return APIClient().post(
        f"{parts.path}?{parts.query}",
        data=urlencode(callback["params"]),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=callback["signature"],
    )


def test_voice_call_goes_through_twilio_calls_and_its_completed_callback_marks_it_delivered(
    providers: Any, patient: Any, frozen_now: Any
) -> None:
    twilio, smtp = providers
    with transaction.atomic():
        ref = message_enqueue(
            channel="voice",
            kind="reminder",
            template_key="reminder",
            recipient="+15551230001",
            due_at=timezone.now(),
            context=CONTEXT,
            patient_id=patient.pk,
        )
    assert messages_dispatch_due() == 1
    [call] = twilio.calls
    message = OutboundMessage.objects.get(pk=ref.id)
    assert (call["to"], call["from"]) == ("+15551230001", "+15005550006")
    assert call["params"]["Twiml"] == f"<Response><Say>{escape(message.body)}</Say></Response>"
    assert twilio.messages == []
    assert smtp.messages == []
    assert (message.state, message.provider, message.provider_message_id) == ("sent", "twilio", call["sid"])
    assert call["sid"].startswith("CA")
    assert call["idempotency_key"] == message.idempotency_key
    twilio.wait_callbacks(timeout=10)
    [completed] = [c for c in twilio.callbacks if c["params"].get("CallStatus") == "completed"]
    assert _replay_callback(completed).status_code == 204
    assert OutboundMessage.objects.get(pk=ref.id).state == "delivered"
    assert _replay_callback(completed).status_code == 204  # Twilio retries: nothing more happens
    assert OutboundMessage.objects.get(pk=ref.id).state == "delivered"
    assert len(twilio.calls) == 1


@pytest.mark.parametrize("failure", ["503", "refused"])
def test_second_sms_carrier_takes_over_when_the_first_fails(
    providers: Any, second_carrier: FakeTwilio, patient: Any, frozen_now: Any, failure: str
) -> None:
    primary, smtp = providers
    if failure == "503":
        primary.fail_next(1, status=503)
    else:
        primary.down("refuse")
    message_id = _sms(patient)
    assert messages_dispatch_due() == 1
    message = OutboundMessage.objects.get(pk=message_id)
    assert (message.state, message.attempts) == ("queued", 1)
    assert message.next_attempt_at == NOW + dt.timedelta(seconds=30)
    frozen_now.shift(30)
    assert messages_dispatch_due() == 1
    message.refresh_from_db()
    assert (message.state, message.provider) == ("sent", "twilio_secondary")
    [sms] = second_carrier.messages
    assert (sms["to"], sms["from"]) == ("+15551230001", FROM2)
    assert sms["body"] == message.body
    assert message.provider_message_id == sms["sid"]
    assert primary.messages == []
    assert smtp.messages == []
    attempts = list(DeliveryAttempt.objects.filter(message_id=message_id).values_list("number", "provider", "outcome"))
    assert attempts == [(1, "twilio", "error"), (2, "twilio_secondary", "accepted")]


def test_video_reminder_carries_a_working_signed_check_in_link(
    providers: Any, scheduler: Any, doctor: Any, doctor_schedule: Any, patient: Any, patient_user: Any, frozen_now: Any
) -> None:
    twilio, _smtp = providers
    video = AppointmentTypeFactory(code="video-consult", name="Video consultation", modality="video")
    start = NOW + dt.timedelta(hours=2)  # 10:00 in Lisbon; the plan's 15-minute message is due at 09:45
    with transaction.atomic():
        booked = appointment_book(
            actor=scheduler, appointment_type_id=video.pk, patient_id=patient.pk, start=start, practitioner_id=doctor.pk
        )
    video_message = OutboundMessage.objects.get(source_key="reminder:video")
    assert video_message.due_at == start - dt.timedelta(minutes=15)
    frozen_now.move_to(start - dt.timedelta(minutes=15))
    messages_dispatch_due()
    [sms] = [m for m in twilio.messages if "Check in:" in m["body"]]
    assert sms["to"] == "+15551230001"
    links = re.findall(r"https?://\S+", sms["body"])
    checkin = next(url for url in links if "/check-in/link/" in url)
    assert checkin.startswith(f"{PUBLIC}/check-in/link/")
    assert f"{PUBLIC}/visits/check-in/{booked.id}" in links  # the device-check link
    token = checkin.rsplit("/", 1)[1]

    browser = APIClient(enforce_csrf_checks=True)
    browser.get("/api/v1/auth/csrf/")
    csrf = browser.cookies["csrftoken"].value
    used = browser.post(
        "/api/v1/telehealth/check-in-links/consume/", {"token": token}, format="json", HTTP_X_CSRFTOKEN=csrf
    )
    assert used.status_code == 200
    assert used.json() == {"appointment_id": booked.id}
    assert browser.get("/api/v1/auth/me/").json()["username"] == patient_user.username
    again = APIClient(enforce_csrf_checks=True)
    again.get("/api/v1/auth/csrf/")
    reuse = again.post(
        "/api/v1/telehealth/check-in-links/consume/",
        {"token": token},
        format="json",
        HTTP_X_CSRFTOKEN=again.cookies["csrftoken"].value,
    )
    assert (reuse.status_code, reuse.json()["code"]) == (400, "link_invalid")
