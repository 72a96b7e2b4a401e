"""Free-slot search against a brute-force reference: every candidate start checked one by one, with datetimes,
the way the rule reads (docs/scheduling.md). The search itself does interval arithmetic in PostgreSQL, so this
compares two independent computations on a month of irregular data: several practitioners in two time zones,
rooms and carts with different hours, time off and extra sessions, buffers on both sides, bookings at odd
minutes and seconds, live and expired holds, released and override slots, windows that start at a fractional
"now", odd slot intervals and both daylight-saving changes of March 2031."""

from __future__ import annotations

import datetime as dt
import functools
import random
from zoneinfo import ZoneInfo

import pytest
import time_machine
from psycopg.types.range import TimestamptzRange

from ehr.models import User
from scheduling.availability import working_intervals
from scheduling.models import (
    Appointment,
    AppointmentType,
    AvailabilityException,
    AvailabilityRule,
    Hold,
    ResourceKind,
    ResourceRequirement,
    Schedule,
    Slot,
)
from scheduling.selectors import free_slot_search
from tests.factories import LocationFactory, PatientFactory, UserFactory
from tests.factories.scheduling import AppointmentTypeFactory, ScheduleFactory, weekly_hours

pytestmark = pytest.mark.django_db

NEW_YORK = "America/New_York"
# A Monday morning with a fractional second: staff windows that start "now" are not on any grid.
NOW = dt.datetime(2031, 3, 3, 10, 7, 13, 417_229, tzinfo=dt.UTC)
BLOCKING = ("busy", "busy-tentative")


def _reference(
    *,
    actor: User,
    appointment_type: AppointmentType,
    window_start: dt.datetime,
    window_end: dt.datetime,
    now: dt.datetime,
) -> list[tuple[dt.datetime, int, tuple[int, ...]]]:
    """(start, practitioner user id, other resources' schedule ids) of every free start, one candidate at a time."""
    staff = actor.has_role("scheduler", "admin", "nurse", "practitioner")
    start_bound = max(window_start, now + dt.timedelta(minutes=0 if staff else appointment_type.min_notice_minutes))
    end_bound = min(window_end, now + dt.timedelta(days=appointment_type.horizon_days))
    before = dt.timedelta(minutes=appointment_type.buffer_before_minutes)
    after = dt.timedelta(minutes=appointment_type.buffer_after_minutes)
    duration = dt.timedelta(minutes=appointment_type.duration_minutes)
    step = appointment_type.slot_interval_minutes * 60
    span = (start_bound - before, end_bound + duration + after)

    @functools.cache
    def hours(schedule: Schedule) -> list[tuple[dt.datetime, dt.datetime]]:
        return working_intervals(
            time_zone=schedule.time_zone,
            rules=AvailabilityRule.objects.filter(schedule=schedule),
            exceptions=AvailabilityException.objects.filter(schedule=schedule),
            window_start=span[0],
            window_end=span[1],
        )

    @functools.cache
    def taken(schedule: Schedule) -> list[tuple[dt.datetime, dt.datetime]]:
        slots = Slot.objects.filter(schedule=schedule, status__in=BLOCKING)
        return [
            (s.period.lower, s.period.upper)
            for s in slots
            if s.status == "busy" or (s.expires_at is not None and s.expires_at > now)
        ]

    def free_then(schedule: Schedule, t: dt.datetime) -> bool:
        visit_inside = any(a <= t and t + duration <= b for a, b in hours(schedule))
        busy_start, busy_end = t - before, t + duration + after
        return visit_inside and all(e <= busy_start or s >= busy_end for s, e in taken(schedule))

    requirements = [
        r
        for r in ResourceRequirement.objects.filter(appointment_type=appointment_type)
        if r.kind != ResourceKind.PRACTITIONER and not r.optional
    ]
    found = []
    for practitioner in Schedule.objects.filter(kind=ResourceKind.PRACTITIONER, active=True):
        tz = ZoneInfo(practitioner.time_zone)
        groups = [
            list(
                Schedule.objects.filter(
                    kind=r.kind,
                    location_id=practitioner.location_id,
                    active=True,
                    **({"category": r.category} if r.category else {}),
                ).order_by("name", "id")
            )
            for r in requirements
        ]
        for work_start, work_end in hours(practitioner):
            first = max(work_start, start_bound)
            local = first.astimezone(tz)
            into_day = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
            t = first + dt.timedelta(seconds=-into_day % step)
            while t + duration <= work_end and t < end_bound:
                if free_then(practitioner, t):
                    picked = [next((s for s in group if free_then(s, t)), None) for group in groups]
                    if all(p is not None for p in picked):
                        found.append(
                            (t, practitioner.pk, practitioner.practitioner_id, tuple(p.pk for p in picked if p))
                        )
                t += dt.timedelta(seconds=step)
    found.sort(key=lambda row: (row[0], row[1]))
    return [(t, user_id, resources) for t, _, user_id, resources in found]


