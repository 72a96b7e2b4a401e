"""Bookings that really race, against the real PostgreSQL: exactly one winner per conflict, a clear refusal naming
the resource for every loser, and nothing partial left behind (docs/concurrency.md).

Each racer is a thread with its own database connection (closed when the thread ends), released together by a
``threading.Barrier``. Some tests go further and *gate* the race: the main thread holds ``LOCK TABLE
scheduling_slot IN SHARE MODE`` while the racers start, and waits (on a condition, via ``pg_locks``) until every
racer is blocked at the slot insert — on that lock, or on the booking lock of a schedule that the racer ahead of it
holds. Every racer has then passed every check made in Python and believes the time is free; the main thread
commits, and the racers insert. What decides those races can only be the exclusion constraint.

The database pool gives a process 10 connections, so a gated race has at most 9 racers (the main thread holds
one); an ungated race may have more, and its racers queue for connections as requests do in a server.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
import time_machine
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from rest_framework.test import APIClient

from ehr.models import Encounter
from scheduling.dto import AppointmentRef, HoldRef
from scheduling.errors import HoldExpired, HoldNotActive, OfferUnavailable, SchedulingError, SlotUnavailable
from scheduling.models import (
    Appointment,
    AppointmentEvent,
    Hold,
    HoldStatus,
    OfferStatus,
    Slot,
    SlotStatus,
    WaitlistOffer,
)
from scheduling.services.booking import (
    SCHEDULE_LOCK_SPACE,
    appointment_book,
    appointment_cancel,
    appointment_reschedule,
    hold_confirm,
    hold_create,
    holds_release_expired,
)
from scheduling.services.series import series_book
from scheduling.services.waitlist import waitlist_join, waitlist_offer_accept
from tests.conftest import csrf_login
from tests.factories import PatientFactory, UserFactory
from tests.factories.scheduling import AppointmentTypeFactory, ScheduleFactory
from tests.scheduling.conftest import NOW
from tests.support.servers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

TUESDAY_10 = dt.datetime(2031, 3, 4, 10, 0, tzinfo=dt.UTC)  # 10:00 in Lisbon, inside the 09-17 hours
JOIN_TIMEOUT = 60
GATE_TIMEOUT = 30


@dataclass
class Outcome:
    """What each racer got: a result, a typed refusal, or (a failure of the test) anything else."""

    won: dict[int, Any] = field(default_factory=dict)
    refused: dict[int, SchedulingError] = field(default_factory=dict)
    crashed: list[tuple[int, BaseException]] = field(default_factory=list)


def _queued_at_slot_insert() -> int:
    """Sessions of this database waiting to insert slots: for the slot table's lock (held by the gate) or for a
    schedule's booking lock (held by the racer ahead of them). pg_locks is live, not a snapshot."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT count(DISTINCT pid) FROM pg_locks
            WHERE NOT granted
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND ((locktype = 'relation' AND relation = 'scheduling_slot'::regclass)
                   OR (locktype = 'advisory' AND classid = %s AND objsubid = 2))
            """,
            [SCHEDULE_LOCK_SPACE],
        )
        return int(cursor.fetchone()[0])


def _sessions() -> list[tuple[Any, ...]]:
    """What the other sessions of this database are doing (for a failure report)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # else, inside a transaction, the view is read once
        cursor.execute(
            """
            SELECT pid, state, wait_event_type, wait_event, left(query, 120) FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid()
            """
        )
        return list(cursor.fetchall())


