"""The live scheduler board: front-desk browsers see each other's changes, and changes made anywhere else, live."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, BrowserContext, Page, expect

from ehr.models import Patient, User
from scheduling.errors import SlotUnavailable
from scheduling.models import Appointment, AppointmentType
from scheduling.services.booking import appointment_book, appointment_cancel
from scheduling.services.demo import DEMO_CLOSE, DEMO_OPEN
from scheduling.services.status import appointment_status_set
from tests.browser.conftest import off_loop, sign_in
from tests.support.servers import Daphne

CLINIC_ZONE = "America/New_York"  # Riverside Clinic, where doctor2 works and the demo nurse too
LIVE_WITHIN_MS = 1_000


def _viewer_zone() -> str:
    """The browsers watch from the clinic's zone. Minutes before New York's midnight a booking made now would be
    tomorrow there; it is still today an hour west, in the demo's other clinic zone, so the browsers watch from
    there instead."""
    ny = ZoneInfo(CLINIC_ZONE)
    now = timezone.now()
    if (now + dt.timedelta(minutes=8)).astimezone(ny).date() == now.astimezone(ny).date():
        return CLINIC_ZONE
    return "America/Chicago"


def _book_later_today(patient_username: str) -> int:
    """Book doctor2 (Riverside) for a demo patient, later today, as the scheduler. Inside the demo hours
    (07:00-21:00 New York) when there is still room for a 30-minute visit; otherwise (late evening, night) a few
    minutes from now with an override reason, which lets staff book outside working hours. Steps past times
    that other bookings already hold (an override is never refused for that)."""
    scheduler = User.objects.get(username="scheduler")
    doctor2 = User.objects.get(username="doctor2")
    patient = Patient.objects.get(user__username=patient_username)
    video = AppointmentType.objects.get(code="video-consult")
    ny = ZoneInfo(CLINIC_ZONE)
    now = timezone.now()
    local_now = now.astimezone(ny)
    opening = dt.datetime.combine(local_now.date(), DEMO_OPEN, tzinfo=ny)
    last_start = dt.datetime.combine(local_now.date(), DEMO_CLOSE, tzinfo=ny) - dt.timedelta(
        minutes=video.duration_minutes
    )
    soon = now + dt.timedelta(minutes=10)
    first = max(soon.replace(minute=soon.minute - soon.minute % 5, second=0, microsecond=0), opening)
    within_hours = first <= last_start
    override = "" if within_hours else "Browser test of the live board outside the demo hours"
    if not within_hours:
        first = (now + dt.timedelta(minutes=3)).replace(second=0, microsecond=0)
    # At most the rest of the day's hours, in 5-minute steps (an override is never refused for a taken time).
    for step in range(12 * 14):
        start = first + dt.timedelta(minutes=5 * step)
        if within_hours and start > last_start:
            break
        try:
            ref = appointment_book(
                actor=scheduler,
                appointment_type_id=video.pk,
                patient_id=patient.pk,
                start=start,
                practitioner_id=doctor2.pk,
                override_reason=override,
            )
        except SlotUnavailable:
            continue
        return ref.id
    raise AssertionError("no free start for doctor2 later today")


def _mark_arrived_elsewhere(appointment_id: int) -> None:
    """A third person (the admin, at another desk) changes the appointment through the service."""
    appointment_status_set(actor=User.objects.get(username="admin"), appointment_id=appointment_id, status="arrived")


def _cancel(appointment_id: int) -> None:
    """Give the test's booking back so that later tests find the time free."""
    appointment = Appointment.objects.get(pk=appointment_id)
    if appointment.status in {"booked", "arrived", "checked-in"}:
        appointment_cancel(
            actor=User.objects.get(username="scheduler"), appointment_id=appointment_id, reason="Browser test done"
        )


@contextmanager
def _boards(browser: Browser, server: Daphne, zone: str, *usernames: str) -> Iterator[list[Page]]:
    """One browser context per user, each signed in with the live board open and its connection live."""
    contexts: list[BrowserContext] = []
    try:
        pages = []
        for username in usernames:
            ctx = browser.new_context(viewport={"width": 1440, "height": 900}, timezone_id=zone)
            ctx.set_default_timeout(10_000)
            contexts.append(ctx)
            page = ctx.new_page()
            sign_in(page, server.url, username)
            expect(page.get_by_role("navigation", name="Main")).to_be_visible()
            page.get_by_role("navigation", name="Main").get_by_role("link", name="Live board").click()
            expect(page.get_by_role("heading", level=1)).to_have_text("Live board")
            expect(page.get_by_role("banner").get_by_test_id("connection-status")).to_have_text("Live")
            expect(page.get_by_text(f"Times in {zone}")).to_be_visible()
            pages.append(page)
        yield pages
    finally:
        for ctx in contexts:
            ctx.close()


def _card_in(page: Page, lane: str, appointment_id: int):  # type: ignore[no-untyped-def]
    return page.get_by_test_id(f"board-lane-{lane}").get_by_test_id(f"board-card-{appointment_id}")


