"""The notifications API: Twilio webhooks verified by signature (forged -> 403, nothing done), inbound STOP/START
and C/X replies acting on the appointment, health and failures for staff, resend, a patient's own preferences."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from notifications.models import InboundSms, OutboundMessage
from notifications.services import messages_dispatch_due
from notifications.services.messages import preference_for
from scheduling.models import Appointment
from scheduling.services.booking import appointment_book
from tests.conftest import csrf_login, csrf_post
from tests.fakes.twilio_server import signature
from tests.notifications.conftest import PUBLIC, TOKEN

pytestmark = pytest.mark.django_db(transaction=True)
INBOUND = "/api/v1/notifications/twilio/inbound/"
STATUS = "/api/v1/notifications/twilio/status/"


def _post_signed(path: str, params: dict[str, str], *, token: str = TOKEN) -> Any:
    client = APIClient()
    sig = signature(token, PUBLIC + path, params)
    return client.post(
        path, data=urlencode(params), content_type="application/x-www-form-urlencoded", HTTP_X_TWILIO_SIGNATURE=sig
    )


def _put(client: APIClient, data: dict[str, Any]) -> Any:
    token = client.cookies["csrftoken"].value
    return client.put("/api/v1/notifications/preferences/", data, format="json", HTTP_X_CSRFTOKEN=token)


def _booked_and_reminded(scheduler: Any, doctor: Any, patient: Any, visit_type: Any) -> int:
    start = dt.datetime(2031, 3, 5, 14, 0, tzinfo=dt.UTC)
    with transaction.atomic():
        ref = appointment_book(
            actor=scheduler,
            appointment_type_id=visit_type.pk,
            patient_id=patient.pk,
            start=start,
            practitioner_id=doctor.pk,
        )
    OutboundMessage.objects.filter(source_key="reminder:1440").update(
        next_attempt_at=dt.datetime(2031, 3, 3, tzinfo=dt.UTC)
    )
    assert messages_dispatch_due(limit=10) == 1
    return ref.id


def test_forged_or_unsigned_webhooks_are_rejected(providers, patient, frozen_now):  # type: ignore[no-untyped-def]
    params = {"MessageSid": "SM" + "a" * 32, "From": "+15551230001", "Body": "STOP"}
    assert _post_signed(INBOUND, params, token="not-the-token").status_code == 403
    unsigned = APIClient().post(INBOUND, data=urlencode(params), content_type="application/x-www-form-urlencoded")
    assert unsigned.status_code == 403
    assert unsigned.json()["code"] == "bad_signature"
    tampered = dict(params, Body="START")
    client = APIClient()
    response = client.post(
        INBOUND,
        data=urlencode(tampered),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=signature(TOKEN, PUBLIC + INBOUND, params),
    )
    assert response.status_code == 403
    assert _post_signed(STATUS + "?message=x", {"MessageStatus": "delivered"}, token="forged").status_code == 403
    assert InboundSms.objects.count() == 0
    assert preference_for(patient.pk).sms_opt_out is False


def test_stop_is_honoured_at_once_and_start_resumes(
    providers, scheduler, doctor, doctor_schedule, patient, visit_type, frozen_now
):  # type: ignore[no-untyped-def]
    twilio, smtp = providers
    response = _post_signed(INBOUND, {"MessageSid": "SM" + "b" * 32, "From": "+15551230001", "Body": "stop"})
    assert response.status_code == 200
    assert b"<Message>You will no longer" in response.content
    assert preference_for(patient.pk).sms_opt_out is True
    # Every later message honours it: the reminder goes by email, nothing reaches the phone.
    _booked_and_reminded(scheduler, doctor, patient, visit_type)
    assert twilio.messages == []
    assert smtp.count_recipient("pat@example.test") == 1
    again = _post_signed(INBOUND, {"MessageSid": "SM" + "b" * 32, "From": "+15551230001", "Body": "stop"})
    assert again.content == response.content
    assert InboundSms.objects.count() == 1
    _post_signed(INBOUND, {"MessageSid": "SM" + "c" * 32, "From": "+15551230001", "Body": "START"})
    assert preference_for(patient.pk).sms_opt_out is False


def test_reply_c_confirms_and_x_cancels_the_appointment(
    providers, scheduler, doctor, doctor_schedule, patient, visit_type, frozen_now
):  # type: ignore[no-untyped-def]
    appointment_id = _booked_and_reminded(scheduler, doctor, patient, visit_type)
    confirm = _post_signed(INBOUND, {"MessageSid": "SM" + "d" * 32, "From": "+15551230001", "Body": "C"})
    assert b"confirmed" in confirm.content
    appointment = Appointment.objects.get(pk=appointment_id)
    assert appointment.events.filter(type="confirmed").exists()
    cancel = _post_signed(INBOUND, {"MessageSid": "SM" + "e" * 32, "From": "+15551230001", "Body": "X"})
    assert b"cancelled" in cancel.content
    appointment.refresh_from_db()
    assert appointment.status == "cancelled"
    assert not OutboundMessage.objects.filter(source_id=str(appointment_id), state="queued").exists()


def test_signed_status_callback_applies(providers, scheduler, doctor, doctor_schedule, patient, visit_type, frozen_now):  # type: ignore[no-untyped-def]
    _booked_and_reminded(scheduler, doctor, patient, visit_type)
    message = OutboundMessage.objects.get(state="sent")
    path = f"{STATUS}?message={message.id}"
    response = _post_signed(
        path, {"MessageSid": message.provider_message_id, "MessageStatus": "undelivered", "ErrorCode": "30005"}
    )
    assert response.status_code == 204
    message.refresh_from_db()
    assert message.state == "failed"
    assert message.last_error_code == "30005"
    assert OutboundMessage.objects.get(fallback_of=message).channel == "email"


def test_health_failures_and_resend_for_staff(
    providers, scheduler, doctor, doctor_schedule, patient, visit_type, frozen_now, patient_user
):  # type: ignore[no-untyped-def]
    twilio, _smtp = providers
    twilio.block("+15551230001")
    preference = preference_for(patient.pk)
    preference.channels = ["sms"]
    preference.save()
    _booked_and_reminded(scheduler, doctor, patient, visit_type)
    client = APIClient()
    csrf_login(client, scheduler.username)
    health = client.get("/api/v1/notifications/health/?days=7").json()
    assert health["totals"]["failed"] == 1
    assert [d["channel"] for d in health["days"]] == ["sms"]
    failures = client.get("/api/v1/notifications/failures/").json()
    assert failures["count"] == 1
    row = failures["results"][0]
    assert row["resendable"] is True
    assert row["recipient_masked"].endswith("0001")
    assert "+1555" not in row["recipient_masked"]
    assert row["fell_back_to"] is None
    preference.channels = ["email", "sms"]
    preference.save()
    resent = csrf_post(client, f"/api/v1/notifications/messages/{row['id']}/resend/")
    assert resent.status_code == 201
    assert resent.json()["state"] == "queued"
    assert csrf_post(client, f"/api/v1/notifications/messages/{row['id']}/resend/").status_code == 409
    assert client.get("/api/v1/notifications/failures/").json()["results"][0]["resendable"] is False
    assert client.get("/api/v1/notifications/health/?days=0").status_code == 400
    patient_client = APIClient()
    csrf_login(patient_client, patient_user.username)
    assert patient_client.get("/api/v1/notifications/health/").status_code == 403
    assert csrf_post(patient_client, f"/api/v1/notifications/messages/{row['id']}/resend/").status_code == 403


def test_patient_reads_and_updates_own_preferences(patient, patient_user, scheduler):  # type: ignore[no-untyped-def]
    client = APIClient()
    csrf_login(client, patient_user.username)
    body = client.get("/api/v1/notifications/preferences/").json()
    assert body["channels"] == ["sms", "email"]
    assert body["sms_opt_out"] is False
    assert body["phone_masked"].endswith("0001")
    assert "@example.test" in body["email_masked"]
    assert {"code": "en", "name": "English"} in body["languages"]
    updated = _put(client, {"channels": ["email", "sms"], "language": "es", "sms_opt_out": True})
    assert updated.status_code == 200
    assert updated.json()["channels"] == ["email", "sms"]
    assert updated.json()["language"] == "es"
    bad = _put(client, {"channels": ["fax"], "language": "xx"})
    assert bad.status_code == 400
    assert set(bad.json()["fields"]) == {"channels", "language"}
    assert preference_for(patient.pk).language == "es"  # nothing written by the bad request
    staff = APIClient()
    csrf_login(staff, scheduler.username)
    assert staff.get("/api/v1/notifications/preferences/").status_code == 403