def race(racers: list[Callable[[], Any]], *, gate: bool = False) -> Outcome:
    """Run every racer in its own thread, all released by one barrier; with ``gate``, also held at the slot
    insert until all of them are there (see the module docstring)."""
    outcome = Outcome()
    barrier = threading.Barrier(len(racers))
    lock = threading.Lock()

    def run(index: int, work: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=JOIN_TIMEOUT)
            result = work()
            with lock:
                outcome.won[index] = result
        except SchedulingError as exc:
            with lock:
                outcome.refused[index] = exc
        except BaseException as exc:  # reported by the test; a racer must not die silently
            with lock:
                outcome.crashed.append((index, exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, work), daemon=True) for i, work in enumerate(racers)]
    if gate:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("LOCK TABLE scheduling_slot IN SHARE MODE")
            for thread in threads:
                thread.start()
            try:
                wait_until(lambda: _queued_at_slot_insert() == len(racers), timeout=GATE_TIMEOUT, what="the gate")
            except TimeoutError:
                raise AssertionError(
                    f"not all {len(racers)} racers reached the slot insert; sessions: {_sessions()!r}; "
                    f"racers done: {outcome!r}"
                ) from None
        # Commit: the SHARE lock goes, and every racer's INSERT runs at once.
    else:
        for thread in threads:
            thread.start()
    for thread in threads:
        thread.join(timeout=JOIN_TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a racer is still running"
    assert outcome.crashed == [], f"racers failed with untyped errors: {outcome.crashed!r}"
    assert len(outcome.won) + len(outcome.refused) == len(racers)
    return outcome


def overlapping_blocking_pairs() -> int:
    """Pairs of blocking, non-override slots of one schedule whose periods overlap: must always be 0."""
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


def book(actor: Any, type_id: int, patient_id: int, start: dt.datetime, doctor_id: int, **kw: Any) -> Callable[[], Any]:
    return lambda: appointment_book(
        actor=actor, appointment_type_id=type_id, patient_id=patient_id, start=start, practitioner_id=doctor_id, **kw
    )


def hold(actor: Any, type_id: int, patient_id: int, start: dt.datetime, doctor_id: int) -> Callable[[], HoldRef]:
    return lambda: hold_create(
        actor=actor, appointment_type_id=type_id, patient_id=patient_id, start=start, practitioner_id=doctor_id
    )


@pytest.fixture
def patients():  # type: ignore[no-untyped-def]
    def make(n: int) -> list[int]:
        registrar = UserFactory(username="race-registrar", roles=["admin"])
        return [PatientFactory(registrar=registrar).pk for _ in range(n)]

    return make


# --- the constraint on its own ----------------------------------------------------------------------------------


def test_raw_concurrent_inserts_of_overlapping_slots_leave_exactly_one(
    scheduler, doctor, doctor_schedule, video_type, patients
):
    """No service, no booking lock: nine sessions INSERT overlapping busy slots for one schedule at the same
    moment. Exactly one row survives. The others fail with an exclusion violation, or — when two inserters each
    find the other's uncommitted row and wait for each other — with a deadlock that PostgreSQL breaks (why the
    services queue inserts per schedule, docs/concurrency.md)."""
    owners = [
        Appointment.objects.create(
            patient_id=pid,
            appointment_type=video_type,
            practitioner=doctor,
            location=doctor_schedule.location,
            modality="video",
            start=TUESDAY_10,
            end=TUESDAY_10 + dt.timedelta(minutes=30),
            booked_by=scheduler,
        )
        for pid in patients(9)
    ]

    def insert(owner: Appointment, offset: int) -> Callable[[], Any]:
        def run() -> str:
            start = TUESDAY_10 + dt.timedelta(minutes=offset)
            try:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "INSERT INTO scheduling_slot (schedule_id, period, status, appointment_id, override) "
                        "VALUES (%s, tstzrange(%s, %s, '[)'), 'busy', %s, false)",
                        [doctor_schedule.pk, start, start + dt.timedelta(minutes=30), owner.pk],
                    )
            except DatabaseError as exc:
                return str(getattr(exc.__cause__, "sqlstate", exc))
            return "inserted"

        return run

    outcome = race([insert(owner, 2 * i) for i, owner in enumerate(owners)], gate=True)

    results = list(outcome.won.values())
    assert results.count("inserted") == 1
    assert set(results) <= {"inserted", "23P01", "40P01"}  # exclusion violation, deadlock detected
    assert Slot.objects.count() == 1
    assert overlapping_blocking_pairs() == 0


# --- one doctor, one time -----------------------------------------------------------------------------------------


def test_twenty_bookers_of_one_doctor_slot_one_wins_nineteen_are_refused_naming_the_doctor(
    frozen_now, scheduler, doctor, doctor_schedule, video_type, patients
):
    ids = patients(20)
    outcome = race([book(scheduler, video_type.pk, pid, TUESDAY_10, doctor.pk) for pid in ids])

    assert len(outcome.won) == 1
    assert len(outcome.refused) == 19
    for refusal in outcome.refused.values():
        assert isinstance(refusal, SlotUnavailable)
        assert (refusal.schedule_id, refusal.schedule_name) == (doctor_schedule.pk, doctor_schedule.name)
    (winner,) = outcome.won.values()
    # The losers wrote nothing: one appointment, one slot, one planned encounter, one event.
    assert list(Appointment.objects.values_list("pk", flat=True)) == [winner.id]
    assert Slot.objects.count() == 1
    assert Encounter.objects.filter(status="planned").count() == 1
    assert AppointmentEvent.objects.count() == 1
    assert overlapping_blocking_pairs() == 0


def test_when_every_racer_has_passed_the_python_checks_the_constraint_alone_decides(
    frozen_now, scheduler, doctor, doctor_schedule, video_type, patients
):
    ids = patients(9)
    outcome = race([book(scheduler, video_type.pk, pid, TUESDAY_10, doctor.pk) for pid in ids], gate=True)

    assert len(outcome.won) == 1
    assert {type(r) for r in outcome.refused.values()} == {SlotUnavailable}
    assert {r.schedule_id for r in outcome.refused.values()} == {doctor_schedule.pk}  # type: ignore[attr-defined]
    assert Appointment.objects.count() == Slot.objects.count() == AppointmentEvent.objects.count() == 1
    assert overlapping_blocking_pairs() == 0


