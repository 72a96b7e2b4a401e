"""The database itself refuses what must never happen, whatever Python does: rows are written here with raw SQL
(``connection.cursor()``), past every service check, and PostgreSQL must reject the bad ones.

- ``slot_no_double_booking`` (EXCLUDE USING gist, btree_gist): two blocking slots of one schedule never overlap.
- CHECK constraints on slots, holds and appointments.
- The append-only trigger on the appointment event log.
- The one-winner unique index of waitlist offers.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction

from scheduling.models import Appointment, AppointmentEvent, Hold, Schedule, WaitlistEntry
from tests.factories import PatientFactory, UserFactory
from tests.factories.scheduling import AppointmentTypeFactory, ScheduleFactory

pytestmark = pytest.mark.django_db

T10 = dt.datetime(2031, 3, 4, 10, 0, tzinfo=dt.UTC)
EXCLUSION_VIOLATION = "23P01"
CHECK_VIOLATION = "23514"
UNIQUE_VIOLATION = "23505"
INSUFFICIENT_PRIVILEGE = "42501"  # what the event-log trigger raises


def at(minutes: int) -> dt.datetime:
    return T10 + dt.timedelta(minutes=minutes)


def sql(statement: str, params: list[Any] | None = None) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])
        return cursor.fetchone() if cursor.description else None


def rejected(statement: str, params: list[Any] | None = None) -> tuple[str, str]:
    """Run one statement that PostgreSQL must refuse; return (SQLSTATE, constraint name or message). A savepoint
    keeps the test's transaction usable afterwards."""
    with pytest.raises(DatabaseError) as caught, transaction.atomic():
        sql(statement, params)
    cause = caught.value.__cause__
    assert cause is not None, "expected a database error"
    diag = cause.diag  # type: ignore[attr-defined]
    return str(cause.sqlstate), diag.constraint_name or diag.message_primary or ""  # type: ignore[attr-defined]


INSERT_SLOT = """
    INSERT INTO scheduling_slot (schedule_id, period, status, appointment_id, hold_id, expires_at, override)
    VALUES (%s, tstzrange(%s, %s, '[)'), %s, %s, %s, %s, %s)
    RETURNING id
"""


@pytest.fixture
def world(location, doctor):  # type: ignore[no-untyped-def]
    """A doctor's schedule, a room, and owners for slots: appointments and an active hold (plain rows; the
    services are deliberately not involved)."""
    schedule = ScheduleFactory(practitioner=doctor)
    room = ScheduleFactory(kind="room", category="exam", name="Room 1", location=location)
    appointment_type = AppointmentTypeFactory(code="constraint-visit")
    patient = PatientFactory()
    booker = UserFactory(username="sched-constraints", roles=["scheduler"])

    def appointment() -> Appointment:
        return Appointment.objects.create(
            patient_id=patient.pk,
            appointment_type=appointment_type,
            practitioner=doctor,
            location=location,
            modality="video",
            start=T10,
            end=at(30),
            booked_by=booker,
        )

    def hold(expires_at: dt.datetime) -> Hold:
        return Hold.objects.create(
            patient_id=patient.pk,
            appointment_type=appointment_type,
            practitioner=doctor,
            location=location,
            start=T10,
            end=at(30),
            expires_at=expires_at,
            created_by=booker,
        )

    return {
        "schedule": schedule,
        "room": room,
        "appointment_type": appointment_type,
        "appointment": appointment,
        "hold": hold,
        "booker": booker,
    }


def busy(schedule: Schedule, start: dt.datetime, end: dt.datetime, appointment: Appointment, **kw: Any) -> Any:
    return sql(INSERT_SLOT, [schedule.pk, start, end, "busy", appointment.pk, None, None, kw.get("override", False)])


def test_the_guarantee_is_a_gist_exclusion_constraint_on_schedule_and_period() -> None:
    definition = sql("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'slot_no_double_booking'")
    assert definition is not None
    text = definition[0]
    assert text.startswith("EXCLUDE USING gist (schedule_id WITH =, period WITH &&)")
    assert "busy-tentative" in text
    assert "NOT override" in text
    assert sql("SELECT 1 FROM pg_extension WHERE extname = 'btree_gist'") == (1,)


@pytest.mark.parametrize(
    ("first", "second"),
    [("busy", "busy"), ("busy", "busy-tentative"), ("busy-tentative", "busy"), ("busy-tentative", "busy-tentative")],
)
def test_overlapping_blocking_slots_of_one_schedule_are_rejected(world, first: str, second: str) -> None:
    schedule = world["schedule"]
    expires = at(24 * 60)

    def values(status: str, start: dt.datetime, end: dt.datetime) -> list[Any]:
        if status == "busy":
            return [schedule.pk, start, end, status, world["appointment"]().pk, None, None, False]
        return [schedule.pk, start, end, status, None, world["hold"](expires).pk, expires, False]

    sql(INSERT_SLOT, values(first, T10, at(30)))
    for start, end in [(at(15), at(45)), (at(-15), at(15)), (at(5), at(10)), (at(-60), at(60)), (T10, at(30))]:
        assert rejected(INSERT_SLOT, values(second, start, end)) == (EXCLUSION_VIOLATION, "slot_no_double_booking")
    assert sql("SELECT count(*) FROM scheduling_slot WHERE schedule_id = %s", [schedule.pk]) == (1,)


