"""Recurring series against the real PostgreSQL: every occurrence booked or none, each occurrence with its own status,
cancelling the rest of a series, the rule subset and its refusals, and the HTTP API with its error shapes."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from ehr.models import Encounter
from scheduling.dto import SeriesRef
from scheduling.errors import (
    BeyondHorizon,
    BookingForbidden,
    InvalidBooking,
    NotFound,
    OutsideAvailability,
    SlotUnavailable,
    TooLate,
)
from scheduling.models import Appointment, AppointmentEvent, AppointmentSeries, Slot
from scheduling.services.availability import availability_exception_add
from scheduling.services.booking import appointment_book, appointment_cancel
from scheduling.services.series import (
    MAX_OCCURRENCES,
    SeriesOccurrenceRefused,
    series_book,
    series_cancel,
    series_get,
    series_occurrences,
)
from tests.conftest import csrf_login
from tests.factories import PatientFactory, UserFactory

pytestmark = pytest.mark.django_db

LISBON = "Europe/Lisbon"


def wall(year: int, month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A naive wall-clock time: series starts are local times in the series' zone, on purpose without an offset."""
    return dt.datetime(year, month, day, hour, minute)  # noqa: DTZ001 -- wall clock on purpose


# Monday 2031-03-10 09:00 in Lisbon; UTC+0 until the clocks go forward on Sunday 2031-03-30.
MONDAY_9 = wall(2031, 3, 10, 9)
API = "/api/v1/scheduling/"


def _utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)


def _counts() -> tuple[int, int, int, int, int]:
    return (
        AppointmentSeries.objects.count(),
        Appointment.objects.count(),
        Slot.objects.count(),
        AppointmentEvent.objects.count(),
        Encounter.objects.count(),
    )


def _book(actor, patient, doctor, appointment_type, rrule: str = "FREQ=WEEKLY;COUNT=4", **extra: Any):  # type: ignore[no-untyped-def]
    kwargs: dict[str, Any] = {
        "actor": actor,
        "appointment_type_id": appointment_type.pk,
        "patient_id": patient.pk,
        "practitioner_id": doctor.pk,
        "first_start_local": MONDAY_9,
        "time_zone": LISBON,
        "rrule": rrule,
        **extra,
    }
    return series_book(**kwargs)


# --- booking ----------------------------------------------------------------------------------------------------


def test_series_books_every_occurrence_with_its_own_slot_encounter_and_event(
    frozen_now, scheduler, patient, doctor, doctor_schedule, video_type
):
    ref = _book(scheduler, patient, doctor, video_type, comment="physio follow-up")
    assert ref.rrule == "FREQ=WEEKLY;COUNT=4"
    assert (ref.time_zone, ref.first_start_local, ref.first_start) == (LISBON, MONDAY_9, _utc(2031, 3, 10, 9))
    assert [o.start for o in ref.occurrences] == [
        _utc(2031, 3, 10, 9),
        _utc(2031, 3, 17, 9),
        _utc(2031, 3, 24, 9),
        _utc(2031, 3, 31, 8),  # 09:00 Lisbon summer time
    ]
    assert {(o.status, o.series_id, o.comment) for o in ref.occurrences} == {("booked", ref.id, "physio follow-up")}
    ids = [o.id for o in ref.occurrences]
    assert Slot.objects.filter(appointment_id__in=ids, status="busy", schedule=doctor_schedule).count() == 4
    assert Encounter.objects.filter(pk__in=[o.encounter_id for o in ref.occurrences], status="planned").count() == 4
    assert AppointmentEvent.objects.filter(appointment_id__in=ids, type="booked").count() == 4
    assert series_get(series_id=ref.id) == ref