def test_overlapping_different_starts_never_leave_two_overlapping_slots(
    frozen_now, scheduler, doctor, doctor_schedule, video_type, patients
):
    """Starts every 5 minutes from 10:00 to 10:55, 30 minutes each: many conflicts, several possible winners."""
    ids = patients(12)
    starts = [TUESDAY_10 + dt.timedelta(minutes=5 * i) for i in range(12)]
    outcome = race(
        [book(scheduler, video_type.pk, pid, start, doctor.pk) for pid, start in zip(ids, starts, strict=True)]
    )

    assert overlapping_blocking_pairs() == 0
    won: list[AppointmentRef] = list(outcome.won.values())
    # Whichever start wins first, exactly one more non-overlapping start remains (and three never fit).
    assert len(won) == 2
    assert Slot.objects.count() == Appointment.objects.count() == len(won)
    for index, refusal in outcome.refused.items():
        assert isinstance(refusal, SlotUnavailable)
        assert refusal.schedule_id == doctor_schedule.pk
        # Every refusal is justified: the refused time overlaps a booking that won.
        start = starts[index]
        assert any(w.start < start + dt.timedelta(minutes=30) and start < w.end for w in won)


# --- several resources ------------------------------------------------------------------------------------------


@pytest.fixture
def ecg_clinic(location):  # type: ignore[no-untyped-def]
    """Eight doctors at one clinic, an in-person ECG visit needing an exam room and an ECG cart."""
    doctors = [UserFactory(username=f"race-dr-{i}", roles=["practitioner"], locations=[location]) for i in range(8)]
    for d in doctors:
        ScheduleFactory(practitioner=d)
    ecg_type = AppointmentTypeFactory(
        code="race-ecg", modality="in-person", buffer_after_minutes=10, needs=[("room", "exam"), ("equipment", "ecg")]
    )
    return doctors, ecg_type


def test_different_doctors_racing_for_one_room_one_winner_and_no_partial_booking(
    frozen_now, scheduler, location, ecg_clinic, patients
):
    doctors, ecg_type = ecg_clinic
    room = ScheduleFactory(kind="room", category="exam", name="Exam room", location=location)
    ScheduleFactory(kind="equipment", category="ecg", name="ECG cart", location=location)
    ids = patients(len(doctors))
    # Resources chosen by the service (auto-pick): every racer picks the only room and the only cart.
    outcome = race(
        [book(scheduler, ecg_type.pk, pid, TUESDAY_10, d.pk) for pid, d in zip(ids, doctors, strict=True)], gate=True
    )

    assert len(outcome.won) == 1
    for refusal in outcome.refused.values():
        assert isinstance(refusal, SlotUnavailable)
        assert (refusal.schedule_id, refusal.schedule_name) == (room.pk, "Exam room")
    (winner,) = outcome.won.values()
    assert len(winner.resources) == 3
    # Every loser's doctor was free, yet none of them kept a slot: all or nothing.
    assert Slot.objects.count() == 3
    assert set(Slot.objects.values_list("appointment_id", flat=True)) == {winner.id}
    assert Appointment.objects.count() == Encounter.objects.count() == AppointmentEvent.objects.count() == 1
    assert overlapping_blocking_pairs() == 0


def test_auto_picked_rooms_and_carts_are_shared_out_one_set_per_winner(
    frozen_now, scheduler, location, ecg_clinic, patients
):
    """Two rooms and two carts for eight racing doctors: a racer that loses the first room or cart retries with
    the next free one, so exactly two bookings win, each with its own room and cart."""
    doctors, ecg_type = ecg_clinic
    for n in (1, 2):
        ScheduleFactory(kind="room", category="exam", name=f"Exam room {n}", location=location)
        ScheduleFactory(kind="equipment", category="ecg", name=f"ECG cart {n}", location=location)
    ids = patients(len(doctors))
    outcome = race(
        [book(scheduler, ecg_type.pk, pid, TUESDAY_10, d.pk) for pid, d in zip(ids, doctors, strict=True)], gate=True
    )

    assert len(outcome.won) == 2
    assert {type(r) for r in outcome.refused.values()} == {SlotUnavailable}
    rooms = {r.name for w in outcome.won.values() for r in w.resources if r.kind == "room"}
    carts = {r.name for w in outcome.won.values() for r in w.resources if r.kind == "equipment"}
    assert rooms == {"Exam room 1", "Exam room 2"}
    assert carts == {"ECG cart 1", "ECG cart 2"}
    assert Slot.objects.count() == 6
    assert Appointment.objects.count() == 2
    assert overlapping_blocking_pairs() == 0


