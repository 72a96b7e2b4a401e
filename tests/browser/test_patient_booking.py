"""Patient self-booking in the browser: the demo patient ``patient2`` (in Tokyo, far from the clinics' zones) books a
video consultation — type, free time, hold, confirm — finds it in My appointments and cancels it with a reason; a
time someone else books between listing and holding is reported as taken, with the free times refreshed; and a
cancelled time offered from the waitlist reaches the open page live and is accepted."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, expect
from pytest_django import DjangoDbBlocker

from ehr.models import Patient, User
from scheduling.models import Appointment, AppointmentType, Hold, Schedule
from scheduling.services.booking import appointment_book, appointment_cancel
from scheduling.services.waitlist import waitlist_join
from tests.browser.conftest import off_loop, sign_in
from tests.support.servers import Daphne

PATIENT = "patient2"
TIME_ZONE = "Asia/Tokyo"
VIDEO = "Video consultation"


@pytest.fixture
def tokyo_page(browser: Browser) -> Iterator[Page]:
    """A browser whose own clock runs in Tokyo (24-hour British English), so local times differ from every clinic's."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id=TIME_ZONE, locale="en-GB")
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def _instant(value: str | None) -> dt.datetime:
    assert value, "the slot has no data-start"
    return dt.datetime.fromisoformat(value)


def _tokyo_clock(instant: dt.datetime) -> str:
    return instant.astimezone(ZoneInfo(TIME_ZONE)).strftime("%H:%M")


@dataclass(frozen=True)
class BookedRow:
    id: int
    status: str
    cancel_reason: str
    practitioner_id: int


def _appointment_of_patient2(start: dt.datetime) -> BookedRow | None:
    row = (
        Appointment.objects.filter(patient__user__username=PATIENT, start=start)
        .values("id", "status", "cancel_reason", "practitioner_id")
        .first()
    )
    return BookedRow(**row) if row else None


def _open_booking(page: Page, server: Daphne) -> None:
    sign_in(page, server.url, PATIENT)
    expect(page.get_by_role("heading", level=1)).to_have_text("My health")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Book", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Book an appointment")
    page.get_by_label(VIDEO).check()
    expect(page.get_by_test_id("time-zone")).to_have_text(f"Times are shown in your time zone, {TIME_ZONE}.")


def test_patient_books_a_video_consultation_and_cancels_it(
    tokyo_page: Page, server: Daphne, django_db_blocker: DjangoDbBlocker
) -> None:
    page = tokyo_page
    _open_booking(page, server)

    # Next week: well outside the 12-hour window in which patients can no longer cancel online.
    page.get_by_role("button", name="Next week").click()
    slot = page.get_by_test_id("slot").first
    expect(slot).to_be_visible()
    start = _instant(slot.get_attribute("data-start"))
    expect(slot).to_contain_text(_tokyo_clock(start))

    slot.click()
    panel = page.get_by_test_id("hold-panel")
    expect(panel).to_be_visible()
    expect(page.get_by_test_id("hold-countdown")).to_have_text(re.compile(r"^[45]:\d\d$"))
    expect(page.get_by_test_id("hold-when")).to_contain_text(_tokyo_clock(start))

    page.get_by_role("button", name="Confirm booking").click()
    expect(page.get_by_test_id("booking-done")).to_contain_text("Your appointment is booked")

    with django_db_blocker.unblock():
        booked = off_loop(lambda: _appointment_of_patient2(start))
    assert booked is not None
    assert booked.status == "booked"

    page.get_by_role("link", name="See my appointments").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My appointments")
    card = page.locator(f'[data-testid="appointment"][data-appointment-id="{booked.id}"]')
    expect(card).to_contain_text(VIDEO)
    expect(card).to_contain_text(_tokyo_clock(start))
    expect(card.get_by_test_id("appointment-status")).to_have_text("Booked")

    card.get_by_role("button", name="Cancel appointment").click()
    card.get_by_label("Reason for cancelling").fill("Feeling better, no longer needed")
    card.get_by_role("button", name="Confirm cancellation").click()
    expect(card.get_by_test_id("appointment-status")).to_have_text("Cancelled")
    expect(page.get_by_test_id("appointments-notice")).to_contain_text("is cancelled")

    with django_db_blocker.unblock():
        cancelled = off_loop(lambda: _appointment_of_patient2(start))
    assert cancelled is not None
    assert (cancelled.id, cancelled.status, cancelled.cancel_reason) == (
        booked.id,
        "cancelled",
        "Feeling better, no longer needed",
    )


def _doctor_option() -> tuple[int, str]:
    schedule = Schedule.objects.select_related("location").get(practitioner__username="doctor")
    assert schedule.practitioner_id is not None
    return schedule.practitioner_id, f"{schedule.name} ({schedule.location.name})"


def _book_for_someone_else(start: dt.datetime, practitioner_id: int) -> None:
    """The front desk books another patient at exactly that time, as happens between a patient's listing and click."""
    appointment_book(
        actor=User.objects.get(username="scheduler"),
        appointment_type_id=AppointmentType.objects.get(code="video-consult").pk,
        patient_id=Patient.objects.get(user__username="patient003").pk,
        start=start,
        practitioner_id=practitioner_id,
    )