def test_a_booking_and_a_change_made_elsewhere_reach_two_open_boards_within_a_second(
    browser: Browser, server: Daphne, django_db_blocker
) -> None:  # type: ignore[no-untyped-def]
    zone = _viewer_zone()
    with _boards(browser, server, zone, "scheduler", "nurse") as (desk, nurse):
        with django_db_blocker.unblock():
            appointment_id = off_loop(lambda: _book_later_today("patient040"))
        try:
            # The booking appears on both boards (the nurse's without the name: clinicians see names only at their
            # own appointments).
            expect(_card_in(desk, "booked", appointment_id)).to_be_visible()
            expect(_card_in(desk, "booked", appointment_id)).to_contain_text("Samuel Lindqvist")
            expect(_card_in(nurse, "booked", appointment_id)).to_be_visible()

            with django_db_blocker.unblock():
                off_loop(lambda: _mark_arrived_elsewhere(appointment_id))
            deadline = time.monotonic() + LIVE_WITHIN_MS / 1000
            for page in (desk, nurse):
                remaining = max(1, int((deadline - time.monotonic()) * 1000))
                expect(_card_in(page, "arrived", appointment_id)).to_be_visible(timeout=remaining)
            for page in (desk, nurse):
                expect(_card_in(page, "arrived", appointment_id).get_by_test_id("board-wait")).to_contain_text(
                    "Waiting 0:"
                )
                expect(_card_in(page, "booked", appointment_id)).to_have_count(0)
        finally:
            with django_db_blocker.unblock():
                off_loop(lambda: _cancel(appointment_id))


def test_mark_arrived_on_one_board_moves_the_card_on_the_other(
    browser: Browser, server: Daphne, django_db_blocker
) -> None:  # type: ignore[no-untyped-def]
    zone = _viewer_zone()
    with _boards(browser, server, zone, "scheduler", "nurse") as (desk, nurse):
        with django_db_blocker.unblock():
            appointment_id = off_loop(lambda: _book_later_today("patient041"))
        try:
            card = _card_in(desk, "booked", appointment_id)
            expect(_card_in(nurse, "booked", appointment_id)).to_be_visible()
            card.get_by_role("button", name="Mark arrived").click()
            expect(_card_in(desk, "arrived", appointment_id)).to_be_visible()
            expect(_card_in(nurse, "arrived", appointment_id)).to_be_visible(timeout=LIVE_WITHIN_MS)

            # The nurse checks the patient in; the desk sees it.
            _card_in(nurse, "arrived", appointment_id).get_by_role("button", name="Check in").click()
            expect(_card_in(desk, "checked-in", appointment_id)).to_be_visible(timeout=LIVE_WITHIN_MS)
            expect(_card_in(nurse, "checked-in", appointment_id)).to_be_visible()
        finally:
            with django_db_blocker.unblock():
                off_loop(lambda: _cancel(appointment_id))


def test_the_scheduling_home_counts_today_live_and_leads_to_the_board(
    browser: Browser, server: Daphne, django_db_blocker
) -> None:  # type: ignore[no-untyped-def]
    zone = _viewer_zone()
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, timezone_id=zone)
    ctx.set_default_timeout(10_000)
    appointment_id = None
    try:
        page = ctx.new_page()
        sign_in(page, server.url, "scheduler")
        expect(page.get_by_role("heading", level=1)).to_have_text("Scheduling")
        booked = page.get_by_test_id("board-counts").locator('[data-lane="booked"] dd')
        expect(booked).to_have_text(re.compile(r"^\d+$"))
        expect(page.get_by_role("banner").get_by_test_id("connection-status")).to_have_text("Live")
        before = int(booked.inner_text())

        with django_db_blocker.unblock():
            appointment_id = off_loop(lambda: _book_later_today("patient044"))
        expect(booked).to_have_text(str(before + 1))

        page.get_by_role("link", name="Open the live board").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Live board")
        expect(_card_in(page, "booked", appointment_id)).to_be_visible()
        expect(page.get_by_test_id("board-lane-booked").get_by_test_id("board-lane-count")).to_have_text(
            str(before + 1)
        )
    finally:
        ctx.close()
        if appointment_id is not None:
            booked_id = appointment_id
            with django_db_blocker.unblock():
                off_loop(lambda: _cancel(booked_id))


@pytest.fixture
def own_server(demo_data, tmp_path: Path) -> Iterator[Daphne]:  # type: ignore[no-untyped-def]
    proc = Daphne(tmp_path, name="daphne-board")
    yield proc
    proc.stop()


def test_a_board_that_lost_its_connection_shows_what_changed_meanwhile(
    browser: Browser, own_server: Daphne, tmp_path: Path, django_db_blocker
) -> None:  # type: ignore[no-untyped-def]
    """While the server is down nobody can push to the board; once it is back the board subscribes again, reloads
    the day and shows the change it missed."""
    zone = _viewer_zone()
    with _boards(browser, own_server, zone, "scheduler") as (desk,):
        with django_db_blocker.unblock():
            appointment_id = off_loop(lambda: _book_later_today("patient042"))
        try:
            expect(_card_in(desk, "booked", appointment_id)).to_be_visible()
            own_server.stop()
            expect(desk.get_by_test_id("board-offline")).to_be_visible()
            with django_db_blocker.unblock():
                off_loop(lambda: _mark_arrived_elsewhere(appointment_id))
            restarted = Daphne(tmp_path, port=own_server.port, name="daphne-board-restarted")
            try:
                expect(desk.get_by_role("banner").get_by_test_id("connection-status")).to_have_text(
                    "Live", timeout=15_000
                )
                expect(_card_in(desk, "arrived", appointment_id)).to_be_visible()
            finally:
                restarted.stop()
        finally:
            with django_db_blocker.unblock():
                off_loop(lambda: _cancel(appointment_id))
