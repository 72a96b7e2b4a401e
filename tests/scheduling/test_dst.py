"""Daylight-saving changes in two time zones (Europe/Lisbon and America/New_York), spring and autumn of 2031:
series keep their wall-clock time, occurrences the clocks skip or repeat refuse the whole series, and weekly
working hours expand to the right UTC instants on both sides of each change.

2031 changes: Lisbon goes UTC+0 -> +1 on Sunday 30 March and back on Sunday 26 October; New York goes UTC-5 -> -4
on Sunday 9 March and back on Sunday 2 November.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from rest_framework.test import APIClient

from ehr.models import Encounter
from scheduling.availability import expand_rules
from scheduling.errors import OutsideAvailability
from scheduling.models import Appointment, AppointmentEvent, AppointmentSeries, AvailabilityRule, Slot
from scheduling.selectors import free_slot_search
from scheduling.services.availability import availability_exception_add
from scheduling.services.booking import appointment_book
from scheduling.services.series import SeriesOccurrenceRefused, series_book
from scheduling.timeutil import local_to_utc
from tests.conftest import csrf_login
from tests.factories.scheduling import ScheduleFactory

pytestmark = pytest.mark.django_db

LISBON = "Europe/Lisbon"
NEW_YORK = "America/New_York"
HOUR = dt.timedelta(hours=1)
# An October "now" for the autumn changes (the suite's usual now is Monday 2031-03-03 08:00 UTC).
OCTOBER_NOW = dt.datetime(2031, 10, 13, 8, 0, tzinfo=dt.UTC)


def wall(year: int, month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A naive wall-clock time (series and working hours are local times, on purpose without an offset)."""
    return dt.datetime(year, month, day, hour, minute)  # noqa: DTZ001 -- wall clock on purpose


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)


def _counts() -> tuple[int, int, int, int, int]:
    return (
        AppointmentSeries.objects.count(),
        Appointment.objects.count(),
        Slot.objects.count(),
        AppointmentEvent.objects.count(),
        Encounter.objects.count(),
    )


@pytest.fixture
def autumn():  # type: ignore[no-untyped-def]
    with time_machine.travel(OCTOBER_NOW, tick=True) as traveller:
        yield traveller


# --- series across a change -------------------------------------------------------------------------------------

# (zone, first Monday 09:00 local, the UTC offsets in hours of the three weekly occurrences)
SPRING = [
    (LISBON, wall(2031, 3, 24, 9), [0, 1, 1]),  # 24 Mar, 31 Mar, 7 Apr
    (NEW_YORK, wall(2031, 3, 3, 9), [-5, -4, -4]),  # 3 Mar, 10 Mar, 17 Mar
]
AUTUMN = [
    (LISBON, wall(2031, 10, 20, 9), [1, 0, 0]),  # 20 Oct, 27 Oct, 3 Nov
    (NEW_YORK, wall(2031, 10, 27, 9), [-4, -5, -5]),  # 27 Oct, 3 Nov, 10 Nov
]


def _weekly_series_keeps_nine_local(scheduler, patient, doctor, video_type, zone, first, offsets):  # type: ignore[no-untyped-def]
    schedule = ScheduleFactory(practitioner=doctor, time_zone=zone)  # Mon-Fri 09:00-17:00 local
    ref = series_book(
        actor=scheduler,
        appointment_type_id=video_type.pk,
        patient_id=patient.pk,
        practitioner_id=doctor.pk,
        first_start_local=first,
        time_zone=zone,
        rrule="FREQ=WEEKLY;BYDAY=MO;COUNT=3",
    )
    tz = ZoneInfo(zone)
    local = [o.start.astimezone(tz) for o in ref.occurrences]
    assert [(x.hour, x.minute, x.weekday()) for x in local] == [(9, 0, 0)] * 3
    assert [x.utcoffset() for x in local] == [dt.timedelta(hours=h) for h in offsets]
    # The instants (and the busy slots) move by the offset change instead: 09:00 minus the offset.
    assert [o.start for o in ref.occurrences] == [
        (first + dt.timedelta(weeks=i)).replace(tzinfo=dt.UTC) - dt.timedelta(hours=h) for i, h in enumerate(offsets)
    ]
    slots = Slot.objects.filter(schedule=schedule, appointment__series_id=ref.id).order_by("period")
    assert [s.period.lower for s in slots] == [o.start for o in ref.occurrences]


@pytest.mark.parametrize(("zone", "first", "offsets"), SPRING, ids=["lisbon", "new-york"])
def test_weekly_series_keeps_nine_local_across_the_spring_change(
    frozen_now, scheduler, patient, doctor, video_type, zone, first, offsets
):
    _weekly_series_keeps_nine_local(scheduler, patient, doctor, video_type, zone, first, offsets)


