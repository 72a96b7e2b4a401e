"""The `make run` notifications demo: demo patients reachable (patient by SMS first, patient2 by email first), demo
doctors with a staff number, and a reminder of each one's upcoming appointment due now, which the dispatcher really
hands to the fake Twilio and SMTP; idempotent; refused in production."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.management import call_command
from django.db import transaction

from notifications.models import ContactPreference, OutboundMessage, StaffContact
from notifications.services import messages_dispatch_due
from notifications.services.demo import DemoRefused, demo_seed_notifications
from scheduling.services.booking import appointment_book, appointment_cancel
from tests.factories import PatientFactory, UserFactory
from tests.notifications.conftest import NOW

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo(
    frozen_now: Any,
    organization: Any,
    location: Any,
    doctor: Any,
    doctor_schedule: Any,
    visit_type: Any,
    scheduler: Any,
) -> Any:
    """``patient`` and ``patient2`` with a booking three days ahead (reminders not due yet), and ``doctor``."""
    UserFactory(username="doctor", roles=["practitioner"], organization=organization, locations=[location])
    booked = {}
    for index, username in enumerate(("patient", "patient2")):
        user = UserFactory(username=username, roles=["patient"], organization=organization)
        patient = PatientFactory(user=user, phone=f"+1555000000{index + 1}", email=f"{username}@demo.test")
        with transaction.atomic():
            booked[username] = appointment_book(
                actor=scheduler,
                appointment_type_id=visit_type.pk,
                patient_id=patient.pk,
                start=NOW + dt.timedelta(days=3, hours=2 + index),
                practitioner_id=doctor.pk,
            )
    return booked


def test_demo_reminders_due_now_reach_the_fake_sms_and_email(providers: Any, demo: Any, frozen_now: Any) -> None:
    twilio, smtp = providers
    summary = demo_seed_notifications()
    assert (summary.patients_due_now, summary.reminders_queued, summary.staff_contacts_created) == (2, 2, 1)
    assert ContactPreference.objects.get(patient__user__username="patient2").channels == ["email", "sms"]
    assert StaffContact.objects.get(user__username="doctor").phone
    assert messages_dispatch_due() == 2
    [sms] = twilio.messages
    assert sms["to"] == "+15550000001"
    assert sms["body"].startswith("Reminder:")
    [email] = smtp.messages
    assert email["rcpt_tos"] == ["patient2@demo.test"]
    keys = set(
        OutboundMessage.objects.filter(source_key__startswith="reminder:demo:").values_list("source_id", flat=True)
    )
    assert keys == {str(demo["patient"].id), str(demo["patient2"].id)}


def test_demo_is_idempotent_and_keeps_a_patients_own_channel_order(providers: Any, demo: Any, frozen_now: Any) -> None:
    first = demo_seed_notifications()
    again = demo_seed_notifications()
    assert first.reminders_queued == 2
    assert (again.reminders_queued, again.patients_due_now, again.staff_contacts_created) == (0, 2, 0)
    assert OutboundMessage.objects.filter(source_key__startswith="reminder:demo:").count() == 2
    preference = ContactPreference.objects.get(patient__user__username="patient")
    preference.channels = ["email"]
    preference.save()
    demo_seed_notifications()
    assert ContactPreference.objects.get(pk=preference.pk).channels == ["email"]


def test_demo_queues_nothing_for_a_cancelled_appointment(providers: Any, demo: Any, frozen_now: Any) -> None:
    patient_user = demo["patient"]
    from ehr.models import User

    appointment_cancel(actor=User.objects.get(username="patient"), appointment_id=patient_user.id, reason="Demo")
    summary = demo_seed_notifications()
    assert summary.reminders_queued == 1
    assert not OutboundMessage.objects.filter(source_id=str(patient_user.id), source_key__startswith="reminder:demo:")


def test_demo_command_prints_its_summary_and_refuses_production(
    providers: Any, demo: Any, frozen_now: Any, settings: Any, capsys: Any
) -> None:
    call_command("seed_demo_notifications")
    assert "2 demo patients with a reminder due now" in capsys.readouterr().out
    settings.ENVIRONMENT = "production"
    with pytest.raises(DemoRefused):
        demo_seed_notifications()
