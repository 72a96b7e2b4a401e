"""The scheduler calendar, as the front desk uses it: drag an appointment to a new time, book by selecting a time,
block time on a resource, see a booking made elsewhere appear and cancel it; and the weekly-hours editor.

Each test works on its own day a few weeks ahead (and the hours test on its own room), so the bookings of other
tests and of the demo do not get in the way. The calendar is shown in the clinic's time (America/New_York), so
the grid's rows are the clinic's wall-clock times whatever zone the browser is in.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import Locator, Page, expect
from pytest_django import DjangoDbBlocker

from tests.browser.conftest import off_loop, sign_in
from tests.support.servers import Daphne

T = TypeVar("T")
CLINIC_ZONE = ZoneInfo("America/New_York")


@dataclass(frozen=True)
class Booked:
    id: int
    version: int
    patient_name: str


class RunDb(Protocol):
    def __call__(self, fn: Callable[[], T]) -> T: ...


@pytest.fixture
def run_db(server: Daphne, django_db_blocker: DjangoDbBlocker) -> RunDb:
    """Run ORM work for a test (committed, so the server sees it) off Playwright's event loop."""

    def run(fn: Callable[[], T]) -> T:
        with django_db_blocker.unblock():
            return off_loop(fn)

    return run


def _day(days_ahead: int) -> dt.date:
    return (timezone.now().astimezone(CLINIC_ZONE) + dt.timedelta(days=days_ahead)).date()


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=CLINIC_ZONE)


def _doctor2_schedule_id() -> int:
    from scheduling.models import Schedule

    return Schedule.objects.get(practitioner__username="doctor2").pk


def _book(patient_username: str, start: dt.datetime) -> Booked:
    """A video consultation with doctor2, booked by the demo scheduler through the real service."""
    from ehr.models import Patient, User
    from scheduling.models import AppointmentType
    from scheduling.services.booking import appointment_book

    patient = Patient.objects.get(user__username=patient_username)
    ref = appointment_book(
        actor=User.objects.get(username="scheduler"),
        appointment_type_id=AppointmentType.objects.get(code="video-consult").pk,
        patient_id=patient.pk,
        start=start,
        practitioner_id=User.objects.get(username="doctor2").pk,
    )
    return Booked(ref.id, ref.version, patient.display_name)


def _patient(username: str) -> tuple[int, str, str]:
    from ehr.models import Patient

    p = Patient.objects.get(user__username=username)
    return p.pk, p.display_name, p.mrn


def _open_calendar(page: Page, server: Daphne, schedule_id: int, day: dt.date) -> None:
    sign_in(page, server.url, "scheduler")
    expect(page.get_by_role("heading", level=1)).to_have_text("Scheduling")
    page.goto(f"{server.url}/schedule/calendar?schedule={schedule_id}&date={day.isoformat()}&view=day&tz=clinic")
    expect(page.get_by_role("heading", level=1)).to_have_text("Calendar")
    expect(page.get_by_test_id("calendar-zone")).to_contain_text("America/New_York, clinic time")
    expect(page.locator(".fc-toolbar-title")).to_contain_text(str(day.day))
    _wait_until_settled(page)


def _wait_until_settled(page: Page) -> None:
    """Live updates are on (joining the board stream fetches the day once more) and nothing is being fetched, so
    the events on screen stay put while the mouse works on them."""
    expect(page.get_by_test_id("calendar-live")).to_have_text("Updates live")
    expect(page.get_by_test_id("calendar")).to_have_attribute("aria-busy", "false")


def _lane(page: Page, hour: int, minute: int = 0) -> Locator:
    """The time grid's row of a wall-clock time (rows are half hours)."""
    return page.locator(f'td.fc-timegrid-slot-lane[data-time="{hour:02d}:{minute:02d}:00"]')


def _grid_to_top(page: Page) -> None:
    """Scroll the page so the calendar starts at the top of the window: a pointer near the window's edge would make
    FullCalendar scroll the page while dragging, and the drop would land later than aimed. (The grid itself shows
    07:00 to about 15:30 without scrolling, so the tests use times in that range.)"""
    page.get_by_test_id("calendar").evaluate(
        "element => window.scrollTo(0, element.getBoundingClientRect().top + window.scrollY - 80)"  # below the header
    )