def test_types_listing_their_resources_in_different_orders_do_not_deadlock(
    frozen_now, scheduler, location, ecg_clinic, patients
):
    """One type needs (room, cart), another (cart, room): slots are inserted in one global order (schedule id),
    so racers of the two types wait for each other in line instead of deadlocking."""
    doctors, room_first = ecg_clinic
    cart_first = AppointmentTypeFactory(
        code="race-ecg-reversed", modality="in-person", needs=[("equipment", "ecg"), ("room", "exam")]
    )
    room = ScheduleFactory(kind="room", category="exam", name="Exam room", location=location)
    cart = ScheduleFactory(kind="equipment", category="ecg", name="ECG cart", location=location)
    ids = patients(len(doctors))
    outcome = race(
        [
            book(scheduler, (room_first if i % 2 else cart_first).pk, pid, TUESDAY_10, d.pk)
            for i, (pid, d) in enumerate(zip(ids, doctors, strict=True))
        ],
        gate=True,
    )

    assert len(outcome.won) == 1
    assert {type(r) for r in outcome.refused.values()} == {SlotUnavailable}
    assert {r.schedule_id for r in outcome.refused.values()} <= {room.pk, cart.pk}  # type: ignore[attr-defined]
    assert Slot.objects.count() == 3
    assert overlapping_blocking_pairs() == 0


# --- holds ------------------------------------------------------------------------------------------------------


def test_holds_and_bookings_racing_for_one_slot_leave_exactly_one_reservation(
    frozen_now, scheduler, patient_user, patient, doctor, doctor_schedule, video_type, patients
):
    ids = patients(5)
    racers = [hold(patient_user, video_type.pk, patient.pk, TUESDAY_10, doctor.pk)] * 4 + [
        book(scheduler, video_type.pk, pid, TUESDAY_10, doctor.pk) for pid in ids
    ]
    outcome = race(racers, gate=True)

    assert len(outcome.won) == 1
    assert {type(r) for r in outcome.refused.values()} == {SlotUnavailable}
    assert Slot.objects.filter(status__in=["busy", "busy-tentative"]).count() == 1
    (winner,) = outcome.won.values()
    if isinstance(winner, HoldRef):
        # The holder confirms: the tentative slot becomes the appointment's, with no moment unreserved.
        assert Appointment.objects.count() == 0
        booked = hold_confirm(actor=patient_user, hold_id=winner.id)
        slot = Slot.objects.get()
        assert (slot.status, slot.appointment_id) == (SlotStatus.BUSY, booked.id)
    else:
        assert Hold.objects.filter(status=HoldStatus.ACTIVE).count() == 0
        assert Slot.objects.get().appointment_id == winner.id
    # Losing holds left no hold rows behind either (their transaction rolled back whole).
    assert Hold.objects.count() == (1 if isinstance(winner, HoldRef) else 0)


def test_a_hold_confirmed_twice_at_once_books_one_appointment(
    frozen_now, patient_user, patient, doctor, doctor_schedule, video_type
):
    """A double click: two confirmations of one hold race. One books; the other is refused as the hold is no
    longer active, and its appointment, encounter and event roll back with it."""
    held = hold(patient_user, video_type.pk, patient.pk, TUESDAY_10, doctor.pk)()
    outcome = race([lambda: hold_confirm(actor=patient_user, hold_id=held.id)] * 2)

    assert len(outcome.won) == 1
    assert [type(r) for r in outcome.refused.values()] == [HoldNotActive]
    (booked,) = outcome.won.values()
    assert list(Appointment.objects.values_list("pk", flat=True)) == [booked.id]
    assert Encounter.objects.filter(status="planned").count() == AppointmentEvent.objects.count() == 1
    consumed = Hold.objects.get()
    assert (consumed.status, consumed.appointment_id) == (HoldStatus.CONSUMED, booked.id)
    slot = Slot.objects.get()
    assert (slot.status, slot.appointment_id, slot.hold_id) == (SlotStatus.BUSY, booked.id, None)


def test_an_expired_hold_is_taken_by_exactly_one_racer_while_its_owner_and_the_sweeper_race_too(
    scheduler, patient_user, patient, doctor, doctor_schedule, video_type, patients
):
    ids = patients(8)
    with time_machine.travel(NOW, tick=True) as traveller:
        held = hold(patient_user, video_type.pk, patient.pk, TUESDAY_10, doctor.pk)()
        traveller.shift(dt.timedelta(minutes=6))  # past the five-minute hold
        racers = [book(scheduler, video_type.pk, pid, TUESDAY_10, doctor.pk) for pid in ids]
        racers.append(lambda: hold_confirm(actor=patient_user, hold_id=held.id))
        racers.append(lambda: holds_release_expired())
        outcome = race(racers)

    owner, sweeper = len(ids), len(ids) + 1
    assert isinstance(outcome.refused.get(owner), HoldExpired)
    assert sweeper in outcome.won  # the sweep never fails, whatever it found left to do
    bookings = [w for i, w in outcome.won.items() if i < len(ids)]
    assert len(bookings) == 1
    assert {type(r) for i, r in outcome.refused.items() if i != owner} == {SlotUnavailable}
    assert Hold.objects.get(pk=held.id).status == HoldStatus.EXPIRED
    assert not Slot.objects.filter(status="busy-tentative").exists()
    assert Slot.objects.get().appointment_id == bookings[0].id