def _patient2_holds_at(start: dt.datetime) -> int:
    return Hold.objects.filter(patient__user__username=PATIENT, start=start).count()


def test_a_time_taken_after_listing_is_reported_as_taken_and_the_times_refresh(
    tokyo_page: Page, server: Daphne, django_db_blocker: DjangoDbBlocker
) -> None:
    page = tokyo_page
    with django_db_blocker.unblock():
        doctor_id, option = off_loop(_doctor_option)
    _open_booking(page, server)
    page.get_by_label("Practitioner").select_option(label=option)
    page.get_by_role("button", name="Next week").click()

    slot = page.get_by_test_id("slot").first
    expect(slot).to_be_visible()
    listed = slot.get_attribute("data-start")
    start = _instant(listed)
    assert slot.get_attribute("data-practitioner-id") == str(doctor_id)
    with django_db_blocker.unblock():
        off_loop(lambda: _book_for_someone_else(start, doctor_id))
        holds_before = off_loop(lambda: _patient2_holds_at(start))

    slot.click()
    expect(page.get_by_test_id("booking-problem")).to_contain_text("that time has just been taken by someone else")
    expect(page.get_by_test_id("hold-panel")).to_have_count(0)
    # The refreshed list no longer offers the taken time; the others are still there.
    taken = page.locator(f'[data-testid="slot"][data-start="{listed}"]')
    expect(taken).to_have_count(0)
    expect(page.get_by_test_id("slot").first).to_be_visible()

    with django_db_blocker.unblock():
        assert off_loop(lambda: _patient2_holds_at(start)) == holds_before  # the refused hold left nothing behind


@dataclass(frozen=True)
class WaitingFor:
    appointment_id: int
    start: dt.datetime


def _patient003_books_and_patient2_waits() -> WaitingFor:
    """``patient003`` has doctor's video consultation at 15:00 (the doctor's time) three weeks ahead; ``patient2`` is
    on the waitlist for that doctor around then."""
    schedule = Schedule.objects.get(practitioner__username="doctor")
    zone = ZoneInfo(schedule.time_zone)
    day = (dt.datetime.now(zone) + dt.timedelta(days=21)).date()
    start = dt.datetime.combine(day, dt.time(15, 0), tzinfo=zone).astimezone(dt.UTC)
    video = AppointmentType.objects.get(code="video-consult")
    ref = appointment_book(
        actor=User.objects.get(username="scheduler"),
        appointment_type_id=video.pk,
        patient_id=Patient.objects.get(user__username="patient003").pk,
        start=start,
        practitioner_id=schedule.practitioner_id,
    )
    waiting = Patient.objects.get(user__username=PATIENT)
    waitlist_join(
        actor=User.objects.get(username=PATIENT),
        patient_id=waiting.pk,
        appointment_type_id=video.pk,
        earliest=start - dt.timedelta(hours=2),
        latest=start + dt.timedelta(hours=2),
        practitioner_id=schedule.practitioner_id,
    )
    return WaitingFor(appointment_id=ref.id, start=start)


def _front_desk_cancels(appointment_id: int) -> None:
    appointment_cancel(
        actor=User.objects.get(username="scheduler"), appointment_id=appointment_id, reason="Patient moved away"
    )


def test_a_waitlist_offer_arrives_live_and_the_patient_accepts_it(
    tokyo_page: Page, server: Daphne, django_db_blocker: DjangoDbBlocker
) -> None:
    page = tokyo_page
    with django_db_blocker.unblock():
        waiting = off_loop(_patient003_books_and_patient2_waits)
    sign_in(page, server.url, PATIENT)
    expect(page.get_by_role("heading", level=1)).to_have_text("My health")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="My appointments").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My appointments")
    waitlist = page.get_by_test_id("waitlist")
    expect(waitlist.get_by_test_id("waitlist-entry")).to_contain_text(VIDEO)
    expect(waitlist.get_by_test_id("waitlist-offer")).to_have_count(0)
    expect(page.get_by_test_id("connection-status")).to_contain_text("Live")

    # The page is not reloaded: the offer comes over the patient's own stream (waitlist.offered).
    with django_db_blocker.unblock():
        off_loop(lambda: _front_desk_cancels(waiting.appointment_id))
    offer = waitlist.get_by_test_id("waitlist-offer")
    expect(offer).to_contain_text(_tokyo_clock(waiting.start))
    expect(page.get_by_test_id("appointments-notice")).to_contain_text("A time you were waiting for has become free")

    offer.get_by_role("button", name="Accept").click()
    expect(page.get_by_test_id("appointments-notice")).to_contain_text(f"Booked: {VIDEO}")
    with django_db_blocker.unblock():
        booked = off_loop(lambda: _appointment_of_patient2(waiting.start))
    assert booked is not None
    assert booked.status == "booked"
    card = page.locator(f'[data-testid="appointment"][data-appointment-id="{booked.id}"]')
    expect(card.get_by_test_id("appointment-status")).to_have_text("Booked")
