"""Notifications fixtures: the local fake Twilio and fake SMTP (tests/fakes/) with the settings pointed at them, a
clinic in Europe/Lisbon with a doctor, and a patient with a portal login, a phone and an email."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine

from tests.factories import PatientFactory, UserFactory
from tests.factories.scheduling import AppointmentTypeFactory, ScheduleFactory
from tests.fakes.smtp_server import FakeSmtp
from tests.fakes.twilio_server import FakeTwilio

SID = "AC" + "1" * 32
TOKEN = "fake-auth-token"
FROM = "+15005550006"
PUBLIC = "http://testserver"
# Monday 2031-03-03 08:00 in Lisbon (UTC+0 in winter).
NOW = dt.datetime(2031, 3, 3, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio(account_sid=SID, auth_token=TOKEN).start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def fake_smtp() -> Iterator[FakeSmtp]:
    smtp = FakeSmtp().start()
    try:
        yield smtp
    finally:
        smtp.stop()


@pytest.fixture
def providers(settings: Any, fake_twilio: FakeTwilio, fake_smtp: FakeSmtp) -> tuple[FakeTwilio, FakeSmtp]:
    settings.TWILIO_ACCOUNT_SID = SID
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.TWILIO_FROM_NUMBER = FROM
    settings.TWILIO_API_BASE = fake_twilio.base_url
    settings.TWILIO_TIMEOUT_SECONDS = 2.0
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = fake_smtp.host
    settings.EMAIL_PORT = fake_smtp.port
    settings.NOTIFICATIONS_PUBLIC_BASE_URL = PUBLIC
    settings.NOTIFICATIONS_RETRY_BACKOFF_SECONDS = [30, 120]
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 3
    settings.NOTIFICATIONS_FALLBACK_WITHIN_SECONDS = 900
    return fake_twilio, fake_smtp


@pytest.fixture
def frozen_now() -> Iterator[Any]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def patient_user(organization: Any) -> Any:
    return UserFactory(username="pat-notify", roles=["patient"], organization=organization)


@pytest.fixture
def patient(patient_user: Any) -> Any:
    return PatientFactory(user=patient_user, phone="+15551230001", email="pat@example.test", given_name="Ana")


@pytest.fixture
def scheduler(organization: Any, location: Any) -> Any:
    return UserFactory(username="sched-notify", roles=["scheduler"], organization=organization, locations=[location])


@pytest.fixture
def doctor_schedule(doctor: Any) -> Any:
    return ScheduleFactory(practitioner=doctor)


@pytest.fixture
def visit_type(db: Any) -> Any:
    return AppointmentTypeFactory(code="checkup", name="Check-up", modality="in-person")


@pytest.fixture(autouse=True)
def default_templates(db: Any) -> None:
    """The wording seeded by migration 0002: transactional tests flush tables, data migrations included."""
    import importlib

    from notifications.models import MessageTemplate

    seeded = importlib.import_module("notifications.migrations.0002_default_templates")
    for kind, channel, language, subject, body in seeded.TEMPLATES:
        MessageTemplate.objects.update_or_create(
            kind=kind, channel=channel, language=language, defaults={"subject": subject, "body": body}
        )
