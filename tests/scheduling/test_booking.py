"""Booking services against the real PostgreSQL: atomic multi-resource booking, holds, reschedule, cancel, the
state machine, and the refusals that must write nothing."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from ehr.models import Encounter
from scheduling.errors import (
    BookingForbidden,
    BookingInPast,
    HoldExpired,
    InvalidBooking,
    InvalidTransition,
    MissingResource,
    NotFound,
    OutsideAvailability,
    SlotUnavailable,
    TooLate,
    VersionConflict,
)
from scheduling.models import Appointment, AppointmentEvent, Hold, HoldStatus, Slot, SlotStatus
from scheduling.services.booking import (
    appointment_book,
    appointment_cancel,
    appointment_reschedule,
    hold_confirm,
    hold_create,
    holds_release_expired,
)
from scheduling.services.status import appointment_status_set, appointments_mark_noshow
from tests.factories import PatientFactory, UserFactory
from tests.factories.scheduling import AppointmentTypeFactory, ScheduleFactory
from tests.scheduling.conftest import NOW

pytestmark = pytest.mark.django_db

# Tuesday 2031-03-04, 10:00 Lisbon (= UTC in winter).
TUESDAY_10 = dt.datetime(2031, 3, 4, 10, 0, tzinfo=dt.UTC)


def _counts() -> tuple[int, int, int]:
    return Appointment.objects.count(), Slot.objects.count(), AppointmentEvent.objects.count()


def test_book_creates_appointment_slots_planned_encounter_and_event(
    frozen_now, scheduler, patient, doctor, doctor_schedule, video_type
):
    ref = appointment_book(
        actor=scheduler,
        appointment_type_id=video_type.pk,
        patient_id=patient.pk,
        start=TUESDAY_10,
        practitioner_id=doctor.pk,
    )
    assert ref.status == "booked"
    assert (ref.start, ref.end) == (TUESDAY_10, TUESDAY_10 + dt.timedelta(minutes=30))
    assert [r.schedule_id for r in ref.resources] == [doctor_schedule.pk]
    slot = Slot.objects.get(appointment_id=ref.id)
    assert (slot.status, slot.period.lower, slot.period.upper) == ("busy", ref.start, ref.end)
    encounter = Encounter.objects.get(pk=ref.encounter_id)
    assert (encounter.status, encounter.planned_start, encounter.practitioner_id) == ("planned", ref.start, doctor.pk)
    assert list(AppointmentEvent.objects.filter(appointment_id=ref.id).values_list("type", flat=True)) == ["booked"]


def test_overlapping_booking_is_refused_naming_the_resource_and_writes_nothing(
    frozen_now, scheduler, patient, doctor, doctor_schedule, video_type
):
    appointment_book(
        actor=scheduler,
        appointment_type_id=video_type.pk,
        patient_id=patient.pk,
        start=TUESDAY_10,
        practitioner_id=doctor.pk,
    )
    other = PatientFactory()
    before = _counts()
    with pytest.raises(SlotUnavailable) as caught:
        appointment_book(
            actor=scheduler,
            appointment_type_id=video_type.pk,
            patient_id=other.pk,
            start=TUESDAY_10 + dt.timedelta(minutes=15),
            practitioner_id=doctor.pk,
        )
    assert caught.value.schedule_id == doctor_schedule.pk
    assert _counts() == before
    # Back-to-back is fine: ranges are half-open.
    appointment_book(
        actor=scheduler,
        appointment_type_id=video_type.pk,
        patient_id=other.pk,
        start=TUESDAY_10 + dt.timedelta(minutes=30),
        practitioner_id=doctor.pk,
    )


def test_multi_resource_booking_picks_free_room_and_equipment_then_reports_missing(
    frozen_now, scheduler, doctor, doctor2, location
):
    ScheduleFactory(practitioner=doctor)
    ScheduleFactory(practitioner=doctor2)
    room = ScheduleFactory(kind="room", category="exam", name="Room 1", location=location)
    ecg = ScheduleFactory(kind="equipment", category="ecg", name="ECG cart", location=location)
    ecg_type = AppointmentTypeFactory(
        code="ecg-visit", modality="in-person", buffer_after_minutes=10, needs=[("room", "exam"), ("equipment", "ecg")]
    )
    first = appointment_book(
        actor=scheduler,
        appointment_type_id=ecg_type.pk,
        patient_id=PatientFactory().pk,
        start=TUESDAY_10,
        practitioner_id=doctor.pk,
    )
    assert {r.schedule_id for r in first.resources} == {doctor.schedule.pk, room.pk, ecg.pk}
    # The buffer keeps the room busy 10 minutes after the visit: doctor2 cannot start there at 10:30.
    before = _counts()
    with pytest.raises(MissingResource) as caught:
        appointment_book(
            actor=scheduler,
            appointment_type_id=ecg_type.pk,
            patient_id=PatientFactory().pk,
            start=TUESDAY_10 + dt.timedelta(minutes=30),
            practitioner_id=doctor2.pk,
        )
    assert caught.value.kind == "room"
    assert _counts() == before
    appointment_book(
        actor=scheduler,
        appointment_type_id=ecg_type.pk,
        patient_id=PatientFactory().pk,
        start=TUESDAY_10 + dt.timedelta(minutes=40),
        practitioner_id=doctor2.pk,
    )


def test_explicit_busy_resource_conflict_rolls_back_every_resource(frozen_now, scheduler, doctor, doctor2, location):
    ScheduleFactory(practitioner=doctor)
    ScheduleFactory(practitioner=doctor2)
    room = ScheduleFactory(kind="room", category="exam", name="Room 1", location=location)
    room_type = AppointmentTypeFactory(code="room-visit", modality="in-person", needs=[("room", "exam")])
    appointment_book(
        actor=scheduler,
        appointment_type_id=room_type.pk,
        patient_id=PatientFactory().pk,
        start=TUESDAY_10,
        practitioner_id=doctor.pk,
        resource_ids=[room.pk],
    )
    before = _counts()
    with pytest.raises(SlotUnavailable) as caught:
        appointment_book(
            actor=scheduler,
            appointment_type_id=room_type.pk,
            patient_id=PatientFactory().pk,
            start=TUESDAY_10,
            practitioner_id=doctor2.pk,
            resource_ids=[room.pk],
        )
    assert caught.value.schedule_name == "Room 1"
    # doctor2 was free, but no slot of theirs was left behind.
    assert _counts() == before
    assert not Slot.objects.filter(schedule=doctor2.schedule).exists()


@pytest.mark.parametrize(
    ("start", "error"),
    [
        (NOW - dt.timedelta(hours=1), BookingInPast),
        (dt.datetime(2031, 3, 4, 7, 0, tzinfo=dt.UTC), OutsideAvailability),  # before 09:00
        (dt.datetime(2031, 3, 8, 10, 0, tzinfo=dt.UTC), OutsideAvailability),  # a Saturday
        (dt.datetime(2031, 3, 4, 16, 45, tzinfo=dt.UTC), OutsideAvailability),  # would end after 17:00
    ],
)
def test_bad_times_are_refused_and_write_nothing(
    frozen_now, scheduler, patient, doctor, doctor_schedule, video_type, start, error
):
    before = _counts()
    with pytest.raises(error):
        appointment_book(
            actor=scheduler,
            appointment_type_id=video_type.pk,
            patient_id=patient.pk,
            start=start,
            practitioner_id=doctor.pk,
        )
    assert _counts() == before


def test_blocked_time_is_outside_availability(frozen_now, scheduler, patient, doctor, doctor_schedule, video_type):
    from scheduling.services.availability import availability_exception_add

    availability_exception_add(
        actor=scheduler,
        schedule_id=doctor_schedule.pk,
        kind="unavailable",
        start=TUESDAY_10,
        end=TUESDAY_10 + dt.timedelta(hours=2),
        reason="training",
    )
    with pytest.raises(OutsideAvailability):
        appointment_book(
            actor=scheduler,
            appointment_type_id=video_type.pk,
            patient_id=patient.pk,
            start=TUESDAY_10,
            practitioner_id=doctor.pk,
        )


def test_patient_books_only_for_themselves_and_only_bookable_types(
    frozen_now, patient_user, patient, doctor, doctor_schedule, video_type
):
    stranger = PatientFactory()
    with pytest.raises(BookingForbidden):
        appointment_book(
            actor=patient_user,
            appointment_type_id=video_type.pk,
            patient_id=stranger.pk,
            start=TUESDAY_10,
            practitioner_id=doctor.pk,
        )
    staff_only = AppointmentTypeFactory(code="staff-only", patient_bookable=False)
    with pytest.raises(BookingForbidden):
        appointment_book(
            actor=patient_user,
            appointment_type_id=staff_only.pk,
            patient_id=patient.pk,
            start=TUESDAY_10,
            practitioner_id=doctor.pk,
        )
    with pytest.raises(InvalidBooking):  # not one of the offered (aligned) starts
        appointment_book(
            actor=patient_user,
            appointment_type_id=video_type.pk,
            patient_id=patient.pk,
            start=TUESDAY_10 + dt.timedelta(minutes=7),
            practitioner_id=doctor.pk,
        )
    with pytest.raises(TooLate):  # inside the 60-minute minimum notice
        appointment_book(
            actor=patient_user,
            appointment_type_id=video_type.pk,
            patient_id=patient.pk,
            start=NOW + dt.timedelta(minutes=30),
            practitioner_id=doctor.pk,
        )
    ref = appointment_book(
        actor=patient_user,
        appointment_type_id=video_type.pk,
        patient_id=patient.pk,
        start=TUESDAY_10,
        practitioner_id=doctor.pk,
    )
    assert ref.patient_id == patient.pk


def test_billing_cannot_book(frozen_now, organization, patient, doctor, doctor_schedule, video_type):
    billing = UserFactory(roles=["billing"], organization=organization)
    with pytest.raises(BookingForbidden):
        appointment_book(
            actor=billing,
            appointment_type_id=video_type.pk,
            patient_id=patient.pk,
            start=TUESDAY_10,
            practitioner_id=doctor.pk,
        )


def test_hold_blocks_others_until_confirmed(
    frozen_now, patient_user, patient, scheduler, doctor, doctor_schedule, video_type
):
    hold = hold_create(
        actor=patient_user,
        appointment_type_id=video_type.pk,
        patient_id=patient.pk,
        start=TUESDAY_10,
        practitioner_id=doctor.pk,
    )
    with pytest.raises(SlotUnavailable):
        appointment_book(
            actor=scheduler,
            appointment_type_id=video_type.pk,
            patient_id=PatientFactory().pk,
            start=TUESDAY_10,
            practitioner_id=doctor.pk,
        )
    ref = hold_confirm(actor=patient_user, hold_id=hold.id)
    assert ref.status == "booked"
    assert Slot.objects.get(appointment_id=ref.id).status == SlotStatus.BUSY
    assert Hold.objects.get(pk=hold.id).status == HoldStatus.CONSUMED


def test_expired_hold_cannot_be_confirmed_and_frees_the_time(
    patient_user, patient, scheduler, doctor, doctor_schedule, video_type
):
    with time_machine.travel(NOW, tick=False) as traveller:
        hold = hold_create(
            actor=patient_user,
            appointment_type_id=video_type.pk,
            patient_id=patient.pk,
            start=TUESDAY_10,
            practitioner_id=doctor.pk,
        )
        traveller.shift(dt.timedelta(minutes=6))
        with pytest.raises(HoldExpired):
            hold_confirm(actor=patient_user, hold_id=hold.id)
        # Someone else can take the time straight away; the expired hold is cleared on the way.
        appointment_book(
            actor=scheduler,
            appointment_type_id=video_type.pk,
            patient_id=PatientFactory().pk,
            start=TUESDAY_10,
            practitioner_id=doctor.pk,
        )
        assert Hold.objects.get(pk=hold.id).status == HoldStatus.EXPIRED


def test_hold_expiry_job_releases_expired_holds(patient_user, patient, doctor, doctor_schedule, video_type):
    with time_machine.travel(NOW, tick=False) as traveller:
        hold = hold_create(
            actor=patient_user,
            appointment_type_id=video_type.pk,
            patient_id=patient.pk,
            start=TUESDAY_10,
            practitioner_id=doctor.pk,
        )
        assert holds_release_expired() == 0
        traveller.shift(dt.timedelta(minutes=6))
        assert holds_release_expired() == 1
        assert not Slot.objects.filter(hold_id=hold.id).exists()
        assert Hold.objects.get(pk=hold.id).status == HoldStatus.EXPIRED


def test_cancel_releases_resources_and_cancels_encounter(
    frozen_now, scheduler, patient, doctor, doctor_schedule, video_type
):
    ref = appointment_book(
        actor=scheduler,
        appointment_type_id=video_type.pk,
        patient_id=patient.pk,
        start=TUESDAY_10,
        practitioner_id=doctor.pk,
    )
    with pytest.raises(InvalidBooking):
        appointment_cancel(actor=scheduler, appointment_id=ref.id, reason="  ")
    cancelled = appointment_cancel(actor=scheduler, appointment_id=ref.id, reason="patient unwell", expected_version=1)
    assert (cancelled.status, cancelled.cancel_reason, cancelled.version) == ("cancelled", "patient unwell", 2)
    assert Slot.objects.get(appointment_id=ref.id).status == SlotStatus.FREE
    assert Encounter.objects.get(pk=ref.encounter_id).status == "cancelled"
    appointment_book(
        actor=scheduler,
        appointment_type_id=video_type.pk,
        patient_id=PatientFactory().pk,
        start=TUESDAY_10,
        practitioner_id=doctor.pk,
    )
    with pytest.raises(InvalidTransition):
        appointment_cancel(actor=scheduler, appointment_id=ref.id, reason="again")


def test_patient_cannot_cancel_inside_the_window(
    frozen_now, patient_user, patient, doctor, doctor_schedule, video_type
):
    ref = appointment_book(
        actor=patient_user,
        appointment_type_id=video_type.pk,
        patient_id=patient.pk,
        start=TUESDAY_10,
        practitioner_id=doctor.pk,
    )
    # 26 hours ahead minus the 24-hour window: fine now, refused two hours later.
    frozen_now.shift(dt.timedelta(hours=3))
    with pytest.raises(TooLate):
        appointment_cancel(actor=patient_user, appointment_id=ref.id, reason="cannot come")


def test_reschedule_conflict_leaves_the_appointment_as_it_was(
    frozen_now, scheduler, patient, doctor, doctor_schedule, video_type
):
    first = appointment_book(
        actor=scheduler,
        appointment_type_id=video_type.pk,
        patient_id=patient.pk,
        start=TUESDAY_10,
        practitioner_id=doctor.pk,
    )
    appointment_book(
        actor=scheduler,
        appointment_type_id=video_type.pk,
        patient_id=PatientFactory().pk,
        start=TUESDAY_10 + dt.timedelta(hours=1),
        practitioner_id=doctor.pk,
    )
    with pytest.raises(SlotUnavailable):
        appointment_reschedule(
            actor=scheduler,
            appointment_id=first.id,
            expected_version=1,
            start=TUESDAY_10 + dt.timedelta(hours=1),
            reason="patient asked",
        )
    slot = Slot.objects.get(appointment_id=first.id)
    assert (slot.status, slot.period.lower) == (SlotStatus.BUSY, TUESDAY_10)
    with pytest.raises(VersionConflict):
        appointment_reschedule(
            actor=scheduler,
            appointment_id=first.id,
            expected_version=7,
            start=TUESDAY_10 + dt.timedelta(hours=2),
            reason="patient asked",
        )
    # Moving by 15 minutes overlaps its own old time: allowed, since the old slot is released first.
    moved = appointment_reschedule(
        actor=scheduler,
        appointment_id=first.id,
        expected_version=1,
        start=TUESDAY_10 + dt.timedelta(minutes=15),
        reason="patient asked",
    )
    assert (moved.start, moved.version) == (TUESDAY_10 + dt.timedelta(minutes=15), 2)
    assert Encounter.objects.get(pk=first.encounter_id).planned_start == moved.start
    assert Slot.objects.filter(appointment_id=first.id, status=SlotStatus.BUSY).count() == 1


def test_override_double_booking_needs_a_scheduler_and_is_recorded(
    frozen_now, scheduler, doctor, patient, doctor_schedule, video_type
):
    appointment_book(
        actor=scheduler,
        appointment_type_id=video_type.pk,
        patient_id=patient.pk,
        start=TUESDAY_10,
        practitioner_id=doctor.pk,
    )
    with pytest.raises(BookingForbidden):
        appointment_book(
            actor=doctor,
            appointment_type_id=video_type.pk,
            patient_id=patient.pk,
            start=TUESDAY_10,
            practitioner_id=doctor.pk,
            override_reason="urgent",
        )
    ref = appointment_book(
        actor=scheduler,
        appointment_type_id=video_type.pk,
        patient_id=PatientFactory().pk,
        start=TUESDAY_10,
        practitioner_id=doctor.pk,
        override_reason="urgent squeeze-in agreed with the doctor",
    )
    assert ref.override_reason.startswith("urgent")
    assert AppointmentEvent.objects.get(appointment_id=ref.id).data == {"override": True}


def test_status_moves_through_the_table_only(frozen_now, scheduler, patient, doctor, doctor_schedule, video_type):
    ref = appointment_book(
        actor=scheduler,
        appointment_type_id=video_type.pk,
        patient_id=patient.pk,
        start=TUESDAY_10,
        practitioner_id=doctor.pk,
    )
    with pytest.raises(InvalidTransition):
        appointment_status_set(actor=scheduler, appointment_id=ref.id, status="fulfilled")
    arrived = appointment_status_set(actor=scheduler, appointment_id=ref.id, status="arrived")
    assert arrived.arrived_at is not None
    checked = appointment_status_set(actor=scheduler, appointment_id=ref.id, status="checked-in", expected_version=2)
    assert checked.status == "checked-in"
    with pytest.raises(NotFound):
        appointment_status_set(actor=scheduler, appointment_id=999999, status="arrived")


def test_noshow_job_marks_unattended_bookings_and_frees_them(scheduler, patient, doctor, doctor_schedule, video_type):
    with time_machine.travel(NOW, tick=False) as traveller:
        late = appointment_book(
            actor=scheduler,
            appointment_type_id=video_type.pk,
            patient_id=patient.pk,
            start=TUESDAY_10,
            practitioner_id=doctor.pk,
        )
        arrived = appointment_book(
            actor=scheduler,
            appointment_type_id=video_type.pk,
            patient_id=PatientFactory().pk,
            start=TUESDAY_10 + dt.timedelta(minutes=30),
            practitioner_id=doctor.pk,
        )
        appointment_status_set(actor=scheduler, appointment_id=arrived.id, status="arrived")
        traveller.move_to(TUESDAY_10 + dt.timedelta(minutes=14))
        assert appointments_mark_noshow() == 0
        traveller.move_to(TUESDAY_10 + dt.timedelta(minutes=16))
        assert appointments_mark_noshow() == 1
        assert Appointment.objects.get(pk=late.id).status == "noshow"
        assert Appointment.objects.get(pk=arrived.id).status == "arrived"
        assert Slot.objects.get(appointment_id=late.id).status == SlotStatus.FREE
        assert appointments_mark_noshow() == 0


def test_visit_start_and_complete_drive_the_ehr_encounter(
    frozen_now, scheduler, patient, doctor, doctor_schedule, video_type
):
    from scheduling.services.status import appointment_complete, appointment_visit_start

    ref = appointment_book(
        actor=scheduler,
        appointment_type_id=video_type.pk,
        patient_id=patient.pk,
        start=TUESDAY_10,
        practitioner_id=doctor.pk,
    )
    with pytest.raises(BookingForbidden):
        appointment_visit_start(actor=scheduler, appointment_id=ref.id)
    with pytest.raises(InvalidBooking):
        appointment_complete(actor=doctor, appointment_id=ref.id)
    started = appointment_visit_start(actor=doctor, appointment_id=ref.id)
    assert (started.status, started.visit_started_at is not None) == ("checked-in", True)
    assert Encounter.objects.get(pk=ref.encounter_id).status == "in-progress"
    with pytest.raises(InvalidBooking):
        appointment_visit_start(actor=doctor, appointment_id=ref.id)
    done = appointment_complete(actor=doctor, appointment_id=ref.id, expected_version=started.version)
    assert done.status == "fulfilled"
    encounter = Encounter.objects.get(pk=ref.encounter_id)
    assert (encounter.status, encounter.duration_seconds is not None) == ("finished", True)
    assert list(AppointmentEvent.objects.filter(appointment_id=ref.id).values_list("type", flat=True)) == [
        "booked",
        "visit_started",
        "fulfilled",
    ]


def test_appointments_of_a_merged_duplicate_show_under_the_surviving_record(
    frozen_now, scheduler, patient, doctor, doctor_schedule, video_type, admin_user
):
    from ehr.models import Patient
    from ehr.services.patients import patient_merge
    from scheduling.selectors import appointment_list_for_patient

    duplicate = PatientFactory()
    ref = appointment_book(
        actor=scheduler,
        appointment_type_id=video_type.pk,
        patient_id=duplicate.pk,
        start=TUESDAY_10,
        practitioner_id=doctor.pk,
    )
    source, target = Patient.objects.get(pk=duplicate.pk), Patient.objects.get(pk=patient.pk)
    patient_merge(
        actor=admin_user,
        source_patient_id=source.pk,
        target_patient_id=target.pk,
        expected_source_version=source.version,
        expected_target_version=target.version,
        reason="same person",
    )
    assert [a.id for a in appointment_list_for_patient(patient_id=patient.pk)] == [ref.id]
    with pytest.raises(InvalidBooking):  # the merged record takes no new bookings
        appointment_book(
            actor=scheduler,
            appointment_type_id=video_type.pk,
            patient_id=duplicate.pk,
            start=TUESDAY_10 + dt.timedelta(hours=1),
            practitioner_id=doctor.pk,
        )


def test_booking_with_a_practitioner_who_left_the_schedules_clinic_is_refused_cleanly(
    frozen_now, scheduler, patient, doctor, video_type
):
    from tests.factories import LocationFactory

    elsewhere = LocationFactory(timezone="Europe/Lisbon")
    ScheduleFactory(practitioner=doctor, location=elsewhere)  # the doctor does not work at `elsewhere`
    before = _counts()
    with pytest.raises(InvalidBooking) as caught:
        appointment_book(
            actor=scheduler,
            appointment_type_id=video_type.pk,
            patient_id=patient.pk,
            start=TUESDAY_10,
            practitioner_id=doctor.pk,
        )
    assert "encounter_location_id" in caught.value.fields
    assert _counts() == before