def _drag(page: Page, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Press, move in small steps (FullCalendar starts a drag after a few pixels) and release, as a hand would."""
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0], start[1] + 3, steps=3)
    page.mouse.move(*end, steps=12)
    page.mouse.up()


def _select(page: Page, hour: int, minute: int, until_hour: int, until_minute: int) -> None:
    """Drag down the time grid from one wall-clock time to just before another, selecting that range."""
    _grid_to_top(page)
    top = _lane(page, hour, minute).bounding_box()
    last = _lane(page, until_hour, until_minute)
    bottom = last.bounding_box()
    assert top is not None
    assert bottom is not None
    # Near the right edge: events leave that strip of the column free, so the press starts a selection, not a drag.
    x = top["x"] + top["width"] - 8
    _drag(page, (x, top["y"] + 3), (x, bottom["y"] - 3))


def test_scheduler_drags_an_appointment_to_a_new_time_and_the_booking_moves(
    page: Page, server: Daphne, run_db: RunDb
) -> None:
    page.set_viewport_size({"width": 1280, "height": 1000})
    day = _day(23)
    schedule_id = run_db(_doctor2_schedule_id)
    booked = run_db(lambda: _book("patient045", _at(day, 10)))

    _open_calendar(page, server, schedule_id, day)
    event = page.locator(".fc-timegrid-event", has_text=booked.patient_name)
    expect(event).to_contain_text("Video consultation")
    expect(event).to_contain_text("Booked")
    _grid_to_top(page)

    source = event.bounding_box()
    target = _lane(page, 12).bounding_box()
    assert source is not None
    assert target is not None
    x = source["x"] + source["width"] / 2
    # Grab just below the event's top edge and let go just below the top of the 12:00 row: two hours later.
    _drag(page, (x, source["y"] + 4), (x, target["y"] + 4))

    dialog = page.get_by_role("dialog", name="Move the appointment?")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_test_id("move-to")).to_contain_text("12:00")
    expect(dialog.get_by_label("Reason for the move")).to_have_value("Moved on the calendar")
    dialog.get_by_role("button", name="Move", exact=True).click()

    expect(page.get_by_test_id("calendar-message")).to_contain_text(f"Moved {booked.patient_name}")
    expect(dialog).to_be_hidden()

    def moved() -> tuple[dt.datetime, int, list[dt.datetime], str]:
        from scheduling.models import Appointment, AppointmentEvent, Slot

        appointment = Appointment.objects.get(pk=booked.id)
        lowers = sorted(s.period.lower for s in Slot.objects.filter(appointment=appointment, status="busy"))
        reason = AppointmentEvent.objects.filter(appointment=appointment, type="rescheduled").get().data["reason"]
        return appointment.start, appointment.version, lowers, reason

    start, version, slot_starts, reason = run_db(moved)
    assert start == _at(day, 12)
    assert version == booked.version + 1
    assert slot_starts == [_at(day, 12)]
    assert reason == "Moved on the calendar"
    # The calendar shows the appointment at its new time after fetching it again.
    expect(event).to_contain_text(re.compile(r"12:00"))


def test_scheduler_books_a_patient_by_selecting_a_time(page: Page, server: Daphne, run_db: RunDb) -> None:
    page.set_viewport_size({"width": 1280, "height": 1000})
    day = _day(24)
    schedule_id = run_db(_doctor2_schedule_id)

    patient_id, name, mrn = run_db(lambda: _patient("patient046"))

    _open_calendar(page, server, schedule_id, day)
    _select(page, 11, 0, 11, 30)

    dialog = page.get_by_role("dialog", name="Book an appointment")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("11:00")
    expect(dialog.get_by_label("Practitioner")).to_have_value(re.compile(r"\d+"))
    dialog.get_by_role("button", name="Book").click()
    expect(dialog).to_contain_text("Find and choose the patient.")

    dialog.get_by_label("Find the patient").fill(name)
    dialog.get_by_role("radio", name=re.compile(re.escape(mrn))).check()
    expect(dialog.get_by_test_id("booking-patient")).to_contain_text(name)
    dialog.get_by_label("Appointment type").select_option(label="Video consultation (30 min)")
    dialog.get_by_label("Comment (optional)").fill("Booked from the calendar")
    dialog.get_by_role("button", name="Book").click()

    expect(page.get_by_test_id("calendar-message")).to_contain_text(f"Booked {name}")
    expect(page.locator(".fc-timegrid-event", has_text=name)).to_contain_text("Video consultation")

    def booked() -> list[tuple[dt.datetime, str, str, str]]:
        from scheduling.models import Appointment

        return [
            (a.start, a.practitioner.username, a.status, a.comment)
            for a in Appointment.objects.filter(patient_id=patient_id, start__date=day).select_related("practitioner")
        ]

    assert run_db(booked) == [(_at(day, 11), "doctor2", "booked", "Booked from the calendar")]


def test_booking_a_taken_time_says_which_resource_is_busy_and_keeps_the_form(
    page: Page, server: Daphne, run_db: RunDb
) -> None:
    page.set_viewport_size({"width": 1280, "height": 1000})
    day = _day(24)
    schedule_id = run_db(_doctor2_schedule_id)
    taken = run_db(lambda: _book("patient047", _at(day, 14)))

    _, name, mrn = run_db(lambda: _patient("patient048"))

    _open_calendar(page, server, schedule_id, day)
    expect(page.locator(".fc-timegrid-event", has_text=taken.patient_name)).to_be_visible()
    # Select the taken half hour beside the appointment already there, and try to book it.
    _select(page, 14, 0, 14, 30)
    dialog = page.get_by_role("dialog", name="Book an appointment")
    dialog.get_by_label("Find the patient").fill(name)
    dialog.get_by_role("radio", name=re.compile(re.escape(mrn))).check()
    dialog.get_by_label("Appointment type").select_option(label="Video consultation (30 min)")
    dialog.get_by_role("button", name="Book").click()

    expect(dialog.get_by_test_id("booking-error")).to_contain_text("is already booked at that time")
    expect(dialog.get_by_test_id("booking-patient")).to_contain_text(name)
    expect(dialog.get_by_label("Appointment type")).to_have_value(re.compile(r"\d+"))
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()


def test_scheduler_blocks_time_sees_it_and_removes_it(page: Page, server: Daphne, run_db: RunDb) -> None:
    page.set_viewport_size({"width": 1280, "height": 1000})
    day = _day(25)
    schedule_id = run_db(_doctor2_schedule_id)

    _open_calendar(page, server, schedule_id, day)
    page.get_by_label("Blocks the time").check()
    _select(page, 12, 0, 13, 0)

    dialog = page.get_by_role("dialog", name=re.compile(r"^Block time for "))
    # 12:00-13:00 in the clinic's zone, written in the browser's locale (12:00 PM to 1:00 PM or 12:00 to 13:00).
    expect(dialog.get_by_test_id("block-span")).to_contain_text(re.compile(r"12:00.*(13|0?1):00"))
    dialog.get_by_label("Reason (optional)").fill("Team meeting")
    dialog.get_by_role("button", name="Block").click()

    expect(page.get_by_test_id("calendar-message")).to_contain_text("Blocked")
    expect(page.locator(".fc-bg-event.calendar-block")).to_contain_text("Blocked: Team meeting")
    item = page.get_by_test_id("block-item")
    expect(item).to_contain_text("Team meeting")

    def blocks() -> list[tuple[dt.datetime, dt.datetime, str, str]]:
        from scheduling.models import AvailabilityException

        return [
            (e.start, e.end, e.kind, e.reason)
            for e in AvailabilityException.objects.filter(schedule_id=schedule_id, start__date=day)
        ]

    assert run_db(blocks) == [(_at(day, 12), _at(day, 13), "unavailable", "Team meeting")]

    item.get_by_role("button", name=re.compile(r"^Remove the block")).click()
    expect(page.get_by_test_id("calendar-message")).to_have_text("The block was removed.")
    expect(page.locator(".fc-bg-event.calendar-block")).to_have_count(0)
    assert run_db(blocks) == []


def test_a_booking_made_elsewhere_appears_live_and_can_be_cancelled_from_its_panel(
    page: Page, server: Daphne, run_db: RunDb
) -> None:
    page.set_viewport_size({"width": 1280, "height": 1000})
    day = _day(26)
    schedule_id = run_db(_doctor2_schedule_id)

    _open_calendar(page, server, schedule_id, day)
    expect(page.locator(".fc-timegrid-event")).to_have_count(0)
    booked = run_db(lambda: _book("patient049", _at(day, 9, 30)))

    event = page.locator(".fc-timegrid-event", has_text=booked.patient_name)
    expect(event).to_contain_text("Booked", timeout=15_000)
    event.click()
    panel = page.get_by_test_id("appointment-panel")
    expect(panel.get_by_role("heading", name=booked.patient_name)).to_be_visible()
    expect(panel.get_by_test_id("appointment-status")).to_have_text("Booked")
    panel.get_by_role("button", name="Cancel appointment").click()
    panel.get_by_label("Reason for cancelling").fill("Patient phoned to cancel")
    panel.get_by_role("button", name="Cancel the appointment").click()

    expect(panel.get_by_test_id("appointment-status")).to_have_text("Cancelled")
    expect(event).to_have_count(0)

    def status() -> tuple[str, str]:
        from scheduling.models import Appointment

        a = Appointment.objects.get(pk=booked.id)
        return a.status, a.cancel_reason

    assert run_db(status) == ("cancelled", "Patient phoned to cancel")


def test_scheduler_edits_weekly_hours_with_errors_shown_per_row(page: Page, server: Daphne, run_db: RunDb) -> None:
    def make_room() -> tuple[int, str]:
        from ehr.models import Location
        from tests.factories.scheduling import ScheduleFactory

        room = ScheduleFactory(
            kind="room",
            name="Calendar test room",
            category="calendar-test",  # no appointment type needs it, so no other test books it
            location=Location.objects.get(name="Riverside Clinic"),
        )
        return room.pk, room.name

    room_id, room_name = run_db(make_room)

    sign_in(page, server.url, "scheduler")
    expect(page.get_by_role("heading", level=1)).to_have_text("Scheduling")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Availability").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Availability")
    page.get_by_label("Clinic").select_option(label="Riverside Clinic")
    page.get_by_label("Resource").select_option(label=room_name)
    expect(page).to_have_url(re.compile(rf"schedule={room_id}"))
    expect(page.get_by_role("heading", name=f"Weekly hours of {room_name}")).to_be_visible()
    expect(page.get_by_label("From, row 1")).to_have_value("09:00")
    expect(page.get_by_label("To, row 5")).to_have_value("17:00")

    # A row ending before it starts is refused on that row, and nothing is saved.
    page.get_by_label("To, row 2").fill("08:00")
    page.get_by_role("button", name="Save weekly hours").click()
    expect(page.get_by_test_id("rule-error-2")).to_have_text("Row 2: The start must be before the end.")
    expect(page.get_by_label("To, row 2")).to_have_attribute("aria-invalid", "true")

    def rules() -> list[tuple[int, str, str]]:
        from scheduling.models import AvailabilityRule

        return [
            (r.weekday, r.start_time.isoformat("minutes"), r.end_time.isoformat("minutes"))
            for r in AvailabilityRule.objects.filter(schedule_id=room_id).order_by("weekday", "start_time")
        ]

    assert run_db(rules) == [(day, "09:00", "17:00") for day in range(5)]

    # Tuesdays end at 13:00, and Saturday mornings are added.
    page.get_by_label("To, row 2").fill("13:00")
    page.get_by_role("button", name="Add hours").click()
    page.get_by_label("Weekday, row 6").select_option(label="Saturday")
    page.get_by_label("From, row 6").fill("08:00")
    page.get_by_label("To, row 6").fill("12:00")
    page.get_by_role("button", name="Save weekly hours").click()
    expect(page.get_by_test_id("availability-saved")).to_have_text(f"Weekly hours of {room_name} saved.")
    expect(page.get_by_test_id("rule-error-2")).to_have_count(0)

    assert run_db(rules) == [
        (0, "09:00", "17:00"),
        (1, "09:00", "13:00"),
        (2, "09:00", "17:00"),
        (3, "09:00", "17:00"),
        (4, "09:00", "17:00"),
        (5, "08:00", "12:00"),
    ]