@pytest.mark.parametrize(("zone", "first", "offsets"), AUTUMN, ids=["lisbon", "new-york"])
def test_weekly_series_keeps_nine_local_across_the_autumn_change(
    autumn, scheduler, patient, doctor, video_type, zone, first, offsets
):
    _weekly_series_keeps_nine_local(scheduler, patient, doctor, video_type, zone, first, offsets)


# --- occurrences the clocks skip or repeat ----------------------------------------------------------------------


def _night_series(scheduler, patient, doctor, video_type, zone, first, rrule):  # type: ignore[no-untyped-def]
    return series_book(
        actor=scheduler,
        appointment_type_id=video_type.pk,
        patient_id=patient.pk,
        practitioner_id=doctor.pk,
        first_start_local=first,
        time_zone=zone,
        rrule=rrule,
    )


def _extra_session(scheduler, schedule, zone, first_day: dt.datetime, days: int) -> None:  # type: ignore[no-untyped-def]
    """Working time around the clock on these days, so availability cannot be why a night occurrence is refused."""
    tz = ZoneInfo(zone)
    start = first_day.replace(hour=0, minute=0, tzinfo=tz).astimezone(dt.UTC)
    availability_exception_add(
        actor=scheduler,
        schedule_id=schedule.pk,
        kind="available",
        start=start,
        end=start + dt.timedelta(days=days),
        reason="night clinic",
    )


@pytest.mark.parametrize(
    ("zone", "first", "gap_day"),
    [
        (LISBON, wall(2031, 3, 29, 1, 30), dt.date(2031, 3, 30)),  # 01:00-02:00 is skipped
        (NEW_YORK, wall(2031, 3, 8, 2, 30), dt.date(2031, 3, 9)),  # 02:00-03:00 is skipped
    ],
    ids=["lisbon", "new-york"],
)
def test_series_with_an_occurrence_in_the_spring_gap_is_refused_naming_the_date(
    frozen_now, scheduler, patient, doctor, video_type, zone, first, gap_day
):
    schedule = ScheduleFactory(practitioner=doctor, time_zone=zone)
    _extra_session(scheduler, schedule, zone, first, days=4)
    before = _counts()
    with pytest.raises(SeriesOccurrenceRefused) as caught:
        _night_series(scheduler, patient, doctor, video_type, zone, first, "FREQ=DAILY;COUNT=3")
    refused = caught.value
    assert (refused.code, refused.status, refused.index) == ("nonexistent_local_time", 400, 2)
    assert refused.local_start.date() == gap_day
    assert gap_day.isoformat() in str(refused)
    assert _counts() == before
    # The nights either side are bookable at that wall-clock time: only the skipped one was the problem.
    ref = _night_series(scheduler, patient, doctor, video_type, zone, first, "FREQ=DAILY;INTERVAL=2;COUNT=2")
    tz = ZoneInfo(zone)
    assert [(o.start.astimezone(tz).hour, o.start.astimezone(tz).minute) for o in ref.occurrences] == [
        (first.hour, 30),
        (first.hour, 30),
    ]


@pytest.mark.parametrize(
    ("zone", "first", "fold_day"),
    [
        (LISBON, wall(2031, 10, 25, 1, 30), dt.date(2031, 10, 26)),  # 01:00-02:00 happens twice
        (NEW_YORK, wall(2031, 11, 1, 1, 30), dt.date(2031, 11, 2)),
    ],
    ids=["lisbon", "new-york"],
)
def test_series_with_an_occurrence_in_the_autumn_fold_is_refused_naming_the_date(
    autumn, scheduler, patient, doctor, video_type, zone, first, fold_day
):
    schedule = ScheduleFactory(practitioner=doctor, time_zone=zone)
    _extra_session(scheduler, schedule, zone, first, days=4)
    before = _counts()
    with pytest.raises(SeriesOccurrenceRefused) as caught:
        _night_series(scheduler, patient, doctor, video_type, zone, first, "FREQ=DAILY;COUNT=3")
    assert (caught.value.code, caught.value.index, caught.value.local_start.date()) == (
        "ambiguous_local_time",
        2,
        fold_day,
    )
    assert _counts() == before