def test_touching_ranges_are_accepted_because_periods_are_half_open(world) -> None:
    schedule, appointment = world["schedule"], world["appointment"]
    busy(schedule, T10, at(30), appointment())
    busy(schedule, at(30), at(60), appointment())
    busy(schedule, at(-30), T10, appointment())
    assert sql("SELECT count(*) FROM scheduling_slot WHERE schedule_id = %s", [schedule.pk]) == (3,)


def test_the_same_period_on_different_schedules_is_accepted(world) -> None:
    appointment = world["appointment"]()
    busy(world["schedule"], T10, at(30), appointment)
    busy(world["room"], T10, at(30), appointment)
    assert sql("SELECT count(*) FROM scheduling_slot WHERE appointment_id = %s", [appointment.pk]) == (2,)


def test_a_free_slot_blocks_nothing_and_is_blocked_by_nothing(world) -> None:
    schedule, appointment = world["schedule"], world["appointment"]
    sql(INSERT_SLOT, [schedule.pk, T10, at(30), "free", appointment().pk, None, None, False])
    busy(schedule, T10, at(30), appointment())  # the released time can be booked again
    sql(INSERT_SLOT, [schedule.pk, at(10), at(20), "free", appointment().pk, None, None, False])
    assert sql("SELECT count(*) FROM scheduling_slot WHERE schedule_id = %s", [schedule.pk]) == (3,)


def test_an_override_slot_may_overlap_but_does_not_open_the_time_to_others(world) -> None:
    schedule, appointment = world["schedule"], world["appointment"]
    busy(schedule, T10, at(30), appointment())
    busy(schedule, T10, at(30), appointment(), override=True)  # deliberate, audited double booking
    busy(schedule, at(15), at(45), appointment(), override=True)
    # A normal booking still meets the first, non-override slot.
    assert rejected(INSERT_SLOT, [schedule.pk, at(20), at(50), "busy", appointment().pk, None, None, False]) == (
        EXCLUSION_VIOLATION,
        "slot_no_double_booking",
    )


def test_an_expired_tentative_slot_still_blocks_until_it_is_deleted(world) -> None:
    """The constraint cannot see the clock: expiry works by deleting the slot (the booking that needs the time
    does so in its own transaction, and a beat task sweeps the rest)."""
    schedule = world["schedule"]
    expired = at(-24 * 60)
    hold = world["hold"](expired)
    slot = sql(INSERT_SLOT, [schedule.pk, T10, at(30), "busy-tentative", None, hold.pk, expired, False])
    values = [schedule.pk, T10, at(30), "busy", world["appointment"]().pk, None, None, False]
    assert rejected(INSERT_SLOT, values) == (EXCLUSION_VIOLATION, "slot_no_double_booking")
    sql("DELETE FROM scheduling_slot WHERE id = %s", [slot[0]])
    sql(INSERT_SLOT, values)


def test_updates_are_checked_like_inserts(world) -> None:
    schedule, appointment = world["schedule"], world["appointment"]
    busy(schedule, T10, at(30), appointment())
    released = sql(INSERT_SLOT, [schedule.pk, at(15), at(45), "free", appointment().pk, None, None, False])
    later = busy(schedule, at(60), at(90), appointment())
    # Reviving a released slot, or moving a busy one, into taken time is refused.
    assert rejected("UPDATE scheduling_slot SET status = 'busy' WHERE id = %s", [released[0]]) == (
        EXCLUSION_VIOLATION,
        "slot_no_double_booking",
    )
    assert rejected(
        "UPDATE scheduling_slot SET period = tstzrange(%s, %s, '[)') WHERE id = %s", [at(20), at(50), later[0]]
    ) == (EXCLUSION_VIOLATION, "slot_no_double_booking")


def test_slot_has_exactly_one_owner(world) -> None:
    schedule = world["schedule"]
    expires = at(60)
    assert rejected(INSERT_SLOT, [schedule.pk, T10, at(30), "busy", None, None, None, False]) == (
        CHECK_VIOLATION,
        "slot_one_owner",
    )
    both = [schedule.pk, T10, at(30), "busy", world["appointment"]().pk, world["hold"](expires).pk, expires, False]
    assert rejected(INSERT_SLOT, both) == (CHECK_VIOLATION, "slot_one_owner")


def test_a_tentative_slot_needs_a_hold_and_an_expiry(world) -> None:
    schedule = world["schedule"]
    hold = world["hold"](at(60))
    assert rejected(INSERT_SLOT, [schedule.pk, T10, at(30), "busy-tentative", None, hold.pk, None, False]) == (
        CHECK_VIOLATION,
        "slot_tentative_is_hold",
    )
    no_hold = [schedule.pk, T10, at(30), "busy-tentative", world["appointment"]().pk, None, at(60), False]
    assert rejected(INSERT_SLOT, no_hold) == (CHECK_VIOLATION, "slot_tentative_is_hold")