def test_conflict_on_the_third_occurrence_refuses_the_series_naming_it_and_writes_nothing(
    frozen_now, scheduler, patient, doctor, doctor_schedule, video_type
):
    appointment_book(
        actor=scheduler,
        appointment_type_id=video_type.pk,
        patient_id=PatientFactory().pk,
        start=_utc(2031, 3, 24, 9, 15),
        practitioner_id=doctor.pk,
    )
    before = _counts()
    with pytest.raises(SeriesOccurrenceRefused) as caught:
        _book(scheduler, patient, doctor, video_type)
    refused = caught.value
    assert (refused.index, refused.local_start, refused.code, refused.status) == (
        3,
        wall(2031, 3, 24, 9),
        "slot_unavailable",
        409,
    )
    assert isinstance(refused.cause, SlotUnavailable)
    assert refused.cause.schedule_id == doctor_schedule.pk
    assert "2031-03-24" in str(refused)
    assert _counts() == before


def test_occurrence_in_time_off_refuses_the_series(frozen_now, scheduler, patient, doctor, doctor_schedule, video_type):
    availability_exception_add(
        actor=scheduler,
        schedule_id=doctor_schedule.pk,
        kind="unavailable",
        start=_utc(2031, 3, 17, 0),
        end=_utc(2031, 3, 18, 0),
        reason="conference",
    )
    before = _counts()
    with pytest.raises(SeriesOccurrenceRefused) as caught:
        _book(scheduler, patient, doctor, video_type)
    assert (caught.value.index, caught.value.code) == (2, "outside_availability")
    assert isinstance(caught.value.cause, OutsideAvailability)
    assert _counts() == before


def test_occurrence_past_the_booking_horizon_refuses_the_series(
    frozen_now, scheduler, patient, doctor, doctor_schedule, video_type
):
    # Bookings open 90 days ahead (until 2031-06-01); the 13th Monday from 2031-03-10 is 2031-06-02.
    before = _counts()
    with pytest.raises(SeriesOccurrenceRefused) as caught:
        _book(scheduler, patient, doctor, video_type, rrule="FREQ=WEEKLY;COUNT=13")
    assert (caught.value.index, caught.value.local_start.date()) == (13, dt.date(2031, 6, 2))
    assert isinstance(caught.value.cause, BeyondHorizon)
    assert _counts() == before


def test_request_level_errors_are_not_blamed_on_an_occurrence(
    frozen_now, scheduler, patient, doctor, doctor_schedule, video_type
):
    before = _counts()
    with pytest.raises(InvalidBooking) as caught:
        _book(scheduler, patient, doctor, video_type, resource_ids=[999999])
    assert set(caught.value.fields) == {"resource_ids"}
    with pytest.raises(InvalidBooking) as caught:
        _book(scheduler, patient, doctor, video_type.__class__(pk=999999))
    assert set(caught.value.fields) == {"appointment_type_id"}
    assert _counts() == before


def test_patient_books_a_series_for_themselves_only(
    frozen_now, patient_user, patient, doctor, doctor_schedule, video_type
):
    ref = _book(patient_user, patient, doctor, video_type, rrule="FREQ=WEEKLY;COUNT=2")
    assert [o.patient_id for o in ref.occurrences] == [patient.pk, patient.pk]
    before = _counts()
    with pytest.raises(BookingForbidden):
        _book(patient_user, PatientFactory(), doctor, video_type, rrule="FREQ=WEEKLY;COUNT=2")
    assert _counts() == before


