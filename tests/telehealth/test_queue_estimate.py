"""Queue order, place and the estimated wait from the doctor's actual pace today; the grace period."""

from __future__ import annotations

import datetime as dt

import pytest

from core.models import StreamEvent
from telehealth import services
from telehealth.models import Visit
from telehealth.selectors import clinic_queue_for, estimate_wait_minutes, visit_waiting_info
from telehealth.tasks import visits_expire_grace
from tests.telehealth.conftest import NINE, book
from tests.telehealth.test_visit_flow import check_in

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("position", "pace", "elapsed", "expected"),
    [
        (1, 30.0, None, 0),  # first in line, doctor free
        (1, 30.0, 10.0, 20),  # first in line, doctor 10 min into a 30-min pace
        (3, 12.0, None, 24),  # two ahead at 12 min each
        (2, 12.0, 20.0, 12),  # the current visit overran: never negative
        (2, 12.5, 0.0, 25),
        (2, 10.2, None, 11),  # rounded up to whole minutes
    ],
)
def test_estimate_is_remaining_current_plus_pace_per_patient_ahead(position, pace, elapsed, expected) -> None:
    assert estimate_wait_minutes(position=position, pace=pace, elapsed_current=elapsed) == expected


def test_queue_order_position_and_estimate_follow_the_doctors_pace_today(
    frozen_now,
    scheduler,
    doctor,
    doctor_schedule,
    video_type,
    patient,
    patient_user,
    patient2,
    patient2_user,
    organization,
    settings,
) -> None:
    from tests.factories import PatientFactory, UserFactory

    settings.TELEHEALTH_CHECKIN_OPENS_MINUTES = 180
    third_user = UserFactory(username="pat-three", roles=["patient"], organization=organization)
    third = PatientFactory(user=third_user)
    a1 = book(scheduler, patient, doctor, video_type, NINE)
    a2 = book(scheduler, patient2, doctor, video_type, NINE + dt.timedelta(minutes=30))
    a3 = book(scheduler, third, doctor, video_type, NINE + dt.timedelta(minutes=60))
    # Checked in out of appointment order: the queue still follows appointment time.
    v3 = check_in(third_user, a3).id
    v2 = check_in(patient2_user, a2).id
    v1 = check_in(patient_user, a1).id
    assert [e.visit_id for e in clinic_queue_for(user=doctor).mine] == [v1, v2, v3]
    # No visit finished today: the pace is the appointment type's 30 minutes.
    info = visit_waiting_info(user=third_user, visit_id=v3)
    assert (info.position, info.ahead, info.estimated_wait_minutes) == (3, 2, 60)
    # The doctor sees the first patient in 10 minutes: pace today is now 10 minutes.
    services.visit_admit(actor=doctor, visit_id=v1)
    frozen_now.shift(dt.timedelta(minutes=10))
    services.visit_end(actor=doctor, visit_id=v1)
    before = StreamEvent.objects.filter(stream=f"user:{third_user.pk}", type="waiting.changed").count()
    services.visit_admit(actor=doctor, visit_id=v2)
    # The patient ahead was admitted: the third patient is told, and is now first with the doctor 0 min in.
    assert StreamEvent.objects.filter(stream=f"user:{third_user.pk}", type="waiting.changed").count() > before
    frozen_now.shift(dt.timedelta(minutes=4))
    info = visit_waiting_info(user=third_user, visit_id=v3)
    assert (info.position, info.ahead, info.estimated_wait_minutes, info.doctor_status) == (1, 0, 6, "in-visit")


def test_a_disconnected_waiting_patient_keeps_their_place_for_the_grace_period(
    frozen_now, appointment, patient_user, doctor
) -> None:
    visit_id = check_in(patient_user, appointment).id
    services.visit_presence_mark(visit_id=visit_id, user_id=patient_user.pk, present=True)
    services.visit_presence_mark(visit_id=visit_id, user_id=patient_user.pk, present=False)
    frozen_now.shift(dt.timedelta(seconds=299))
    assert visits_expire_grace() == 0
    assert Visit.objects.get().status == "waiting"
    frozen_now.shift(dt.timedelta(seconds=2))
    assert visits_expire_grace() == 1
    assert Visit.objects.get().status == "left"
    assert visits_expire_grace() == 0  # idempotent


def test_reconnecting_within_the_grace_period_keeps_the_visit(frozen_now, appointment, patient_user) -> None:
    visit_id = check_in(patient_user, appointment).id
    services.visit_presence_mark(visit_id=visit_id, user_id=patient_user.pk, present=False)
    frozen_now.shift(dt.timedelta(seconds=200))
    services.visit_presence_mark(visit_id=visit_id, user_id=patient_user.pk, present=True)
    frozen_now.shift(dt.timedelta(seconds=600))
    assert visits_expire_grace() == 0
    assert Visit.objects.get().status == "waiting"


def test_grace_never_touches_admitted_visits(frozen_now, appointment, patient_user, doctor) -> None:
    visit_id = check_in(patient_user, appointment).id
    services.visit_presence_mark(visit_id=visit_id, user_id=patient_user.pk, present=False)
    services.visit_admit(actor=doctor, visit_id=visit_id)
    frozen_now.shift(dt.timedelta(hours=1))
    assert visits_expire_grace() == 0
    assert Visit.objects.get().status == "in-progress"
