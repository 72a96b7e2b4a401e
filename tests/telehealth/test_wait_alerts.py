"""Wait alerts (telehealth.services.alerts): the practitioner hears once per visit when a patient has waited beyond
TELEHEALTH_WAIT_ALERT_MINUTES past the later of check-in and the appointment time, by SMS to their staff number (or
email), with no patient name, and as a realtime event on their user stream. Time frozen; the SMS and email really go
through the fake Twilio and SMTP servers."""

from __future__ import annotations

import datetime as dt
import importlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from core.models import StreamEvent
from notifications.models import MessageTemplate, OutboundMessage, StaffContact
from notifications.services import messages_dispatch_due
from telehealth import services
from telehealth.services.alerts import visits_alert_long_waits
from tests.fakes.smtp_server import FakeSmtp
from tests.fakes.twilio_server import FakeTwilio
from tests.telehealth.conftest import NINE

pytestmark = pytest.mark.django_db(transaction=True)

SID = "AC" + "4" * 32
TOKEN = "wait-alert-token"
DOCTOR_PHONE = "+15557770001"
ANSWERS = {"reason": "Follow-up", "private": False}


@pytest.fixture(autouse=True)
def templates(db: Any) -> None:
    """Transactional tests flush the rows the data migrations seeded."""
    for name in ("0002_default_templates", "0004_staff_wait_alert_templates"):
        for kind, channel, language, subject, body in importlib.import_module(
            f"notifications.migrations.{name}"
        ).TEMPLATES:
            MessageTemplate.objects.update_or_create(
                kind=kind, channel=channel, language=language, defaults={"subject": subject, "body": body}
            )


@pytest.fixture
def fakes(settings: Any) -> Iterator[tuple[FakeTwilio, FakeSmtp]]:
    twilio = FakeTwilio(account_sid=SID, auth_token=TOKEN).start()
    smtp = FakeSmtp().start()
    settings.TWILIO_ACCOUNT_SID = SID
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    settings.TWILIO_API_BASE = twilio.base_url
    settings.TWILIO_TIMEOUT_SECONDS = 2.0
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = smtp.host
    settings.EMAIL_PORT = smtp.port
    settings.NOTIFICATIONS_PUBLIC_BASE_URL = "http://clinic.test"
    settings.TELEHEALTH_WAIT_ALERT_MINUTES = 15
    try:
        yield twilio, smtp
    finally:
        twilio.stop()
        smtp.stop()


@pytest.fixture
def waiting(appointment: Any, patient_user: Any) -> Any:
    """The patient checked in at 08:30 for their 09:00 video visit and is waiting."""
    return services.visit_check_in(actor=patient_user, appointment_id=appointment.id, consent=True, answers=ANSWERS)


def alerts() -> list[OutboundMessage]:
    return list(OutboundMessage.objects.filter(kind="staff_alert").order_by("created_at"))


def test_doctor_gets_one_sms_without_the_patient_name_once_the_wait_passes_the_threshold(
    fakes: Any, frozen_now: Any, waiting: Any, doctor: Any, patient: Any
) -> None:
    twilio, smtp = fakes
    StaffContact.objects.create(user=doctor, phone=DOCTOR_PHONE)
    frozen_now.move_to(NINE + dt.timedelta(minutes=16))
    assert visits_alert_long_waits() == 1
    assert visits_alert_long_waits() == 0  # once per visit, whatever the beat does
    assert messages_dispatch_due() == 1
    [sms] = twilio.messages
    assert sms["to"] == DOCTOR_PHONE
    assert (
        sms["body"] == "A patient has waited 16 minutes in your virtual waiting room. http://clinic.test/clinic/virtual"
    )
    for name in (patient.given_name, patient.family_name):
        assert name not in sms["body"]
    assert smtp.messages == []
    [message] = alerts()
    assert (message.user_id, message.state, message.channel) == (doctor.pk, "sent", "sms")
    assert (message.source_type, message.source_id, message.source_key) == ("visit", str(waiting.id), "wait_alert")
    frozen_now.move_to(NINE + dt.timedelta(minutes=40))
    assert visits_alert_long_waits() == 0
    assert messages_dispatch_due() == 0
    assert len(twilio.messages) == 1


def test_the_alert_is_pushed_to_the_doctors_user_stream_once(
    fakes: Any, frozen_now: Any, waiting: Any, doctor: Any
) -> None:
    frozen_now.move_to(NINE + dt.timedelta(minutes=16))
    visits_alert_long_waits()
    visits_alert_long_waits()
    [event] = StreamEvent.objects.filter(stream=f"user:{doctor.pk}", type="notifications.staff_alert")
    assert event.data["kind"] == "staff_wait_alert"
    assert event.data["visit_id"] == str(waiting.id)
    assert event.data["minutes"] == 16
    assert event.data["message_id"] == str(alerts()[0].id)


