"""Reminder plans: the right messages at the right times (time frozen), quiet hours in the patient's zone,
re-planned on reschedule, withdrawn on cancel."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from notifications.models import OutboundMessage
from notifications.services.messages import preference_for
from scheduling.models import Appointment, ReminderPlan
from scheduling.reminders import reminders_plan, reminders_withdraw
from scheduling.services.booking import appointment_book, appointment_cancel, appointment_reschedule
from tests.factories.scheduling import AppointmentTypeFactory

pytestmark = pytest.mark.django_db


def _book(actor: Any, type_: Any, patient: Any, doctor: Any, start: dt.datetime) -> int:
    return appointment_book(
        actor=actor, appointment_type_id=type_.pk, patient_id=patient.pk, start=start, practitioner_id=doctor.pk
    ).id


def _reminders(appointment_id: int, state: str = "queued") -> dict[str, dt.datetime]:
    return dict(
        OutboundMessage.objects.filter(
            source_type="appointment", source_id=str(appointment_id), state=state
        ).values_list("source_key", "due_at")
    )


@pytest.fixture
def in_person(db: Any) -> Any:
    return AppointmentTypeFactory(code="checkup", name="Check-up", modality="in-person")


def test_plan_queues_24h_and_2h_reminders(scheduler, doctor, doctor_schedule, patient, in_person, frozen_now):  # type: ignore[no-untyped-def]
    start = dt.datetime(2031, 3, 5, 14, 0, tzinfo=dt.UTC)  # Wednesday 14:00 Lisbon
    appointment_id = _book(scheduler, in_person, patient, doctor, start)
    assert _reminders(appointment_id) == {
        "reminder:1440": start - dt.timedelta(hours=24),
        "reminder:120": start - dt.timedelta(hours=2),
    }
    sms = OutboundMessage.objects.get(source_key="reminder:120")
    assert sms.channel == "sms"
    assert sms.patient_id == patient.pk
    assert sms.kind == "reminder"


def test_video_type_adds_checkin_message_15_minutes_before(
    scheduler, doctor, doctor_schedule, patient, video_type, frozen_now
):  # type: ignore[no-untyped-def]
    start = dt.datetime(2031, 3, 5, 14, 0, tzinfo=dt.UTC)
    appointment_id = _book(scheduler, video_type, patient, doctor, start)
    reminders = _reminders(appointment_id)
    assert reminders["reminder:video"] == start - dt.timedelta(minutes=15)
    assert OutboundMessage.objects.get(source_key="reminder:video").template_key == "video_checkin"


def test_plan_per_type_offsets(scheduler, doctor, doctor_schedule, patient, in_person, frozen_now):  # type: ignore[no-untyped-def]
    ReminderPlan.objects.create(appointment_type=in_person, offsets_minutes=[2880, 60])
    start = dt.datetime(2031, 3, 6, 14, 0, tzinfo=dt.UTC)
    appointment_id = _book(scheduler, in_person, patient, doctor, start)
    assert set(_reminders(appointment_id)) == {"reminder:2880", "reminder:60"}


def test_quiet_hours_move_reminder_earlier_in_patient_zone(
    scheduler, doctor, doctor_schedule, patient, in_person, frozen_now
):  # type: ignore[no-untyped-def]
    # 09:00 Lisbon: the 2 h reminder at 07:00 is in quiet hours (21:00-08:00) -> 20:59 the evening before.
    start = dt.datetime(2031, 3, 5, 9, 0, tzinfo=dt.UTC)
    appointment_id = _book(scheduler, in_person, patient, doctor, start)
    reminders = _reminders(appointment_id)
    assert reminders["reminder:120"] == dt.datetime(2031, 3, 4, 20, 59, tzinfo=dt.UTC)
    assert reminders["reminder:1440"] == start - dt.timedelta(hours=24)


def test_quiet_hours_follow_the_patients_own_time_zone(
    scheduler, doctor, doctor_schedule, patient, in_person, frozen_now
):  # type: ignore[no-untyped-def]
    preference = preference_for(patient.pk)
    preference.time_zone = "Asia/Tokyo"  # UTC+9
    preference.save()
    # Starts 16:00 UTC = 01:00 Thursday in Tokyo. 24 h before is 01:00 Wednesday Tokyo (quiet) -> 20:59 Tuesday Tokyo
    # = 11:59 UTC; 2 h before is 23:00 Wednesday Tokyo (quiet) -> 20:59 Wednesday Tokyo = 11:59 UTC.
    start = dt.datetime(2031, 3, 5, 16, 0, tzinfo=dt.UTC)
    appointment_id = _book(scheduler, in_person, patient, doctor, start)
    reminders = _reminders(appointment_id)
    assert reminders["reminder:1440"] == dt.datetime(2031, 3, 4, 11, 59, tzinfo=dt.UTC)
    assert reminders["reminder:120"] == dt.datetime(2031, 3, 5, 11, 59, tzinfo=dt.UTC)


def test_reminders_already_past_collapse_into_one_sent_now(
    scheduler, doctor, doctor_schedule, patient, in_person, frozen_now
):  # type: ignore[no-untyped-def]
    # Booked at 08:00 for 09:30 today: both the 24 h and the 2 h reminder are past -> one message, due now.
    start = dt.datetime(2031, 3, 3, 9, 30, tzinfo=dt.UTC)
    appointment_id = _book(scheduler, in_person, patient, doctor, start)
    reminders = _reminders(appointment_id)
    assert list(reminders) == ["reminder:120"]
    assert abs(reminders["reminder:120"] - dt.datetime(2031, 3, 3, 8, 0, tzinfo=dt.UTC)) < dt.timedelta(seconds=30)


def test_reschedule_replans_and_cancel_withdraws(scheduler, doctor, doctor_schedule, patient, in_person, frozen_now):  # type: ignore[no-untyped-def]
    start = dt.datetime(2031, 3, 5, 14, 0, tzinfo=dt.UTC)
    appointment_id = _book(scheduler, in_person, patient, doctor, start)
    new_start = dt.datetime(2031, 3, 6, 15, 0, tzinfo=dt.UTC)
    appointment_reschedule(
        actor=scheduler, appointment_id=appointment_id, expected_version=None, start=new_start, reason="doctor late"
    )
    assert _reminders(appointment_id) == {
        "reminder:1440": new_start - dt.timedelta(hours=24),
        "reminder:120": new_start - dt.timedelta(hours=2),
    }
    assert len(_reminders(appointment_id, "withdrawn")) == 2
    appointment_cancel(actor=scheduler, appointment_id=appointment_id, reason="patient called")
    assert _reminders(appointment_id) == {}
    assert OutboundMessage.objects.filter(source_id=str(appointment_id), state="withdrawn").count() == 4


def test_planning_again_writes_nothing_new(scheduler, doctor, doctor_schedule, patient, in_person, frozen_now):  # type: ignore[no-untyped-def]
    start = dt.datetime(2031, 3, 5, 14, 0, tzinfo=dt.UTC)
    appointment_id = _book(scheduler, in_person, patient, doctor, start)
    before = set(OutboundMessage.objects.filter(source_id=str(appointment_id)).values_list("id", flat=True))
    assert len(before) == 2
    assert reminders_plan(appointment=Appointment.objects.get(pk=appointment_id)) == 2  # the plan has two ...
    after = set(OutboundMessage.objects.filter(source_id=str(appointment_id)).values_list("id", flat=True))
    assert after == before  # ... and the live ones are kept: the database skipped both inserts


def test_patient_without_a_usable_channel_gets_visible_undeliverable_reminders(
    scheduler, doctor, doctor_schedule, patient, in_person, frozen_now
):  # type: ignore[no-untyped-def]
    type(patient).objects.filter(pk=patient.pk).update(phone="", email="")
    appointment_id = _book(scheduler, in_person, patient, doctor, dt.datetime(2031, 3, 5, 14, 0, tzinfo=dt.UTC))
    rows = OutboundMessage.objects.filter(source_id=str(appointment_id))
    assert sorted(rows.values_list("state", "last_error_code", "recipient")) == [
        ("undeliverable", "no_channel", ""),
        ("undeliverable", "no_channel", ""),
    ]


def test_reminder_planning_costs_a_fixed_number_of_queries(
    scheduler, doctor, doctor_schedule, patient, video_type, frozen_now, django_assert_max_num_queries
):  # type: ignore[no-untyped-def]
    appointment_id = _book(scheduler, video_type, patient, doctor, dt.datetime(2031, 3, 5, 14, 0, tzinfo=dt.UTC))
    appointment = Appointment.objects.get(pk=appointment_id)
    assert reminders_withdraw(appointment_id=appointment_id) == 3
    # Booking's hot path: preference, contact, location, plan, practitioner, patient name, one INSERT for all three.
    with django_assert_max_num_queries(7):
        assert reminders_plan(appointment=appointment) == 3
    with django_assert_max_num_queries(1):
        assert reminders_withdraw(appointment_id=appointment_id) == 3


def test_backfill_plans_appointments_booked_without_reminders_and_never_duplicates(
    scheduler, doctor, doctor_schedule, patient, in_person, frozen_now
):  # type: ignore[no-untyped-def]
    start = dt.datetime(2031, 3, 5, 14, 0, tzinfo=dt.UTC)
    older = _book(scheduler, in_person, patient, doctor, start)
    newer = _book(scheduler, in_person, patient, doctor, start + dt.timedelta(days=1))
    # As if booked before reminders existed: the first has none; the second's 24 h reminder has gone out already.
    OutboundMessage.objects.filter(source_id=str(older)).delete()
    OutboundMessage.objects.filter(source_id=str(newer), source_key="reminder:1440").update(
        state="sent", provider_message_id="SM-earlier", sent_at=timezone.now()
    )
    cancelled = _book(scheduler, in_person, patient, doctor, start + dt.timedelta(days=2))
    appointment_cancel(actor=scheduler, appointment_id=cancelled, reason="patient called")

    call_command("reminders_backfill", stdout=io.StringIO())
    call_command("reminders_backfill", stdout=io.StringIO())  # again: nothing more

    assert _reminders(older) == {
        "reminder:1440": start - dt.timedelta(hours=24),
        "reminder:120": start - dt.timedelta(hours=2),
    }
    rows = OutboundMessage.objects.filter(source_id=str(newer))
    assert sorted(rows.values_list("source_key", "state")) == [("reminder:120", "queued"), ("reminder:1440", "sent")]
    assert _reminders(cancelled) == {}
