"""Recurring appointments on the scheduler calendar, as the front desk books and ends them: a weekly series of video
consultations with doctor3 (Hilltop Virtual Clinic, America/Chicago) booked from the booking dialog's "Repeat",
seen week by week on the calendar, then "this and later" visits cancelled from the second visit's side panel; and
a series refused because one visit's time is taken, the refusal naming that visit with everything typed kept.

The calendar is shown in clinic time, so its rows are Chicago wall-clock times whatever zone the browser is in.
The days are five to seven weeks ahead and at times no other test uses, so other tests' bookings do not collide.
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
CLINIC_ZONE = ZoneInfo("America/Chicago")


class RunDb(Protocol):
    def __call__(self, fn: Callable[[], T]) -> T: ...


@dataclass(frozen=True)
class PatientRow:
    id: int
    name: str
    mrn: str


@dataclass(frozen=True)
class Visit:
    id: int
    series_id: int | None
    start: dt.datetime
    status: str
    cancel_reason: str


@pytest.fixture
def run_db(server: Daphne, django_db_blocker: DjangoDbBlocker) -> RunDb:
    """Run ORM work for a test (committed, so the server sees it) off Playwright's event loop."""

    def run(fn: Callable[[], T]) -> T:
        with django_db_blocker.unblock():
            return off_loop(fn)

    return run


def _day(days_ahead: int) -> dt.date:
    return (timezone.now().astimezone(CLINIC_ZONE) + dt.timedelta(days=days_ahead)).date()


def _doctor3_schedule_id() -> int:
    from scheduling.models import Schedule

    return Schedule.objects.get(practitioner__username="doctor3").pk


def _patient(username: str) -> PatientRow:
    from ehr.models import Patient

    p = Patient.objects.get(user__username=username)
    return PatientRow(p.pk, p.display_name, p.mrn)


def _visits(patient_id: int, since: dt.date) -> list[Visit]:
    """The patient's appointments from ``since`` on (Chicago dates), in start order."""
    from scheduling.models import Appointment

    start = dt.datetime.combine(since, dt.time(0), tzinfo=CLINIC_ZONE)
    return [
        Visit(a.pk, a.series_id, a.start, a.status, a.cancel_reason)
        for a in Appointment.objects.filter(patient_id=patient_id, start__gte=start).order_by("start")
    ]


def _book_single(username: str, start: dt.datetime) -> None:
    """A single video consultation with doctor3, booked by the demo scheduler through the real service."""
    from ehr.models import Patient, User
    from scheduling.models import AppointmentType
    from scheduling.services.booking import appointment_book

    appointment_book(
        actor=User.objects.get(username="scheduler"),
        appointment_type_id=AppointmentType.objects.get(code="video-consult").pk,
        patient_id=Patient.objects.get(user__username=username).pk,
        start=start,
        practitioner_id=User.objects.get(username="doctor3").pk,
    )


def _open_calendar(page: Page, server: Daphne, schedule_id: int, day: dt.date) -> None:
    page.set_viewport_size({"width": 1280, "height": 1000})
    sign_in(page, server.url, "scheduler")
    expect(page.get_by_role("heading", level=1)).to_have_text("Scheduling")
    page.goto(f"{server.url}/schedule/calendar?schedule={schedule_id}&date={day.isoformat()}&view=day&tz=clinic")
    expect(page.get_by_role("heading", level=1)).to_have_text("Calendar")
    expect(page.get_by_test_id("calendar-zone")).to_contain_text("America/Chicago, clinic time")
    expect(page.locator(".fc-toolbar-title")).to_contain_text(str(day.day))
    # Live updates on (joining the board stream fetches once more) and nothing being fetched: the grid stays put.
    expect(page.get_by_test_id("calendar-live")).to_have_text("Updates live")
    expect(page.get_by_test_id("calendar")).to_have_attribute("aria-busy", "false")


