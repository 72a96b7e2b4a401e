"""staff_alert_send: one alert on the staff member's channel (SMS to their staff number, else email, else a visible
undeliverable row), a realtime event on their user stream, idempotent on its source; the wording has no patient
name. Sent for real through the fake Twilio and SMTP."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from django.db import transaction

from core.models import StreamEvent
from notifications.errors import InvalidInput
from notifications.models import MessageTemplate, OutboundMessage, StaffContact
from notifications.services import message_resend, messages_dispatch_due, staff_alert_send

pytestmark = pytest.mark.django_db(transaction=True)

DOCTOR_PHONE = "+15557770002"
CONTEXT = {"visit_id": "v-1", "minutes": 20, "time": "09:00", "clinic_url": "http://testserver/clinic/virtual"}


@pytest.fixture(autouse=True)
def alert_templates(db: Any) -> None:
    seeded = importlib.import_module("notifications.migrations.0004_staff_wait_alert_templates")
    for kind, channel, language, subject, body in seeded.TEMPLATES:
        MessageTemplate.objects.update_or_create(
            kind=kind, channel=channel, language=language, defaults={"subject": subject, "body": body}
        )


def _alert(user: Any, source: tuple[str, str, str] | None = ("shift", "s-1", "alert")) -> Any:
    with transaction.atomic():
        return staff_alert_send(user_id=user.pk, kind="staff_wait_alert", context=CONTEXT, source=source)


def _pushes(user: Any) -> list[StreamEvent]:
    return list(StreamEvent.objects.filter(stream=f"user:{user.pk}", type="notifications.staff_alert"))


def test_staff_number_gets_the_sms_and_the_console_gets_the_event(providers: Any, doctor: Any, frozen_now: Any) -> None:
    twilio, smtp = providers
    StaffContact.objects.create(user=doctor, phone=DOCTOR_PHONE)
    ref = _alert(doctor)
    assert (ref.channel, ref.state, ref.created) == ("sms", "queued", True)
    assert messages_dispatch_due() == 1
    [sms] = twilio.messages
    assert sms["to"] == DOCTOR_PHONE
    assert (
        sms["body"] == "A patient has waited 20 minutes in your virtual waiting room. http://testserver/clinic/virtual"
    )
    assert smtp.messages == []
    [event] = _pushes(doctor)
    assert event.data == {**CONTEXT, "kind": "staff_wait_alert", "message_id": ref.id}


def test_same_source_twice_is_one_message_and_one_event(providers: Any, doctor: Any, frozen_now: Any) -> None:
    first = _alert(doctor)
    second = _alert(doctor)
    assert second.id == first.id
    assert second.created is False
    assert OutboundMessage.objects.filter(kind="staff_alert").count() == 1
    assert len(_pushes(doctor)) == 1


def test_without_a_staff_number_or_with_sms_alerts_off_the_alert_is_an_email(
    providers: Any, doctor: Any, frozen_now: Any, settings: Any
) -> None:
    twilio, smtp = providers
    doctor.email = "dr@clinic.test"
    doctor.save(update_fields=["email"])
    assert _alert(doctor, ("shift", "a", "alert")).channel == "email"
    StaffContact.objects.create(user=doctor, phone=DOCTOR_PHONE, sms_alerts=False)
    assert _alert(doctor, ("shift", "b", "alert")).channel == "email"
    StaffContact.objects.filter(user=doctor).update(sms_alerts=True)
    settings.NOTIFICATIONS_SMS_ENABLED = False
    assert _alert(doctor, ("shift", "c", "alert")).channel == "email"
    assert messages_dispatch_due() == 3
    assert [m["rcpt_tos"] for m in smtp.messages] == [["dr@clinic.test"]] * 3
    assert {m["subject"] for m in smtp.messages} == {"A patient has waited 20 minutes"}
    assert twilio.messages == []


def test_no_channel_at_all_is_a_visible_undeliverable_row_but_still_pushed(
    providers: Any, doctor: Any, frozen_now: Any
) -> None:
    ref = _alert(doctor)  # the factory's doctor has no email and no staff number
    assert (ref.state, OutboundMessage.objects.get(pk=ref.id).last_error_code) == ("undeliverable", "no_channel")
    assert len(_pushes(doctor)) == 1


def test_unknown_user_is_refused_and_nothing_is_written(providers: Any, frozen_now: Any) -> None:
    with pytest.raises(InvalidInput):
        staff_alert_send(user_id=987654, kind="staff_wait_alert", context=CONTEXT)
    assert OutboundMessage.objects.count() == 0


def test_a_failed_staff_sms_is_resent_to_the_same_number(
    providers: Any, doctor: Any, scheduler: Any, frozen_now: Any
) -> None:
    twilio, _smtp = providers
    StaffContact.objects.create(user=doctor, phone=DOCTOR_PHONE)
    twilio.block(DOCTOR_PHONE)
    ref = _alert(doctor)
    messages_dispatch_due()
    assert OutboundMessage.objects.get(pk=ref.id).state == "failed"
    twilio.unblock(DOCTOR_PHONE)
    resent = message_resend(actor=scheduler, message_id=ref.id)
    assert messages_dispatch_due() == 1
    [sms] = twilio.messages
    assert sms["to"] == DOCTOR_PHONE
    assert OutboundMessage.objects.get(pk=resent.id).user_id == doctor.pk