def test_wait_counts_from_the_appointment_time_for_an_early_check_in(
    fakes: Any, frozen_now: Any, waiting: Any, doctor: Any
) -> None:
    # Checked in at 08:30: at 09:10 they have been here 40 minutes but kept waiting by the doctor only 10.
    frozen_now.move_to(NINE + dt.timedelta(minutes=10))
    assert visits_alert_long_waits() == 0
    frozen_now.move_to(NINE + dt.timedelta(minutes=15))
    assert visits_alert_long_waits() == 0  # beyond the threshold, not at it
    frozen_now.move_to(NINE + dt.timedelta(minutes=15, seconds=1))
    assert visits_alert_long_waits() == 1
    assert alerts()[0].context["minutes"] == 15


def test_a_late_check_in_counts_from_the_check_in(
    fakes: Any, frozen_now: Any, appointment: Any, patient_user: Any
) -> None:
    frozen_now.move_to(NINE + dt.timedelta(minutes=10))
    services.visit_check_in(actor=patient_user, appointment_id=appointment.id, consent=True, answers=ANSWERS)
    frozen_now.move_to(NINE + dt.timedelta(minutes=24))
    assert visits_alert_long_waits() == 0
    frozen_now.move_to(NINE + dt.timedelta(minutes=26))
    assert visits_alert_long_waits() == 1


def test_doctor_without_a_staff_number_is_alerted_by_email(
    fakes: Any, frozen_now: Any, waiting: Any, doctor: Any, patient: Any
) -> None:
    twilio, smtp = fakes
    doctor.email = "dr.test@clinic.test"
    doctor.save(update_fields=["email"])
    frozen_now.move_to(NINE + dt.timedelta(minutes=17))
    assert visits_alert_long_waits() == 1
    assert messages_dispatch_due() == 1
    [email] = smtp.messages
    assert email["rcpt_tos"] == ["dr.test@clinic.test"]
    assert email["subject"] == "A patient has waited 17 minutes"
    assert "appointment at 09:00" in email["text"]
    assert patient.given_name not in email["text"]
    assert patient.family_name not in email["text"]
    assert twilio.messages == []


def test_doctor_with_no_contact_gets_a_visible_undeliverable_alert_and_the_push(
    fakes: Any, frozen_now: Any, waiting: Any, doctor: Any
) -> None:
    frozen_now.move_to(NINE + dt.timedelta(minutes=16))
    assert visits_alert_long_waits() == 1
    [message] = alerts()
    assert (message.state, message.last_error_code) == ("undeliverable", "no_channel")
    assert StreamEvent.objects.filter(stream=f"user:{doctor.pk}", type="notifications.staff_alert").count() == 1


def test_an_alert_not_yet_sent_is_withdrawn_when_the_patient_is_admitted_first(
    fakes: Any, frozen_now: Any, waiting: Any, doctor: Any
) -> None:
    twilio, _smtp = fakes
    StaffContact.objects.create(user=doctor, phone=DOCTOR_PHONE)
    frozen_now.move_to(NINE + dt.timedelta(minutes=16))
    assert visits_alert_long_waits() == 1
    services.visit_admit(actor=doctor, visit_id=str(waiting.id))
    assert messages_dispatch_due() == 0
    assert alerts()[0].state == "withdrawn"
    assert twilio.messages == []
    assert visits_alert_long_waits() == 0  # in the visit now: no new alert either


def test_patients_in_a_visit_or_gone_are_never_alerted_and_zero_turns_alerts_off(
    fakes: Any, frozen_now: Any, waiting: Any, doctor: Any, settings: Any
) -> None:
    frozen_now.move_to(NINE + dt.timedelta(minutes=30))
    settings.TELEHEALTH_WAIT_ALERT_MINUTES = 0
    assert visits_alert_long_waits() == 0
    settings.TELEHEALTH_WAIT_ALERT_MINUTES = 15
    services.visit_leave(actor=waiting_user(waiting), visit_id=str(waiting.id))
    assert visits_alert_long_waits() == 0
    assert alerts() == []


def waiting_user(detail: Any) -> Any:
    from telehealth.models import Visit

    return Visit.objects.select_related("patient_user").get(pk=detail.id).patient_user


def test_two_beats_racing_raise_exactly_one_alert(fakes: Any, frozen_now: Any, waiting: Any, doctor: Any) -> None:
    frozen_now.move_to(NINE + dt.timedelta(minutes=16))
    barrier = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(visits_alert_long_waits())
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert sorted(results) == [0, 1]
    assert len(alerts()) == 1
    assert StreamEvent.objects.filter(stream=f"user:{doctor.pk}", type="notifications.staff_alert").count() == 1