def test_slot_period_is_bounded_and_status_known(world) -> None:
    schedule, appointment = world["schedule"], world["appointment"]()
    empty = [schedule.pk, T10, T10, "busy", appointment.pk, None, None, False]
    assert rejected(INSERT_SLOT, empty) == (CHECK_VIOLATION, "slot_period_bounded")
    unbounded = [schedule.pk, T10, None, "busy", appointment.pk, None, None, False]
    assert rejected(INSERT_SLOT, unbounded) == (CHECK_VIOLATION, "slot_period_bounded")
    unknown = [schedule.pk, T10, at(30), "maybe", appointment.pk, None, None, False]
    assert rejected(INSERT_SLOT, unknown) == (CHECK_VIOLATION, "slot_status_known")


def test_a_cancelled_appointment_needs_a_reason_and_a_time(world) -> None:
    appointment = world["appointment"]()
    assert rejected("UPDATE scheduling_appointment SET status = 'cancelled' WHERE id = %s", [appointment.pk]) == (
        CHECK_VIOLATION,
        "appointment_cancel_has_reason",
    )
    no_time = "UPDATE scheduling_appointment SET status = 'cancelled', cancel_reason = 'ill' WHERE id = %s"
    assert rejected(no_time, [appointment.pk]) == (CHECK_VIOLATION, "appointment_cancel_has_reason")
    sql(
        "UPDATE scheduling_appointment SET status = 'cancelled', cancel_reason = 'ill', cancelled_at = now() "
        "WHERE id = %s",
        [appointment.pk],
    )
    appointment.refresh_from_db()
    assert appointment.status == "cancelled"


def test_appointment_and_hold_times_and_vocabularies_are_checked(world) -> None:
    appointment = world["appointment"]()
    checks = [
        ('UPDATE scheduling_appointment SET "end" = start WHERE id = %s', "appointment_end_after_start"),
        ("UPDATE scheduling_appointment SET status = 'done' WHERE id = %s", "appointment_status_known"),
        ("UPDATE scheduling_appointment SET version = 0 WHERE id = %s", "appointment_version_positive"),
    ]
    for statement, name in checks:
        assert rejected(statement, [appointment.pk]) == (CHECK_VIOLATION, name)
    hold = world["hold"](at(60))
    assert rejected('UPDATE scheduling_hold SET "end" = start WHERE id = %s', [hold.pk]) == (
        CHECK_VIOLATION,
        "hold_end_after_start",
    )
    assert rejected("UPDATE scheduling_hold SET status = 'kept' WHERE id = %s", [hold.pk]) == (
        CHECK_VIOLATION,
        "hold_status_known",
    )


def test_the_appointment_event_log_rejects_update_and_delete(world) -> None:
    appointment = world["appointment"]()
    event = AppointmentEvent.objects.create(appointment=appointment, type="booked", to_status="booked")
    state, message = rejected("UPDATE scheduling_appointmentevent SET type = 'forged' WHERE id = %s", [event.pk])
    assert state == INSUFFICIENT_PRIVILEGE
    assert "append-only: UPDATE rejected" in message
    state, message = rejected("DELETE FROM scheduling_appointmentevent WHERE id = %s", [event.pk])
    assert state == INSUFFICIENT_PRIVILEGE
    assert "append-only: DELETE rejected" in message
    # Appending stays possible, and the original row is untouched.
    AppointmentEvent.objects.create(appointment=appointment, type="cancelled", from_status="booked")
    assert list(AppointmentEvent.objects.filter(appointment=appointment).values_list("type", flat=True)) == [
        "booked",
        "cancelled",
    ]


def test_one_accepted_waitlist_offer_per_freed_slot(world, doctor, location) -> None:
    entries = [
        WaitlistEntry.objects.create(
            patient_id=PatientFactory().pk,
            appointment_type_id=world["appointment_type"].pk,
            earliest=T10,
            latest=at(600),
            created_by=world["booker"],
        )
        for _ in range(3)
    ]
    insert_offer = """
        INSERT INTO scheduling_waitlistoffer (id, offer_group, entry_id, appointment_type_id, practitioner_id,
            location_id, schedule_ids, start, "end", status, expires_at, created_at)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())
    """
    group, other_group = uuid.uuid4(), uuid.uuid4()

    def offer(entry: WaitlistEntry, status: str, offer_group: uuid.UUID = group) -> list[Any]:
        return [
            uuid.uuid4(),
            offer_group,
            entry.pk,
            entry.appointment_type_id,
            doctor.pk,
            location.pk,
            [world["schedule"].pk],
            T10,
            at(30),
            status,
            at(60),
        ]

    sql(insert_offer, offer(entries[0], "accepted"))
    sql(insert_offer, offer(entries[1], "taken"))
    sql(insert_offer, offer(entries[2], "taken"))
    assert rejected(insert_offer, offer(entries[1], "accepted")) == (UNIQUE_VIOLATION, "waitlist_offer_one_winner")
    sql(insert_offer, offer(entries[1], "accepted", other_group))  # another freed slot has its own winner