def _lane(page: Page, hour: int, minute: int = 0) -> Locator:
    """The time grid's row of a wall-clock time (rows are half hours)."""
    return page.locator(f'td.fc-timegrid-slot-lane[data-time="{hour:02d}:{minute:02d}:00"]')


def _select(page: Page, hour: int, minute: int, until_hour: int, until_minute: int) -> None:
    """Drag down the day's grid from one wall-clock time to just before another, as a hand would, selecting it.
    (The calendar is first scrolled to the top of the window, so the pointer is never near its edge.)"""
    page.get_by_test_id("calendar").evaluate(
        "element => window.scrollTo(0, element.getBoundingClientRect().top + window.scrollY - 80)"
    )
    top = _lane(page, hour, minute).bounding_box()
    bottom = _lane(page, until_hour, until_minute).bounding_box()
    assert top is not None
    assert bottom is not None
    x = top["x"] + top["width"] - 8  # near the right edge: a free strip, so the press selects rather than drags
    page.mouse.move(x, top["y"] + 3)
    page.mouse.down()
    page.mouse.move(x, top["y"] + 6, steps=3)
    page.mouse.move(x, bottom["y"] - 3, steps=12)
    page.mouse.up()


def _fill_booking(page: Page, patient: PatientRow, visits: int) -> Locator:
    """Open the booking dialog's Repeat and fill a weekly series of ``visits`` for ``patient``."""
    dialog = page.get_by_role("dialog", name="Book an appointment")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Find the patient").fill(patient.name)
    dialog.get_by_role("radio", name=re.compile(re.escape(patient.mrn))).check()
    expect(dialog.get_by_test_id("booking-patient")).to_contain_text(patient.name)
    dialog.get_by_label("Appointment type").select_option(label="Video consultation (30 min)")
    expect(dialog.get_by_label("Practitioner")).to_have_value(re.compile(r"\d+"))
    dialog.get_by_label("Repeat weekly (book a series)").check()
    dialog.get_by_label("Number of visits").fill(str(visits))
    return dialog


def _weekday(day: dt.date) -> str:
    return f"{day:%a}"  # "Tue": the calendar's short weekday names (en-US browser)


def _calendar_events(page: Page, name: str) -> Locator:
    return page.locator(".fc-timegrid-event", has_text=name)