# --- the claim: a booking takes its time first, in a transaction of its own ------------------------------------


def _waiting_for_encounter_table() -> list[int]:
    """Backends of this database waiting for a lock on the EHR's encounter table (held by the test)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT pid FROM pg_locks
            WHERE NOT granted AND locktype = 'relation' AND relation = 'ehr_encounter'::regclass
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """
        )
        return [pid for (pid,) in cursor.fetchall()]


class _Booking(threading.Thread):
    """One booking in its own thread and connection; ``result`` or ``error`` when it ends."""

    def __init__(self, work: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.work = work
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.work()
        except BaseException as exc:  # examined by the test
            self.error = exc
        finally:
            connection.close()


def _wait_for(condition: Callable[[], bool], *, what: str, booking: _Booking) -> None:
    """Wait until ``condition`` holds (it reads live lock state; no sleeping as synchronisation); else fail with what
    ``booking`` got and what every session of the database is doing."""
    try:
        wait_until(condition, timeout=GATE_TIMEOUT, what=what)
    except TimeoutError:
        raise AssertionError(f"never came to pass: {what}; {booking.error!r}; {_sessions()!r}") from None


def _start_booking_held_at_its_ehr_write(work: Callable[[], Any]) -> tuple[_Booking, int]:
    """Start ``work`` while the caller holds a lock on the encounter table; return once it waits there, past its
    committed claim, with its backend's pid. The caller must be inside a transaction that took the lock."""
    with connection.cursor() as cursor:
        cursor.execute("LOCK TABLE ehr_encounter IN SHARE ROW EXCLUSIVE MODE")
    booking = _Booking(work)
    booking.start()
    _wait_for(lambda: bool(_waiting_for_encounter_table()), what="the booking waits at its EHR write", booking=booking)
    (pid,) = _waiting_for_encounter_table()
    return booking, pid


def test_a_racer_is_refused_at_once_while_the_winners_booking_is_still_being_written(
    frozen_now, scheduler, doctor, doctor_schedule, video_type, patients
):
    """The winner's claim on the time commits before its EHR writes: a racer is refused, naming the doctor, while
    the winner still waits (on a lock the test holds) to write its encounter; then the winner completes."""
    first, second = patients(2)
    with transaction.atomic():
        winner, _pid = _start_booking_held_at_its_ehr_write(
            book(scheduler, video_type.pk, first, TUESDAY_10, doctor.pk)
        )
        # Visible to everyone already: the claim, a tentative slot owned by an active hold.
        assert Slot.objects.filter(schedule=doctor_schedule, status=SlotStatus.BUSY_TENTATIVE).count() == 1
        loser = _Booking(book(scheduler, video_type.pk, second, TUESDAY_10, doctor.pk))
        loser.start()
        loser.join(timeout=JOIN_TIMEOUT)
        assert not loser.is_alive(), "the racer waited for the winner's booking"
        assert isinstance(loser.error, SlotUnavailable)
        assert loser.error.schedule_id == doctor_schedule.pk
        assert winner.is_alive()  # still held at its encounter
    winner.join(timeout=JOIN_TIMEOUT)
    assert winner.error is None
    assert isinstance(winner.result, AppointmentRef)
    slot = Slot.objects.get()
    assert (slot.status, slot.appointment_id, slot.hold_id) == (SlotStatus.BUSY, winner.result.id, None)
    assert Hold.objects.count() == 0  # the claim became the booking
    assert Appointment.objects.get().patient_id == first
    assert Encounter.objects.filter(status="planned").count() == 1


@pytest.mark.parametrize("stop", ["pg_cancel_backend", "pg_terminate_backend"])
def test_a_booking_that_fails_after_its_claim_gives_the_time_back_and_writes_nothing(
    stop, frozen_now, scheduler, doctor, doctor_schedule, video_type, patients
):
    """A booking whose EHR write fails, its statement cancelled (as a statement timeout would) or its database
    session killed, withdraws its claim (over a fresh connection if need be): nothing of it remains, and the time is
    free for the next booking at once."""
    first, second = patients(2)
    with transaction.atomic():
        failing, pid = _start_booking_held_at_its_ehr_write(
            book(scheduler, video_type.pk, first, TUESDAY_10, doctor.pk)
        )
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {stop}(%s)", [pid])
        failing.join(timeout=JOIN_TIMEOUT)
    assert not failing.is_alive()
    assert isinstance(failing.error, DatabaseError)
    assert Slot.objects.count() == Hold.objects.count() == Appointment.objects.count() == 0
    assert Encounter.objects.count() == AppointmentEvent.objects.count() == 0

    booked = appointment_book(
        actor=scheduler,
        appointment_type_id=video_type.pk,
        patient_id=second,
        start=TUESDAY_10,
        practitioner_id=doctor.pk,
    )
    assert Slot.objects.get().appointment_id == booked.id


_CRASHING_BOOKER = """
import datetime as dt, os, sys
import django, time_machine
django.setup()
from ehr.models import User
from scheduling.services.booking import appointment_book
with time_machine.travel(dt.datetime.fromisoformat(sys.argv[1]), tick=True):
    appointment_book(actor=User.objects.get(pk=int(sys.argv[2])), appointment_type_id=int(sys.argv[3]),
                     patient_id=int(sys.argv[4]), start=dt.datetime.fromisoformat(sys.argv[5]),
                     practitioner_id=int(sys.argv[6]))
"""


def test_the_claim_of_a_booking_whose_process_died_blocks_the_time_until_it_expires(
    scheduler, doctor, doctor_schedule, video_type, patients
):
    """A worker killed mid-booking (SIGKILL: no chance to withdraw) leaves its claim: the time stays taken for
    ``SCHEDULING_BOOKING_CLAIM_SECONDS``, then the next booking releases the expired claim and takes the time."""
    first, second, third = patients(3)
    database = connection.settings_dict
    credentials = quote(database["USER"], safe="") + (
        ":" + quote(database["PASSWORD"], safe="") if database["PASSWORD"] else ""
    )
    host = quote(database["HOST"] or "127.0.0.1", safe="")  # a socket directory travels percent-encoded
    url = f"postgres://{credentials}@{host}:{database['PORT'] or 5432}/{database['NAME']}"
    argv = [NOW, scheduler.pk, video_type.pk, first, TUESDAY_10, doctor.pk]
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("LOCK TABLE ehr_encounter IN SHARE ROW EXCLUSIVE MODE")
        worker = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _CRASHING_BOOKER,
                *(a.isoformat() if isinstance(a, dt.datetime) else str(a) for a in argv),
            ],
            env={**os.environ, "DATABASE_URL": url, "DATABASE_POOL": "false"},
            cwd=settings.BASE_DIR,
        )
        try:
            wait_until(
                lambda: bool(_waiting_for_encounter_table()), timeout=GATE_TIMEOUT, what="the worker's EHR write"
            )
        finally:
            worker.kill()
            worker.wait(timeout=JOIN_TIMEOUT)
    claim = Hold.objects.get()
    assert (claim.status, claim.patient_id, claim.created_by_id) == (HoldStatus.ACTIVE, first, scheduler.pk)
    assert Appointment.objects.count() == 0
    with time_machine.travel(NOW, tick=True) as traveller:
        with pytest.raises(SlotUnavailable):
            appointment_book(
                actor=scheduler,
                appointment_type_id=video_type.pk,
                patient_id=second,
                start=TUESDAY_10,
                practitioner_id=doctor.pk,
            )
        traveller.shift(dt.timedelta(seconds=settings.SCHEDULING_BOOKING_CLAIM_SECONDS + 1))
        booked = appointment_book(
            actor=scheduler,
            appointment_type_id=video_type.pk,
            patient_id=third,
            start=TUESDAY_10,
            practitioner_id=doctor.pk,
        )
    assert Hold.objects.get(pk=claim.pk).status == HoldStatus.EXPIRED
    slot = Slot.objects.get()
    assert (slot.status, slot.appointment_id) == (SlotStatus.BUSY, booked.id)


