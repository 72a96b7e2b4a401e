"""The visit's life through the real services: check-in, admit, transfer, end, leave, and the EHR/scheduling side
effects read back through their selectors."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from core.models import StreamEvent
from ehr.selectors import encounter_list
from scheduling.selectors import appointment_get
from telehealth import services
from telehealth.errors import (
    AppointmentNotFound,
    CheckInClosed,
    ConsentRequired,
    Forbidden,
    InvalidInput,
    NotVideoAppointment,
    PractitionerBusy,
    VisitNotFound,
    VisitNotWaiting,
)
from telehealth.models import Visit
from tests.telehealth.conftest import NINE, book

pytestmark = pytest.mark.django_db

ANSWERS = {"reason": "Cough for a week", "private": True}


def check_in(user: Any, appointment: Any, **overrides: Any) -> Any:
    kwargs: dict[str, Any] = {"consent": True, "answers": ANSWERS} | overrides
    return services.visit_check_in(actor=user, appointment_id=appointment.id, **kwargs)


def test_check_in_creates_a_waiting_visit_and_marks_the_appointment_arrived(appointment, patient_user, doctor) -> None:
    detail = check_in(patient_user, appointment)
    assert detail.status == "waiting"
    assert detail.role == "patient"
    assert detail.practitioner.id == doctor.pk
    assert detail.intake is None  # the patient's view carries no staff fields
    assert appointment_get(appointment_id=appointment.id).status == "arrived"
    visit = Visit.objects.get(pk=detail.id)
    assert visit.intake["answers"][0] == {
        "id": "reason",
        "question": visit.intake["answers"][0]["question"],
        "answer": "Cough for a week",
    }
    assert StreamEvent.objects.filter(stream=f"user:{patient_user.pk}", type="waiting.changed").exists()
    assert StreamEvent.objects.filter(stream=f"group:telehealth.queue.{doctor.pk}", type="queue.changed").exists()


def test_check_in_twice_updates_the_answers_of_the_same_visit(appointment, patient_user) -> None:
    first = check_in(patient_user, appointment)
    second = check_in(patient_user, appointment, answers={"reason": "Fever", "private": False})
    assert first.id == second.id
    assert Visit.objects.count() == 1
    assert Visit.objects.get().intake["answers"][0]["answer"] == "Fever"


def test_check_in_requires_consent_and_valid_answers_and_writes_nothing(appointment, patient_user) -> None:
    with pytest.raises(ConsentRequired):
        check_in(patient_user, appointment, consent=False)
    with pytest.raises(InvalidInput) as bad:
        check_in(patient_user, appointment, answers={"reason": "", "private": "yes", "shoe_size": 9})
    assert set(bad.value.fields) == {"answers.reason", "answers.private", "answers.shoe_size"}
    assert not Visit.objects.exists()
    assert appointment_get(appointment_id=appointment.id).status == "booked"


def test_only_the_appointments_own_patient_checks_in(appointment, patient2_user, doctor) -> None:
    with pytest.raises(AppointmentNotFound):
        check_in(patient2_user, appointment)
    with pytest.raises(AppointmentNotFound):
        check_in(doctor, appointment)
    assert not Visit.objects.exists()


def test_check_in_window_opens_an_hour_before_and_closes_at_the_noshow_time(
    frozen_now, scheduler, patient, patient_user, doctor, doctor_schedule, video_type
) -> None:
    late = book(scheduler, patient, doctor, video_type, NINE + dt.timedelta(hours=2))  # 11:00, opens 10:00
    with pytest.raises(CheckInClosed):
        check_in(patient_user, late)
    frozen_now.move_to(NINE + dt.timedelta(hours=1))
    assert check_in(patient_user, late).status == "waiting"
    frozen_now.move_to(NINE + dt.timedelta(hours=2, minutes=15))  # the type's no-show time (15 min)
    services.visit_leave(actor=patient_user, visit_id=Visit.objects.get().pk)
    with pytest.raises(CheckInClosed):
        check_in(patient_user, late)


def test_in_person_appointments_have_no_waiting_room(
    frozen_now, scheduler, patient, patient_user, doctor, doctor_schedule, clinic_type
) -> None:
    appointment = book(scheduler, patient, doctor, clinic_type)
    with pytest.raises(NotVideoAppointment):
        check_in(patient_user, appointment)


def test_admit_and_end_start_then_close_the_encounter_and_fulfil_the_appointment(
    frozen_now, appointment, patient_user, doctor
) -> None:
    visit_id = check_in(patient_user, appointment).id
    admitted = services.visit_admit(actor=doctor, visit_id=visit_id)
    assert admitted.status == "in-progress"
    assert admitted.role == "practitioner"
    assert [a.answer for a in admitted.intake or []] == ["Cough for a week", True]
    assert appointment_get(appointment_id=appointment.id).visit_started_at is not None
    frozen_now.shift(dt.timedelta(minutes=12, seconds=30))
    ended = services.visit_end(actor=doctor, visit_id=visit_id, summary="Rest and fluids.", audio_only=True)
    assert (ended.status, ended.duration_seconds, ended.summary) == ("finished", 750, "Rest and fluids.")
    assert appointment_get(appointment_id=appointment.id).status == "fulfilled"
    (encounter,) = [
        e for e in encounter_list(actor=doctor, patient_id=appointment.patient_id) if e.id == appointment.encounter_id
    ]
    assert encounter.status == "finished"
    assert encounter.duration_seconds == 750
    assert encounter.modality == "virtual"


def test_only_the_visits_practitioner_ends_it(appointment, patient_user, doctor, doctor2) -> None:
    visit_id = check_in(patient_user, appointment).id
    services.visit_admit(actor=doctor, visit_id=visit_id)
    with pytest.raises(Forbidden):
        services.visit_end(actor=doctor2, visit_id=visit_id)
    with pytest.raises(Forbidden):
        services.visit_end(actor=patient_user, visit_id=visit_id)
    with pytest.raises(VisitNotFound):
        services.visit_end(actor=doctor, visit_id="not-a-visit")
    assert Visit.objects.get().status == "in-progress"


def test_a_colleague_takes_a_pool_patient_and_becomes_their_practitioner(
    appointment, patient_user, doctor, doctor2
) -> None:
    visit_id = check_in(patient_user, appointment).id
    taken = services.visit_admit(actor=doctor2, visit_id=visit_id)
    assert taken.practitioner.id == doctor2.pk
    assert Visit.objects.get().practitioner_id == doctor2.pk


def test_a_practitioner_elsewhere_cannot_admit(appointment, patient_user, outsider_doctor) -> None:
    visit_id = check_in(patient_user, appointment).id
    with pytest.raises(VisitNotFound):
        services.visit_admit(actor=outsider_doctor, visit_id=visit_id)
    assert Visit.objects.get().status == "waiting"


def test_a_practitioner_in_a_visit_cannot_admit_another(
    appointment, appointment2, patient_user, patient2_user, doctor
) -> None:
    first = check_in(patient_user, appointment).id
    second = check_in(patient2_user, appointment2).id
    services.visit_admit(actor=doctor, visit_id=first)
    with pytest.raises(PractitionerBusy):
        services.visit_admit(actor=doctor, visit_id=second)
    assert Visit.objects.get(pk=second).status == "waiting"


def test_transfer_moves_a_waiting_patient_to_a_colleagues_queue(
    appointment, patient_user, doctor, doctor2, nurse, outsider_doctor
) -> None:
    visit_id = check_in(patient_user, appointment).id
    with pytest.raises(InvalidInput):
        services.visit_transfer(actor=doctor, visit_id=visit_id, practitioner_id=outsider_doctor.pk)
    with pytest.raises(InvalidInput):
        services.visit_transfer(actor=doctor, visit_id=visit_id, practitioner_id=nurse.pk)
    moved = services.visit_transfer(actor=nurse, visit_id=visit_id, practitioner_id=doctor2.pk)
    assert moved.practitioner.id == doctor2.pk
    assert StreamEvent.objects.filter(stream=f"group:telehealth.queue.{doctor.pk}").exists()
    assert StreamEvent.objects.filter(stream=f"group:telehealth.queue.{doctor2.pk}").exists()
    services.visit_admit(actor=doctor2, visit_id=visit_id)
    with pytest.raises(VisitNotWaiting):
        services.visit_transfer(actor=doctor2, visit_id=visit_id, practitioner_id=doctor.pk)


def test_leaving_and_checking_in_again_keeps_the_place_by_appointment_time(
    appointment, appointment2, patient_user, patient2_user, doctor
) -> None:
    from telehealth.selectors import visit_waiting_info

    first = check_in(patient_user, appointment).id
    second = check_in(patient2_user, appointment2).id
    services.visit_leave(actor=patient_user, visit_id=first)
    assert Visit.objects.get(pk=first).status == "left"
    assert visit_waiting_info(user=patient2_user, visit_id=second).position == 1
    check_in(patient_user, appointment)
    assert visit_waiting_info(user=patient_user, visit_id=first).position == 1
    assert visit_waiting_info(user=patient2_user, visit_id=second).position == 2


def test_cancelling_a_waiting_patients_appointment_takes_them_out_of_the_queue(
    appointment, appointment2, patient_user, patient2_user, scheduler, doctor
) -> None:
    from scheduling.services.booking import appointment_cancel
    from telehealth.selectors import visit_waiting_info

    first = check_in(patient_user, appointment)
    second = check_in(patient2_user, appointment2)
    assert visit_waiting_info(user=patient2_user, visit_id=second.id).position == 2
    queue_events = StreamEvent.objects.filter(stream=f"group:telehealth.queue.{doctor.pk}", type="queue.changed")
    before = queue_events.count()

    appointment_cancel(actor=scheduler, appointment_id=appointment.id, reason="Patient called to cancel")

    assert Visit.objects.get(pk=first.id).status == "left"
    assert visit_waiting_info(user=patient2_user, visit_id=second.id).position == 1
    assert queue_events.count() == before + 1


def test_an_in_progress_visit_is_not_touched_by_a_status_listener_call(appointment, patient_user, doctor) -> None:
    from telehealth.services.visits import visit_appointment_status_changed

    visit = check_in(patient_user, appointment)
    services.visit_admit(actor=doctor, visit_id=str(visit.id))
    visit_appointment_status_changed(appointment.id, "checked-in", "entered-in-error")
    assert Visit.objects.get(pk=visit.id).status == "in-progress"