def test_scheduler_books_a_weekly_series_and_cancels_this_and_later_visits(
    page: Page, server: Daphne, run_db: RunDb
) -> None:
    first_day = _day(38)
    days = [first_day + dt.timedelta(weeks=n) for n in range(3)]
    schedule_id = run_db(_doctor3_schedule_id)
    patient = run_db(lambda: _patient("patient033"))

    _open_calendar(page, server, schedule_id, first_day)
    _select(page, 13, 30, 14, 0)
    dialog = _fill_booking(page, patient, 3)

    # The preview lists the three dates, each at 1:30 PM Chicago time (the same wall-clock time every week).
    preview = dialog.get_by_test_id("series-preview")
    expect(preview.get_by_role("heading")).to_have_text(f"3 visits · Every week on {_weekday(first_day)}, 3 visits")
    expect(preview).to_contain_text("Times in America/Chicago (clinic time).")
    items = preview.get_by_role("listitem")
    expect(items).to_have_count(3)
    for index, day in enumerate(days):
        expect(items.nth(index)).to_contain_text(f"{day:%b} {day.day}, {day.year}")
        expect(items.nth(index)).to_contain_text(re.compile(r"1:30\s?PM"))
    dialog.get_by_role("button", name="Book 3 visits").click()

    expect(page.get_by_test_id("calendar-message")).to_contain_text(f"Booked a series of 3 visits for {patient.name}")
    expect(dialog).to_be_hidden()

    # Week by week on the calendar: one visit in each of the three weeks.
    expect(_calendar_events(page, patient.name)).to_have_count(1)
    page.get_by_role("button", name="Week", exact=True).click()
    for week in range(3):
        if week:
            page.get_by_role("button", name="Next week").click()
        expect(page.locator(f'.fc-col-header-cell[data-date="{days[week].isoformat()}"]')).to_be_visible()
        events = _calendar_events(page, patient.name)
        expect(events).to_have_count(1)
        expect(events).to_contain_text("Video consultation")
        expect(events).to_contain_text(re.compile(r"1:30"))

    booked = run_db(lambda: _visits(patient.id, first_day))
    assert [v.status for v in booked] == ["booked", "booked", "booked"]
    assert booked[0].series_id is not None
    assert {v.series_id for v in booked} == {booked[0].series_id}
    local = [v.start.astimezone(CLINIC_ZONE) for v in booked]
    assert [t.date() for t in local] == days
    assert {t.time() for t in local} == {dt.time(13, 30)}

    # The second visit: back one week, open it, cancel it and the later one.
    page.get_by_role("button", name="Previous week").click()
    expect(page.locator(f'.fc-col-header-cell[data-date="{days[1].isoformat()}"]')).to_be_visible()
    expect(page.get_by_test_id("calendar")).to_have_attribute("aria-busy", "false")
    _calendar_events(page, patient.name).click()
    panel = page.get_by_test_id("appointment-panel")
    expect(panel.get_by_test_id("appointment-series")).to_contain_text("Part of a series · visit 2 of 3")
    expect(panel.get_by_role("button", name="Cancel this visit only")).to_be_visible()
    panel.get_by_role("button", name="Cancel this and later visits").click()
    expect(panel.get_by_test_id("series-cancel-visits")).to_have_text(
        "Cancels these 2 visits; earlier visits stay as they are:"
    )
    panel.get_by_label("Reason for cancelling these visits").fill("Treatment plan changed")
    panel.get_by_role("button", name="Cancel these visits").click()

    expect(panel).to_contain_text("Cancelled 2 visits of the series.")
    expect(panel.get_by_test_id("appointment-status")).to_have_text("Cancelled")
    expect(_calendar_events(page, patient.name)).to_have_count(0)  # cancelled visits are hidden by default

    after = run_db(lambda: _visits(patient.id, first_day))
    assert [(v.id, v.status) for v in after] == [
        (booked[0].id, "booked"),
        (booked[1].id, "cancelled"),
        (booked[2].id, "cancelled"),
    ]
    assert [v.cancel_reason for v in after[1:]] == ["Treatment plan changed", "Treatment plan changed"]


def test_a_refused_series_names_the_visit_and_why_and_keeps_the_form(page: Page, server: Daphne, run_db: RunDb) -> None:
    first_day = _day(40)
    taken_day = first_day + dt.timedelta(weeks=1)
    schedule_id = run_db(_doctor3_schedule_id)
    patient = run_db(lambda: _patient("patient034"))
    run_db(lambda: _book_single("patient035", dt.datetime.combine(taken_day, dt.time(8, 0), tzinfo=CLINIC_ZONE)))

    _open_calendar(page, server, schedule_id, first_day)
    _select(page, 8, 0, 8, 30)
    dialog = _fill_booking(page, patient, 3)
    dialog.get_by_label("Comment (optional)").fill("Weekly check-in")
    dialog.get_by_role("button", name="Book 3 visits").click()

    error = dialog.get_by_test_id("booking-error")
    named = rf"^2nd visit, {_weekday(taken_day)}, {taken_day:%b} {taken_day.day}, 8:00\s?AM: .+ is already booked\."
    expect(error).to_contain_text(re.compile(named))
    expect(error).to_contain_text("Nothing was booked.")
    expect(dialog.get_by_test_id("series-visit-2")).to_contain_text("refused")
    # Everything typed is still there, ready to change and try again.
    expect(dialog.get_by_test_id("booking-patient")).to_contain_text(patient.name)
    expect(dialog.get_by_label("Comment (optional)")).to_have_value("Weekly check-in")
    expect(dialog.get_by_label("Repeat weekly (book a series)")).to_be_checked()
    expect(dialog.get_by_label("Number of visits")).to_have_value("3")

    assert run_db(lambda: _visits(patient.id, first_day)) == []