def _searched(**kwargs: object) -> list[tuple[dt.datetime, int, tuple[int, ...]]]:
    return [
        (s.start, s.practitioner_id, tuple(r.schedule_id for r in s.resources))
        for s in free_slot_search(**kwargs)  # type: ignore[arg-type]
    ]


@pytest.fixture
def month(organization, location):  # type: ignore[no-untyped-def]
    """A clinic in Lisbon with three doctors (one keeping New York hours), three exam rooms and two ECG carts,
    each with its own hours, and a month of irregular bookings, holds and exceptions."""
    rng = random.Random(4)  # noqa: S311 -- test data, not security
    annex = LocationFactory(organization=organization, timezone="Europe/Lisbon")
    staff = UserFactory(username="search-sched", roles=["scheduler"], organization=organization, locations=[location])
    patient = PatientFactory()
    doctors = [
        UserFactory(username=f"search-dr-{i}", roles=["practitioner"], organization=organization, locations=[location])
        for i in range(3)
    ]
    schedules = [
        ScheduleFactory(practitioner=doctors[0], hours=("09:00", "17:00")),
        ScheduleFactory(practitioner=doctors[1], hours=("08:30", "12:45")),
        ScheduleFactory(practitioner=doctors[2], hours=("09:00", "15:10"), time_zone=NEW_YORK),
        ScheduleFactory(kind="room", category="exam", name="Room A", location=location, hours=("08:00", "19:00")),
        ScheduleFactory(kind="room", category="exam", name="Room B", location=location, hours=("12:00", "18:00")),
        ScheduleFactory(kind="room", category="exam", name="Room C", location=annex, hours=("08:00", "19:00")),
        ScheduleFactory(kind="equipment", category="ecg", name="Cart 1", location=location, hours=("08:00", "16:00")),
        ScheduleFactory(kind="equipment", category="ecg", name="Cart 2", location=location, hours=("10:00", "19:00")),
    ]
    weekly_hours(schedules[1], (0, 2), "14:00", "18:00")  # a second session on Mondays and Wednesdays
    weekly_hours(schedules[0], (1,), "17:00", "18:00", since="2031-03-10")  # later Tuesdays from the second week
    AvailabilityRule.objects.filter(schedule=schedules[6], weekday=3).update(effective_until=dt.date(2031, 3, 20))
    for schedule, kind, start, hours_long in (
        (schedules[0], "unavailable", dt.datetime(2031, 3, 5, 11, 20, tzinfo=dt.UTC), 26),
        (schedules[0], "available", dt.datetime(2031, 3, 8, 9, 0, tzinfo=dt.UTC), 3),  # a Saturday session
        (schedules[3], "unavailable", dt.datetime(2031, 3, 12, 13, 5, tzinfo=dt.UTC), 2),
        (schedules[7], "available", dt.datetime(2031, 3, 15, 8, 0, tzinfo=dt.UTC), 5),
        (schedules[7], "unavailable", dt.datetime(2031, 3, 18, 0, 0, tzinfo=dt.UTC), 30),
    ):
        AvailabilityException.objects.create(
            schedule=schedule, kind=kind, start=start, end=start + dt.timedelta(hours=hours_long), created_by=staff
        )
    video = AppointmentType.objects.create(
        code="search-filler", name="Filler", modality="video", duration_minutes=30, horizon_days=365
    )
    # Bookings, holds and releases at irregular lengths, minutes and seconds; now and then an override over the
    # next stretch. Rows are written in bulk (the search reads only slots and their statuses).
    plans: list[tuple[Schedule, dt.datetime, dt.timedelta, str, bool]] = []
    for schedule in schedules:
        t = dt.datetime(2031, 3, 2, 7, 0, tzinfo=dt.UTC)
        while t < dt.datetime(2031, 4, 6, tzinfo=dt.UTC):
            t += dt.timedelta(minutes=rng.choice((0, 5, 15, 40, 95, 300, 720)), seconds=rng.choice((0, 0, 0, 30)))
            length = dt.timedelta(minutes=rng.choice((10, 20, 30, 45, 90)))
            roll = rng.random()
            status = "busy-tentative" if roll < 0.12 else "free" if roll < 0.2 else "busy"
            plans.append((schedule, t, length, status, roll > 0.97))
            t += length
    holds = Hold.objects.bulk_create(
        [
            Hold(
                patient=patient,
                appointment_type=video,
                practitioner=doctors[0],
                location=location,
                start=t,
                end=t + length,
                expires_at=NOW + dt.timedelta(minutes=rng.choice((-5, 5))),  # live or expired
                created_by=staff,
            )
            for _, t, length, status, _ in plans
            if status == "busy-tentative"
        ]
    )
    appointments = Appointment.objects.bulk_create(
        [
            Appointment(
                patient=patient,
                appointment_type=video,
                practitioner=doctors[0],
                location=location,
                modality="video",
                start=t,
                end=t + length,
                booked_by=staff,
            )
            for _, t, length, status, _ in plans
            if status != "busy-tentative"
        ]
    )
    slots = []
    held, booked = iter(holds), iter(appointments)
    for schedule, t, length, status, override in plans:
        if status == "busy-tentative":
            hold = next(held)
            owner: dict[str, object] = {"hold": hold, "expires_at": hold.expires_at}
        else:
            owner = {"appointment": next(booked)}
        slots.append(Slot(schedule=schedule, period=TimestamptzRange(t, t + length, "[)"), status=status, **owner))
        if override and "appointment" in owner:
            overlap = TimestamptzRange(t + length / 2, t + 2 * length, "[)")
            slots.append(Slot(schedule=schedule, period=overlap, status="busy", override=True, **owner))
    Slot.objects.bulk_create(slots)
    return staff, doctors, location, annex