def _race_series(scheduler, doctor, video_type, firsts: list[dt.datetime]) -> dict[int, object]:  # type: ignore[no-untyped-def]
    """Book one weekly series per first start, each for its own patient, from threads released together by a
    barrier (each thread has its own database connection). Returns what each got, by index."""
    patient_ids = [PatientFactory().pk for _ in firsts]
    barrier = threading.Barrier(len(firsts))
    results: dict[int, object] = {}

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = series_book(
                actor=scheduler,
                appointment_type_id=video_type.pk,
                patient_id=patient_ids[index],
                practitioner_id=doctor.pk,
                first_start_local=firsts[index],
                time_zone=LISBON,
                rrule="FREQ=WEEKLY;COUNT=3",
            )
        except BaseException as exc:  # reported by the test
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(firsts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return results


def _overlapping_blocking_pairs() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(*) FROM scheduling_slot a JOIN scheduling_slot b
              ON a.schedule_id = b.schedule_id AND a.id < b.id AND a.period && b.period
            WHERE a.status IN ('busy', 'busy-tentative') AND b.status IN ('busy', 'busy-tentative')
              AND NOT a.override AND NOT b.override
            """
        )
        return int(cursor.fetchone()[0])


@pytest.mark.django_db(transaction=True)
def test_racing_series_for_the_same_times_book_exactly_one_and_leave_nothing_of_the_others(
    frozen_now, scheduler, doctor, doctor_schedule, video_type
):
    results = _race_series(scheduler, doctor, video_type, [MONDAY_9] * 5)
    won = [r for r in results.values() if isinstance(r, SeriesRef)]
    refused = [r for r in results.values() if isinstance(r, SeriesOccurrenceRefused)]
    assert (len(won), len(refused)) == (1, 4), results
    assert all(isinstance(r.cause, SlotUnavailable) and r.index == 1 for r in refused)
    assert (AppointmentSeries.objects.count(), Appointment.objects.count()) == (1, 3)
    assert Encounter.objects.count() == 3
    assert _overlapping_blocking_pairs() == 0


@pytest.mark.django_db(transaction=True)
def test_racing_overlapping_series_are_each_all_or_nothing(frozen_now, scheduler, doctor, doctor_schedule, video_type):
    # Five series of three Mondays starting a week apart: each overlaps its neighbours on one or two Mondays.
    firsts = [MONDAY_9 + dt.timedelta(weeks=i) for i in range(5)]
    results = _race_series(scheduler, doctor, video_type, firsts)
    won = [r for r in results.values() if isinstance(r, SeriesRef)]
    assert all(isinstance(r, SeriesRef | SeriesOccurrenceRefused) for r in results.values()), results
    assert won
    assert AppointmentSeries.objects.count() == len(won)
    assert Appointment.objects.count() == 3 * len(won)
    assert all({o.status for o in w.occurrences} == {"booked"} and len(w.occurrences) == 3 for w in won)
    assert _overlapping_blocking_pairs() == 0


# --- cancelling -------------------------------------------------------------------------------------------------


def test_cancelling_one_occurrence_leaves_the_others_and_series_cancel_cancels_the_rest(
    frozen_now, scheduler, patient, doctor, doctor_schedule, video_type
):
    ref = _book(scheduler, patient, doctor, video_type)
    first, second, third, fourth = ref.occurrences
    appointment_cancel(actor=scheduler, appointment_id=second.id, reason="patient away that week")
    after_one = series_get(series_id=ref.id)
    assert after_one is not None
    assert [o.status for o in after_one.occurrences] == ["booked", "cancelled", "booked", "booked"]

    cancelled = series_cancel(actor=scheduler, series_id=ref.id, reason="course of treatment ended")
    assert [o.status for o in cancelled.occurrences] == ["cancelled"] * 4
    # The one cancelled on its own keeps its own reason; the rest carry the series'.
    assert [o.cancel_reason for o in cancelled.occurrences] == [
        "course of treatment ended",
        "patient away that week",
        "course of treatment ended",
        "course of treatment ended",
    ]
    ids = [o.id for o in ref.occurrences]
    assert not Slot.objects.filter(appointment_id__in=ids, status="busy").exists()
    assert set(
        Encounter.objects.filter(pk__in=[o.encounter_id for o in ref.occurrences]).values_list("status", flat=True)
    ) == {"cancelled"}
    # The freed time can be booked again.
    appointment_book(
        actor=scheduler,
        appointment_type_id=video_type.pk,
        patient_id=PatientFactory().pk,
        start=third.start,
        practitioner_id=doctor.pk,
    )
    assert first.id != fourth.id


def test_series_cancel_keeps_past_and_earlier_occurrences(
    frozen_now, scheduler, patient, doctor, doctor_schedule, video_type
):
    ref = _book(scheduler, patient, doctor, video_type)
    frozen_now.move_to(_utc(2031, 3, 12, 8))  # after the first occurrence
    result = series_cancel(
        actor=scheduler, series_id=ref.id, reason="moving to monthly", from_start=_utc(2031, 3, 24, 0)
    )
    assert [o.status for o in result.occurrences] == ["booked", "booked", "cancelled", "cancelled"]
    # A second call finds nothing more after that point and changes nothing; without from_start only the future.
    assert series_cancel(actor=scheduler, series_id=ref.id, reason="again", from_start=_utc(2031, 3, 24, 0)) == result
    final = series_cancel(actor=scheduler, series_id=ref.id, reason="stopping")
    assert [o.status for o in final.occurrences] == ["booked", "cancelled", "cancelled", "cancelled"]


def test_patient_cannot_cancel_a_series_with_an_occurrence_inside_its_window(
    frozen_now, patient_user, patient, doctor, doctor_schedule, video_type
):
    ref = _book(patient_user, patient, doctor, video_type, rrule="FREQ=WEEKLY;COUNT=3")
    frozen_now.move_to(_utc(2031, 3, 9, 20))  # 13 hours before the first; the window is 24 hours
    with pytest.raises(SeriesOccurrenceRefused) as caught:
        series_cancel(actor=patient_user, series_id=ref.id, reason="feeling better")
    assert (caught.value.index, caught.value.code) == (1, "too_late")
    assert isinstance(caught.value.cause, TooLate)
    assert [o.status for o in series_get(series_id=ref.id).occurrences] == ["booked"] * 3  # type: ignore[union-attr]
    result = series_cancel(
        actor=patient_user, series_id=ref.id, reason="feeling better", from_start=_utc(2031, 3, 11, 0)
    )
    assert [o.status for o in result.occurrences] == ["booked", "cancelled", "cancelled"]


def test_outsiders_cannot_cancel_or_learn_of_a_series(
    frozen_now, scheduler, organization, patient, doctor, doctor_schedule, video_type
):
    ref = _book(scheduler, patient, doctor, video_type, rrule="FREQ=WEEKLY;COUNT=2")
    stranger = UserFactory(username="other-patient", roles=["patient"], organization=organization)
    PatientFactory(user=stranger)
    with pytest.raises(NotFound):
        series_cancel(actor=stranger, series_id=ref.id, reason="mischief")
    with pytest.raises(NotFound):
        series_cancel(actor=scheduler, series_id=999999, reason="nothing")
    with pytest.raises(InvalidBooking):
        series_cancel(actor=scheduler, series_id=ref.id, reason="  ")
    assert {o.status for o in series_get(series_id=ref.id).occurrences} == {"booked"}  # type: ignore[union-attr]


# --- the rule ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rrule", "first", "expected"),
    [
        ("FREQ=WEEKLY;COUNT=3", MONDAY_9, [(3, 10), (3, 17), (3, 24)]),
        ("RRULE:freq=weekly;byday=MO,TH;count=3", MONDAY_9, [(3, 10), (3, 13), (3, 17)]),
        ("FREQ=WEEKLY;INTERVAL=2;UNTIL=20310407", MONDAY_9, [(3, 10), (3, 24), (4, 7)]),  # a DATE is inclusive
        ("FREQ=WEEKLY;UNTIL=20310324T090000Z", MONDAY_9, [(3, 10), (3, 17), (3, 24)]),
        ("FREQ=WEEKLY;UNTIL=20310324T085959", MONDAY_9, [(3, 10), (3, 17)]),
        ("FREQ=MONTHLY;BYDAY=2MO;COUNT=3", MONDAY_9, [(3, 10), (4, 14), (5, 12)]),
        ("FREQ=MONTHLY;BYMONTHDAY=10;COUNT=2", MONDAY_9, [(3, 10), (4, 10)]),
        ("FREQ=DAILY;INTERVAL=3;COUNT=3", MONDAY_9, [(3, 10), (3, 13), (3, 16)]),
    ],
)
def test_rules_expand_to_wall_clock_starts(rrule: str, first: dt.datetime, expected: list[tuple[int, int]]) -> None:
    starts = series_occurrences(rrule=rrule, first_start_local=first, time_zone=LISBON)
    assert starts == [wall(2031, m, d, 9) for m, d in expected]


@pytest.mark.parametrize(
    ("rrule", "field"),
    [
        ("FREQ=WEEKLY", "rrule"),  # never ends
        ("FREQ=WEEKLY;COUNT=2;UNTIL=20310401", "rrule"),
        (f"FREQ=WEEKLY;COUNT={MAX_OCCURRENCES + 1}", "rrule"),
        ("FREQ=DAILY;UNTIL=20320101", "rrule"),  # too many occurrences
        ("FREQ=YEARLY;COUNT=7", "rrule"),  # longer than five years
        ("FREQ=DAILY;INTERVAL=0;COUNT=3", "rrule"),  # dateutil would loop forever
        ("FREQ=HOURLY;COUNT=3", "rrule"),
        ("FREQ=WEEKLY;BYMONTH=2;COUNT=3", "rrule"),
        ("FREQ=MONTHLY;BYDAY=5MO;COUNT=3", "rrule"),  # not every month has one
        ("FREQ=MONTHLY;BYDAY=MO;BYMONTHDAY=1;COUNT=3", "rrule"),
        ("FREQ=WEEKLY;BYDAY=XX;COUNT=3", "rrule"),
        ("FREQ=WEEKLY;COUNT=3;COUNT=4", "rrule"),
        ("FREQ=WEEKLY;UNTIL=20311345", "rrule"),
        ("FREQ=WEEKLY;UNTIL=20300101", "rrule"),  # ends before it starts
        ("FREQ=WEEKLY;COUNT=2\nRRULE:FREQ=DAILY;COUNT=9", "rrule"),
        ("DTSTART:20200101T000000", "rrule"),
        ("not a rule", "rrule"),
        ("", "rrule"),
        ("FREQ=WEEKLY;BYDAY=TU;COUNT=3", "first_start"),  # the first start is a Monday
    ],
)
def test_bad_rules_are_refused_on_their_field(rrule: str, field: str) -> None:
    with pytest.raises(InvalidBooking) as caught:
        series_occurrences(rrule=rrule, first_start_local=MONDAY_9, time_zone=LISBON)
    assert set(caught.value.fields) == {field}, caught.value.fields


def test_bad_zone_and_first_start_are_refused() -> None:
    with pytest.raises(InvalidBooking) as caught:
        series_occurrences(rrule="FREQ=WEEKLY;COUNT=2", first_start_local=MONDAY_9, time_zone="Mars/Olympus")
    assert set(caught.value.fields) == {"time_zone"}
    for first in (MONDAY_9.replace(tzinfo=dt.UTC), MONDAY_9.replace(second=30), MONDAY_9.replace(year=9999)):
        with pytest.raises(InvalidBooking) as caught:
            series_occurrences(rrule="FREQ=WEEKLY;COUNT=2", first_start_local=first, time_zone=LISBON)
        assert set(caught.value.fields) == {"first_start"}


# --- HTTP -------------------------------------------------------------------------------------------------------


def _signed_in(username: str) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    assert csrf_login(client, username).status_code == 200
    return client


def _send(client: APIClient, method: str, path: str, data: Any = None):  # type: ignore[no-untyped-def]
    token = client.cookies["csrftoken"].value
    return getattr(client, method)(API + path, data, format="json", HTTP_X_CSRFTOKEN=token)


def _payload(video_type, doctor, **extra: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return {
        "appointment_type_id": video_type.pk,
        "practitioner_id": doctor.pk,
        "first_start": "2031-03-10T09:00",
        "time_zone": LISBON,
        "rrule": "FREQ=WEEKLY;COUNT=3",
        **extra,
    }


@pytest.fixture
def desk(scheduler) -> APIClient:
    return _signed_in(scheduler.username)


def test_api_books_reads_and_cancels_a_series(frozen_now, desk, patient, doctor, doctor_schedule, video_type):
    created = _send(desk, "post", "series/", _payload(video_type, doctor, patient_id=patient.pk))
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["rrule"], body["time_zone"], body["first_start_local"]) == (
        "FREQ=WEEKLY;COUNT=3",
        LISBON,
        "2031-03-10T09:00",
    )
    assert [(o["status"], o["start"][:16]) for o in body["occurrences"]] == [
        ("booked", "2031-03-10T09:00"),
        ("booked", "2031-03-17T09:00"),
        ("booked", "2031-03-24T09:00"),
    ]
    assert body["occurrences"][0]["patient_display_name"]
    assert {o["series_id"] for o in body["occurrences"]} == {body["id"]}

    read = desk.get(f"{API}series/{body['id']}/")
    assert read.status_code == 200
    assert read.json() == body

    first = body["occurrences"][0]
    assert (
        _send(desk, "post", f"appointments/{first['id']}/cancel/", {"reason": "away"}).status_code == 428
    )  # single occurrences use the ordinary endpoints (If-Match)
    token = desk.cookies["csrftoken"].value
    one = desk.post(
        f"{API}appointments/{first['id']}/cancel/",
        {"reason": "away"},
        format="json",
        HTTP_X_CSRFTOKEN=token,
        HTTP_IF_MATCH='"1"',
    )
    assert one.status_code == 200
    assert [o["status"] for o in desk.get(f"{API}series/{body['id']}/").json()["occurrences"]] == [
        "cancelled",
        "booked",
        "booked",
    ]
    rest = _send(desk, "post", f"series/{body['id']}/cancel/", {"reason": "treatment finished"})
    assert rest.status_code == 200, rest.json()
    assert [o["status"] for o in rest.json()["occurrences"]] == ["cancelled"] * 3
    assert _send(desk, "post", f"series/{body['id']}/cancel/", {}).json()["code"] == "invalid"


def test_api_patient_books_their_own_series_and_others_cannot_see_it(
    frozen_now, organization, patient_user, patient, doctor, doctor_schedule, video_type
):
    me = _signed_in(patient_user.username)
    created = _send(me, "post", "series/", _payload(video_type, doctor))
    assert created.status_code == 201, created.json()
    series_id = created.json()["id"]
    assert {o["patient_id"] for o in created.json()["occurrences"]} == {patient.pk}
    assert me.get(f"{API}series/{series_id}/").status_code == 200
    assert _send(me, "post", "series/", _payload(video_type, doctor, patient_id=PatientFactory().pk)).status_code == (
        403
    )

    stranger = UserFactory(username="other-patient", roles=["patient"], organization=organization)
    PatientFactory(user=stranger)
    other = _signed_in(stranger.username)
    assert other.get(f"{API}series/{series_id}/").json()["code"] == "not_found"
    assert _send(other, "post", f"series/{series_id}/cancel/", {"reason": "x"}).status_code == 404
    assert other.get(f"{API}series/999999/").status_code == 404


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"rrule": "FREQ=WEEKLY;BYDAY=XX;COUNT=3"}, "rrule"),  # malformed
        ({"rrule": "FREQ=WEEKLY;;COUNT=3"}, "rrule"),
        ({"rrule": "FREQ=WEEKLY"}, "rrule"),  # no COUNT or UNTIL
        ({"rrule": "FREQ=WEEKLY;COUNT=60"}, "rrule"),  # too many occurrences
        ({"rrule": "FREQ=DAILY;UNTIL=20320101"}, "rrule"),
        ({"rrule": "x" * 501}, "rrule"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"time_zone": "../../etc/passwd"}, "time_zone"),
        ({"first_start": "2031-03-10T09:00:00+00:00"}, "first_start"),  # must be wall clock
        ({"first_start": "next monday"}, "first_start"),
        ({"first_start": "2031-03-11T09:00"}, "first_start"),  # a Tuesday is not an occurrence of ...;BYDAY=MO
        ({"appointment_type_id": 999999}, "appointment_type_id"),
        ({"practitioner_id": "x"}, "practitioner_id"),
        ({"surprise": 1}, "surprise"),
        ({"comment": "x" * 501}, "comment"),
    ],
)
def test_api_bad_series_get_invalid_on_the_field_and_write_nothing(
    frozen_now, desk, patient, doctor, doctor_schedule, video_type, payload, field
):
    data = _payload(video_type, doctor, patient_id=patient.pk, **payload)
    if payload.get("first_start") == "2031-03-11T09:00":
        data["rrule"] = "FREQ=WEEKLY;BYDAY=MO;COUNT=3"
    before = _counts()
    response = _send(desk, "post", "series/", data)
    assert (response.status_code, response.json()["code"]) == (400, "invalid"), response.json()
    assert field in response.json()["fields"], response.json()
    assert _counts() == before


def test_api_missing_fields_are_named(frozen_now, desk, patient, doctor, doctor_schedule, video_type):
    response = _send(desk, "post", "series/", {"appointment_type_id": video_type.pk, "patient_id": patient.pk})
    assert response.status_code == 400
    assert {"practitioner_id", "first_start", "time_zone", "rrule"} <= set(response.json()["fields"])


def test_api_conflicting_occurrence_is_409_naming_the_date_and_resource(
    frozen_now, desk, scheduler, patient, doctor, doctor_schedule, video_type
):
    appointment_book(
        actor=scheduler,
        appointment_type_id=video_type.pk,
        patient_id=PatientFactory().pk,
        start=_utc(2031, 3, 24, 9),
        practitioner_id=doctor.pk,
    )
    before = _counts()
    response = _send(desk, "post", "series/", _payload(video_type, doctor, patient_id=patient.pk))
    assert response.status_code == 409, response.json()
    body = response.json()
    assert body["code"] == "slot_unavailable"
    assert body["conflicting_resource"] == {"schedule_id": doctor_schedule.pk, "name": doctor_schedule.name}
    assert body["occurrence"] == {
        "index": 3,
        "date": "2031-03-24",
        "local_start": "2031-03-24T09:00",
        "time_zone": LISBON,
    }
    assert "2031-03-24" in body["detail"]
    assert _counts() == before


def test_api_occurrence_outside_hours_is_422_and_past_horizon_400(
    frozen_now, desk, patient, doctor, doctor_schedule, video_type
):
    late = _send(
        desk, "post", "series/", _payload(video_type, doctor, patient_id=patient.pk, first_start="2031-03-10T16:45")
    )
    assert (late.status_code, late.json()["code"], late.json()["occurrence"]["index"]) == (
        422,
        "outside_availability",
        1,
    )
    far = _send(
        desk, "post", "series/", _payload(video_type, doctor, patient_id=patient.pk, rrule="FREQ=WEEKLY;COUNT=13")
    )
    assert (far.status_code, far.json()["code"], far.json()["occurrence"]["date"]) == (
        400,
        "beyond_booking_horizon",
        "2031-06-02",
    )
    assert not AppointmentSeries.objects.exists()


def test_api_patient_occurrence_off_the_offered_starts_is_invalid_naming_it(
    frozen_now, patient_user, patient, doctor, doctor_schedule, video_type
):
    me = _signed_in(patient_user.username)
    response = _send(me, "post", "series/", _payload(video_type, doctor, first_start="2031-03-10T09:07"))
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    assert response.json()["occurrence"]["index"] == 1
    assert "start" in response.json()["fields"]
    assert not Appointment.objects.exists()