# --- a recurring series against single bookings -----------------------------------------------------------------

_GATE_SPACE = 7719  # an advisory lock space of this test's own


@pytest.fixture
def stream_gate():  # type: ignore[no-untyped-def]
    """A gate on the realtime event table: once armed for a stream, inserting that stream's event waits for an
    advisory lock the test holds (``_GATE_SPACE``, 1). The stream counters a transaction takes in the same
    statement (``core.realtime``: in stream-name order, the board's first) are then already held."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            CREATE FUNCTION race_test_gate() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_advisory_xact_lock_shared({_GATE_SPACE}, 1);
                RETURN NEW;
            END $$
            """
        )

    def arm(stream: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TRIGGER race_test_gate BEFORE INSERT ON core_streamevent FOR EACH ROW "
                f"WHEN (NEW.stream = '{stream}') EXECUTE FUNCTION race_test_gate()"
            )

    try:
        yield arm
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER IF EXISTS race_test_gate ON core_streamevent")
            cursor.execute("DROP FUNCTION race_test_gate()")


def _blocked_by(pid: int) -> list[int]:
    """Backends waiting for a lock that ``pid`` holds (from pg_locks, which is live; pg_stat_activity would be a
    snapshot taken once per transaction)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT pid FROM pg_locks WHERE NOT granted AND %s = ANY(pg_blocking_pids(pid))", [pid])
        return [blocked for (blocked,) in cursor.fetchall()]


def _waiting_at_gate() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_locks WHERE NOT granted AND locktype = 'advisory' AND classid = %s AND objid = 1",
            [_GATE_SPACE],
        )
        return [pid for (pid,) in cursor.fetchall()]


def test_a_series_picking_another_room_for_a_later_occurrence_does_not_deadlock_with_a_booking_of_that_room(
    frozen_now, scheduler, location, doctor, doctor_schedule, patients, stream_gate
):
    """A series books its occurrences in one transaction, and its auto-picked room may differ from one occurrence
    to the next. A single booking of the second room (another doctor, another day) holds that room's booking lock
    until it records its event, which takes the board's stream counter. The series must not hold that counter
    while it still has booking locks to take: here it is held, by the test's gate, after its first event; then
    the single booking runs up to wherever the series blocks it. Both must then complete, with no deadlock broken
    by PostgreSQL (a spurious 409 for the series, or a 500 for the booking)."""
    other_doctor = UserFactory(username="race-dr-other", roles=["practitioner"], locations=[location])
    ScheduleFactory(practitioner=other_doctor)
    room_a = ScheduleFactory(kind="room", category="exam", name="Exam room A", location=location)
    room_b = ScheduleFactory(kind="room", category="exam", name="Exam room B", location=location)
    exam = AppointmentTypeFactory(code="race-exam", modality="in-person", needs=[("room", "exam")])
    series_patient, blocker, single = patients(3)
    first, second = dt.datetime(2031, 3, 10, 9, tzinfo=dt.UTC), dt.datetime(2031, 3, 17, 9, tzinfo=dt.UTC)
    # Room B is taken at the first occurrence and room A at the second, so the series picks A, then B.
    book(scheduler, exam.pk, blocker, first, other_doctor.pk, resource_ids=[room_b.pk])()
    book(scheduler, exam.pk, blocker, second, other_doctor.pk, resource_ids=[room_a.pk])()
    stream_gate(f"user:{doctor.pk}")  # the series' practitioner's stream: after the board's counter

    series = _Booking(
        lambda: series_book(
            actor=scheduler,
            appointment_type_id=exam.pk,
            patient_id=series_patient,
            practitioner_id=doctor.pk,
            first_start_local=dt.datetime(2031, 3, 10, 9),  # noqa: DTZ001 -- wall clock in Lisbon
            time_zone="Europe/Lisbon",
            rrule="FREQ=WEEKLY;COUNT=2",
        )
    )
    single_booking = _Booking(book(scheduler, exam.pk, single, TUESDAY_10, other_doctor.pk, resource_ids=[room_b.pk]))
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, 1)", [_GATE_SPACE])
        series.start()
        _wait_for(lambda: bool(_waiting_at_gate()), what="the series waits at the gate", booking=series)
        (series_pid,) = _waiting_at_gate()
        single_booking.start()
        _wait_for(
            lambda: bool(_blocked_by(series_pid)),
            what="the single booking waits for the series",
            booking=single_booking,
        )
    # The gate opens.
    series.join(timeout=JOIN_TIMEOUT)
    single_booking.join(timeout=JOIN_TIMEOUT)
    assert not series.is_alive()
    assert not single_booking.is_alive()
    assert series.error is None, repr(series.error)
    assert single_booking.error is None, repr(single_booking.error)
    rooms = [{r.name for r in occurrence.resources if r.kind == "room"} for occurrence in series.result.occurrences]
    assert rooms == [{"Exam room A"}, {"Exam room B"}]
    assert {r.name for r in single_booking.result.resources if r.kind == "room"} == {"Exam room B"}
    assert Appointment.objects.count() == 5
    assert overlapping_blocking_pairs() == 0
    # The series' events were recorded after all its bookings, still one per occurrence and in their order.
    series_events = AppointmentEvent.objects.filter(appointment__series_id=series.result.id).order_by("id")
    assert [(e.appointment_id, e.type) for e in series_events] == [(o.id, "booked") for o in series.result.occurrences]


# --- changes ----------------------------------------------------------------------------------------------------


def test_two_reschedules_swapping_times_both_fail_cleanly_and_leave_both_as_they_were(
    frozen_now, scheduler, doctor, doctor_schedule, video_type, patients
):
    """A moves to B's time while B moves to A's: each waits for the other's release, PostgreSQL breaks the cycle,
    and neither may win (the other's time is still taken when each checks). Both get a clear 409."""
    first, second = patients(2)
    a = book(scheduler, video_type.pk, first, TUESDAY_10, doctor.pk)()
    b = book(scheduler, video_type.pk, second, TUESDAY_10 + dt.timedelta(minutes=30), doctor.pk)()

    def move(ref: AppointmentRef, to: dt.datetime) -> Callable[[], Any]:
        return lambda: appointment_reschedule(
            actor=scheduler, appointment_id=ref.id, expected_version=ref.version, start=to, reason="swap"
        )

    outcome = race([move(a, b.start), move(b, a.start)])

    assert outcome.won == {}
    for refusal in outcome.refused.values():
        assert isinstance(refusal, SlotUnavailable)
        assert refusal.schedule_id == doctor_schedule.pk
    assert [(x.start, x.version) for x in Appointment.objects.order_by("start")] == [(a.start, 1), (b.start, 1)]
    assert Slot.objects.filter(status="busy").count() == 2
    assert overlapping_blocking_pairs() == 0


def test_cancelling_and_rebooking_race_never_overlaps(
    frozen_now, scheduler, doctor, doctor_schedule, video_type, patients
):
    """While one booking is cancelled, others try to take its time: they wait for the cancellation's outcome;
    at most one of them gets the freed time."""
    owner, *others = patients(9)
    booked = book(scheduler, video_type.pk, owner, TUESDAY_10, doctor.pk)()
    cancel = lambda: appointment_cancel(  # noqa: E731 - a racer
        actor=scheduler, appointment_id=booked.id, expected_version=booked.version, reason="patient called"
    )
    outcome = race([cancel] + [book(scheduler, video_type.pk, pid, TUESDAY_10, doctor.pk) for pid in others])

    assert 0 in outcome.won
    assert len(outcome.won) <= 2
    assert {type(r) for r in outcome.refused.values()} <= {SlotUnavailable}
    assert overlapping_blocking_pairs() == 0
    assert Slot.objects.filter(status="busy").count() == len(outcome.won) - 1


def test_waitlisted_patients_accepting_one_freed_slot_at_once_one_gets_it(
    frozen_now, scheduler, doctor, doctor_schedule, video_type, patients
):
    owner, *waiting = patients(6)
    booked = book(scheduler, video_type.pk, owner, TUESDAY_10, doctor.pk)()
    for pid in waiting:
        waitlist_join(
            actor=scheduler,
            patient_id=pid,
            appointment_type_id=video_type.pk,
            earliest=NOW,
            latest=NOW + dt.timedelta(days=7),
        )
    appointment_cancel(actor=scheduler, appointment_id=booked.id, reason="patient called")
    offers = list(WaitlistOffer.objects.all())
    assert len(offers) == 5

    def accept(offer_id: Any) -> Callable[[], Any]:
        return lambda: waitlist_offer_accept(actor=scheduler, offer_id=offer_id)

    outcome = race([accept(o.pk) for o in offers])

    assert len(outcome.won) == 1
    assert {type(r) for r in outcome.refused.values()} == {OfferUnavailable}
    assert WaitlistOffer.objects.filter(status=OfferStatus.ACCEPTED).count() == 1
    assert WaitlistOffer.objects.filter(status=OfferStatus.TAKEN).count() == 4
    assert Slot.objects.filter(status="busy").count() == 1
    assert overlapping_blocking_pairs() == 0


# --- over HTTP --------------------------------------------------------------------------------------------------


def test_over_http_one_201_and_every_loser_a_409_naming_the_doctor(
    frozen_now, scheduler, doctor, doctor_schedule, video_type, patients
):
    ids = patients(8)
    clients = []
    for _ in ids:
        client = APIClient(enforce_csrf_checks=True)
        assert csrf_login(client, scheduler.username).status_code == 200
        clients.append(client)

    def post(client: APIClient, pid: int) -> Callable[[], Any]:
        return lambda: client.post(
            "/api/v1/scheduling/appointments/",
            {
                "appointment_type_id": video_type.pk,
                "patient_id": pid,
                "start": TUESDAY_10.isoformat(),
                "practitioner_id": doctor.pk,
            },
            format="json",
            HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
        )

    outcome = race([post(c, pid) for c, pid in zip(clients, ids, strict=True)])

    responses = list(outcome.won.values())
    assert sorted(r.status_code for r in responses) == [201] + [409] * 7
    for response in responses:
        if response.status_code == 409:
            body = response.json()
            assert body["code"] == "slot_unavailable"
            assert body["conflicting_resource"] == {"schedule_id": doctor_schedule.pk, "name": doctor_schedule.name}
    assert Appointment.objects.count() == Slot.objects.count() == 1