def test_api_refuses_a_series_through_the_gap_with_the_date_and_writes_nothing(
    frozen_now, scheduler, patient, doctor, video_type
):
    schedule = ScheduleFactory(practitioner=doctor, time_zone=NEW_YORK)
    _extra_session(scheduler, schedule, NEW_YORK, wall(2031, 3, 8, 0), days=4)
    client = APIClient(enforce_csrf_checks=True)
    assert csrf_login(client, scheduler.username).status_code == 200
    before = _counts()
    response = client.post(
        "/api/v1/scheduling/series/",
        {
            "appointment_type_id": video_type.pk,
            "patient_id": patient.pk,
            "practitioner_id": doctor.pk,
            "first_start": "2031-03-08T02:30",
            "time_zone": NEW_YORK,
            "rrule": "FREQ=DAILY;COUNT=3",
        },
        format="json",
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == "nonexistent_local_time"
    assert body["occurrence"] == {
        "index": 2,
        "date": "2031-03-09",
        "local_start": "2031-03-09T02:30",
        "time_zone": NEW_YORK,
    }
    assert "2031-03-09" in body["detail"]
    assert _counts() == before


# --- availability across a change -------------------------------------------------------------------------------

# (zone, Friday before, Monday after, offset before, offset after) in hours
CHANGES = [
    (LISBON, dt.date(2031, 3, 28), dt.date(2031, 3, 31), 0, 1),
    (NEW_YORK, dt.date(2031, 3, 7), dt.date(2031, 3, 10), -5, -4),
    (LISBON, dt.date(2031, 10, 24), dt.date(2031, 10, 27), 1, 0),
    (NEW_YORK, dt.date(2031, 10, 31), dt.date(2031, 11, 3), -4, -5),
]
CHANGE_IDS = ["lisbon-spring", "new-york-spring", "lisbon-autumn", "new-york-autumn"]


def _at(day: dt.date, hour: int, offset: int) -> dt.datetime:
    """The UTC instant of ``hour``:00 local on ``day`` at a UTC offset of ``offset`` hours."""
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC) - dt.timedelta(hours=offset)


@pytest.mark.parametrize(("zone", "friday", "monday", "before", "after"), CHANGES, ids=CHANGE_IDS)
def test_weekly_hours_expand_to_the_right_instants_on_both_sides_of_a_change(
    doctor, zone, friday, monday, before, after
):
    schedule = ScheduleFactory(practitioner=doctor, time_zone=zone)  # Mon-Fri 09:00-17:00 local
    # From Friday 00:00 UTC to Tuesday 05:00 UTC: Thursday's and Tuesday's hours fall outside in both zones.
    window_start = dt.datetime.combine(friday, dt.time(0), dt.UTC)
    window_end = dt.datetime.combine(monday + dt.timedelta(days=1), dt.time(5), dt.UTC)
    intervals = expand_rules(AvailabilityRule.objects.filter(schedule=schedule), zone, window_start, window_end)
    assert intervals == [
        (_at(friday, 9, before), _at(friday, 17, before)),
        (_at(monday, 9, after), _at(monday, 17, after)),
    ]
    # Both are eight hours long and start at 09:00 local, though their UTC hours differ by the change.
    tz = ZoneInfo(zone)
    assert {(s.astimezone(tz).hour, e - s) for s, e in intervals} == {(9, 8 * HOUR)}
    assert intervals[0][0].hour != intervals[1][0].hour


@pytest.mark.parametrize(("zone", "friday", "monday", "before", "after"), CHANGES, ids=CHANGE_IDS)
def test_free_slots_and_a_nine_oclock_booking_on_the_day_after_a_change(
    scheduler, patient, doctor, video_type, zone, friday, monday, before, after
):
    now = dt.datetime.combine(friday, dt.time(0), dt.UTC) - dt.timedelta(days=3)
    with time_machine.travel(now, tick=True):
        ScheduleFactory(practitioner=doctor, time_zone=zone)
        slots = free_slot_search(
            actor=scheduler,
            appointment_type_id=video_type.pk,
            window_start=_at(monday, 0, after),
            window_end=_at(monday, 23, after),
            practitioner_id=doctor.pk,
        )
        # 30-minute visits every 15 minutes from 09:00 to 16:30 local, at the new offset.
        assert slots[0].start == _at(monday, 9, after)
        assert slots[-1].start == _at(monday, 16, after) + dt.timedelta(minutes=30)
        assert len(slots) == 31
        nine = local_to_utc(dt.datetime.combine(monday, dt.time(9)), zone)
        assert nine == _at(monday, 9, after)
        booked = appointment_book(
            actor=scheduler,
            appointment_type_id=video_type.pk,
            patient_id=patient.pk,
            start=nine,
            practitioner_id=doctor.pk,
        )
        assert booked.start.astimezone(ZoneInfo(zone)).time() == dt.time(9)
        # A quarter of an hour earlier is outside the hours, on the new offset as on the old.
        with pytest.raises(OutsideAvailability):
            appointment_book(
                actor=scheduler,
                appointment_type_id=video_type.pk,
                patient_id=patient.pk,
                start=nine - dt.timedelta(minutes=15),
                practitioner_id=doctor.pk,
            )
