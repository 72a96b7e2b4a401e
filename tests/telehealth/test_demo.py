"""The telehealth demo: whenever it runs (even at night), patient and patient2 can check in to a video visit
with the demo doctor right away, and running it again books nothing more."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.management import call_command

from ehr.models import User
from ehr.services.demo import demo_seed
from scheduling.services.demo import demo_seed_scheduling
from telehealth import services
from telehealth.selectors import checkin_info_for, clinic_queue_for
from telehealth.services.demo import demo_seed_telehealth

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("hour", [3, 14])  # 03:00 UTC is outside the demo doctors' hours in both clinics
def test_demo_patients_can_check_in_now_and_the_queue_shows_both(hour: int) -> None:
    with time_machine.travel(dt.datetime(2031, 5, 6, hour, 7, tzinfo=dt.UTC), tick=False):
        demo_seed(password="demo-password-for-tests")
        demo_seed_scheduling()
        first = demo_seed_telehealth()
        assert first.kept + first.booked == 2  # the scheduling demo may already have booked one of them
        call_command("seed_demo_telehealth")
        again = demo_seed_telehealth()
        assert again.booked == 0
        # The demo interpreter's link: the same single-use invitation on every run.
        assert first.guest_url is not None
        assert again.guest_url is not None
        assert first.guest_url.startswith("/visit/join/")
        from telehealth.models import VisitInvitation

        assert VisitInvitation.objects.filter(name="Demo Interpreter").count() == 1
        doctor = User.objects.get(username="doctor")
        for username in ("patient", "patient2"):
            user = User.objects.get(username=username)
            from ehr.selectors import patient_ref_for_user
            from scheduling.selectors import appointment_list_for_patient

            ref = patient_ref_for_user(user_id=user.pk)
            assert ref is not None
            (appointment,) = [
                a
                for a in appointment_list_for_patient(patient_id=ref.id)
                if a.practitioner_id == doctor.pk
                and a.modality == "video"
                and a.status == "booked"
                and checkin_info_for(actor=user, appointment_id=a.id).can_check_in
            ]
            services.visit_check_in(
                actor=user, appointment_id=appointment.id, consent=True, answers={"reason": "Demo", "private": True}
            )
        assert len(clinic_queue_for(user=doctor).mine) == 2