@pytest.mark.parametrize(
    ("duration", "interval", "buffer_before", "buffer_after"),
    [(30, 15, 0, 10), (25, 25, 5, 10), (45, 20, 15, 0), (15, 15, 0, 0)],
    ids=["ecg-30-every-15", "odd-25-every-25", "45-every-20-buffer-before", "15-no-buffers"],
)
def test_search_finds_exactly_the_starts_a_one_by_one_check_finds(
    month, duration, interval, buffer_before, buffer_after
):
    staff, doctors, location, _annex = month
    ecg = AppointmentTypeFactory(
        code=f"search-{duration}-{interval}",
        modality="in-person",
        duration_minutes=duration,
        slot_interval_minutes=interval,
        buffer_before_minutes=buffer_before,
        buffer_after_minutes=buffer_after,
        horizon_days=24,
        needs=[("room", "exam"), ("equipment", "ecg")],
    )
    with time_machine.travel(NOW, tick=False):
        for window_start, days in (
            (NOW - dt.timedelta(hours=3), 31),  # from "now", mid-session, past the horizon and both DST changes
            (dt.datetime(2031, 3, 9, 5, 0, tzinfo=dt.UTC), 3),  # New York springs forward
            (dt.datetime(2031, 3, 29, 12, 0, tzinfo=dt.UTC), 2),  # Lisbon springs forward (past the horizon)
        ):
            window_end = window_start + dt.timedelta(days=days)
            expected = _reference(
                actor=staff, appointment_type=ecg, window_start=window_start, window_end=window_end, now=NOW
            )
            got = _searched(actor=staff, appointment_type_id=ecg.pk, window_start=window_start, window_end=window_end)
            assert got == expected
            assert window_end - window_start < dt.timedelta(days=4) or len(expected) > 100
            one = _searched(
                actor=staff,
                appointment_type_id=ecg.pk,
                window_start=window_start,
                window_end=window_end,
                practitioner_id=doctors[1].pk,
            )
            assert one == [row for row in expected if row[1] == doctors[1].pk]
            here = _searched(
                actor=staff,
                appointment_type_id=ecg.pk,
                window_start=window_start,
                window_end=window_end,
                location_id=location.pk,
            )
            assert here == expected  # every doctor works at the main site


def test_search_without_other_resources_and_for_a_patient_after_the_notice(month):
    _staff, _doctors, _location, _annex = month
    patient_user = UserFactory(username="search-patient", roles=["patient"])
    video = AppointmentTypeFactory(
        code="search-video", duration_minutes=20, slot_interval_minutes=10, min_notice_minutes=95, horizon_days=20
    )
    with time_machine.travel(NOW, tick=False):
        window_start, window_end = NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=25)
        expected = _reference(
            actor=patient_user, appointment_type=video, window_start=window_start, window_end=window_end, now=NOW
        )
        got = _searched(
            actor=patient_user, appointment_type_id=video.pk, window_start=window_start, window_end=window_end
        )
    assert got == expected
    assert len(expected) > 100
    assert got[0][0] >= NOW + dt.timedelta(minutes=95)
    assert all(start.second == 0 and start.microsecond == 0 for start, _, _ in got)


def test_a_resource_group_without_a_candidate_at_the_doctors_site_gives_no_starts(month):
    staff, _doctors, _location, annex = month
    # Only the annex has a "scan" room, and no doctor works there.
    ScheduleFactory(kind="room", category="scan", name="Scanner", location=annex)
    scan = AppointmentTypeFactory(code="search-scan", modality="in-person", needs=[("room", "scan")])
    with time_machine.travel(NOW, tick=False):
        got = _searched(
            actor=staff,
            appointment_type_id=scan.pk,
            window_start=NOW,
            window_end=NOW + dt.timedelta(days=7),
        )
    assert got == []
