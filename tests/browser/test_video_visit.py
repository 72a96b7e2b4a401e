"""Video visits in two real browsers: check-in, device check, waiting room, admit, WebRTC through the visit socket
(and through a real coturn), chat, the note, the end of the visit and what it changes elsewhere."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.utils import timezone
from playwright.sync_api import Browser, BrowserContext, Page, expect

from ehr.models import ClinicalNote, Encounter, Patient, User
from scheduling.errors import SlotUnavailable
from scheduling.models import Appointment, AppointmentType
from scheduling.services.booking import appointment_book, appointment_cancel
from telehealth.models import Visit
from tests.browser.conftest import off_loop, sign_in
from tests.support.servers import Daphne

VIDEO_TIMEOUT_MS = 20_000


@dataclass(frozen=True)
class Booked:
    appointment_id: int
    patient_name: str


def _book_video_soon(patient_username: str, doctor_username: str) -> Booked:
    """A video appointment with the doctor starting within the next hour (so check-in is open), booked as the
    scheduler with an override reason: browser tests run at any hour, also outside the demo's working hours."""
    scheduler = User.objects.get(username="scheduler")
    doctor = User.objects.get(username=doctor_username)
    patient = Patient.objects.get(user__username=patient_username)
    video = AppointmentType.objects.get(code="video-consult")
    first = (timezone.now() + dt.timedelta(minutes=10)).replace(second=0, microsecond=0)
    first -= dt.timedelta(minutes=first.minute % 5)
    for step in range(10):
        try:
            ref = appointment_book(
                actor=scheduler,
                appointment_type_id=video.pk,
                patient_id=patient.pk,
                start=first + dt.timedelta(minutes=5 * step),
                practitioner_id=doctor.pk,
                override_reason="Browser test of a video visit",
            )
        except SlotUnavailable:
            continue
        return Booked(appointment_id=ref.id, patient_name=patient.given_name)
    raise AssertionError("no start free for a test video visit in the next hour")


def _give_back(appointment_id: int) -> None:
    """Cancel what a failed test left booked, so later tests find the doctor free."""
    appointment = Appointment.objects.get(pk=appointment_id)
    if appointment.status in {"booked", "arrived", "checked-in"} and appointment.visit_started_at is None:
        appointment_cancel(
            actor=User.objects.get(username="scheduler"), appointment_id=appointment_id, reason="Browser test done"
        )


@contextmanager
def _signed_in(browser: Browser, server: Daphne, *usernames: str) -> Iterator[list[Page]]:
    contexts: list[BrowserContext] = []
    try:
        pages = []
        for username in usernames:
            ctx = browser.new_context(viewport={"width": 1400, "height": 900}, timezone_id="America/New_York")
            ctx.set_default_timeout(10_000)
            contexts.append(ctx)
            page = ctx.new_page()
            sign_in(page, server.url, username)
            expect(page.get_by_role("navigation", name="Main")).to_be_visible()
            pages.append(page)
        yield pages
    finally:
        for ctx in contexts:
            ctx.close()


def _check_in(page: Page, server: Daphne, appointment_id: int) -> str:
    """The patient's whole check-in: consent, intake, device check (fake camera and microphone, coturn reachable),
    then the waiting room. Returns the visit id from the waiting room's address."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="My appointments").click()
    page.locator(f'[data-testid="check-in"][data-appointment-id="{appointment_id}"]').get_by_role(
        "button", name="Check in"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Check in")
    page.get_by_label("I consent to this video visit").check()
    page.get_by_label("What is the reason for your visit?").fill("A cough for a week")
    page.get_by_role("group", name=re.compile("somewhere private")).get_by_label("Yes").check()
    page.get_by_role("button", name="Check in").click()
    expect(page.get_by_test_id("checked-in")).to_be_visible()

    page.get_by_role("button", name="Run device check").click()
    expect(page.get_by_test_id("device-camera")).to_have_attribute("data-state", "pass", timeout=VIDEO_TIMEOUT_MS)
    expect(page.get_by_test_id("device-microphone")).to_have_attribute("data-state", "pass")
    expect(page.get_by_test_id("device-turn")).to_have_attribute("data-state", "pass", timeout=VIDEO_TIMEOUT_MS)
    page.get_by_role("button", name="Continue to waiting room").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Waiting room")
    match = re.search(r"/visits/([0-9a-f-]{36})/waiting", page.url)
    assert match, page.url
    return match.group(1)


def _frames_decoded(page: Page) -> None:
    """Wait until this browser has decoded video frames from the other (the page's getStats summary)."""
    page.wait_for_function(
        "() => Number(document.querySelector('[data-testid=frames-decoded]')?.textContent?.trim()) > 0",
        timeout=VIDEO_TIMEOUT_MS,
    )


def _open_clinic(page: Page) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Virtual clinic").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Virtual clinic")


def _queue_entry(page: Page, name: str):  # type: ignore[no-untyped-def]
    return page.get_by_test_id("my-queue").get_by_test_id("queue-entry").filter(has_text=name)


def test_patient_and_doctor_complete_a_video_visit_that_reaches_the_record_and_the_board(
    browser: Browser, server: Daphne, django_db_blocker
) -> None:  # type: ignore[no-untyped-def]
    with django_db_blocker.unblock():
        booked = off_loop(lambda: _book_video_soon("patient", "doctor"))
    try:
        with _signed_in(browser, server, "patient", "doctor", "scheduler") as (patient, doctor, desk):
            desk.get_by_role("navigation", name="Main").get_by_role("link", name="Live board").click()
            expect(desk.get_by_role("heading", level=1)).to_have_text("Live board")
            card = f"board-card-{booked.appointment_id}"

            visit_id = _check_in(patient, server, booked.appointment_id)
            expect(patient.get_by_test_id("queue-position")).to_contain_text("1")
            expect(desk.get_by_test_id("board-lane-arrived").get_by_test_id(card)).to_be_visible()

            _open_clinic(doctor)
            entry = _queue_entry(doctor, booked.patient_name)
            expect(entry).to_be_visible()
            expect(entry.get_by_test_id("queue-ready")).to_contain_text("Ready")
            expect(entry).to_contain_text("A cough for a week")
            entry.get_by_role("button", name="Admit").click()

            # The doctor lands on the visit; the patient's waiting room follows on its own.
            expect(doctor).to_have_url(re.compile(f"/visits/{visit_id}$"))
            expect(patient).to_have_url(re.compile(f"/visits/{visit_id}$"), timeout=VIDEO_TIMEOUT_MS)
            _frames_decoded(doctor)
            _frames_decoded(patient)
            expect(desk.get_by_test_id("board-lane-in-visit").get_by_test_id(card)).to_be_visible()

            # Chat both ways.
            patient.get_by_test_id("visit-chat").get_by_label("Message").fill("Can you hear me?")
            patient.get_by_test_id("visit-chat").get_by_role("button", name="Send").click()
            expect(doctor.get_by_test_id("visit-chat")).to_contain_text("Can you hear me?")
            doctor.get_by_test_id("visit-chat").get_by_label("Message").fill("Yes, clearly.")
            doctor.get_by_test_id("visit-chat").get_by_role("button", name="Send").click()
            expect(patient.get_by_test_id("visit-chat")).to_contain_text("Yes, clearly.")

            # The SOAP note beside the video saves itself into the encounter.
            note = doctor.get_by_test_id("visit-note")
            note.get_by_label("Subjective").fill("Dry cough for seven days, no fever.")
            expect(note).to_contain_text("Saved")

            doctor.get_by_label("Summary for the patient (optional)").fill("Rest and drink fluids.")
            doctor.get_by_role("button", name="End visit").click()
            expect(patient.get_by_role("heading", level=1)).to_have_text("Visit summary", timeout=VIDEO_TIMEOUT_MS)
            expect(patient.get_by_test_id("visit-summary-text")).to_contain_text("Rest and drink fluids.")
            expect(desk.get_by_test_id("board-lane-done").get_by_test_id(card)).to_be_visible()

        def record() -> tuple[str, str, int | None, str, str]:
            visit = Visit.objects.get(pk=visit_id)
            appointment = Appointment.objects.get(pk=booked.appointment_id)
            encounter = Encounter.objects.get(pk=visit.encounter_id)
            note_text = ClinicalNote.objects.get(encounter_id=encounter.pk).subjective
            return visit.status, appointment.status, encounter.duration_seconds, encounter.modality, note_text

        with django_db_blocker.unblock():
            visit_status, appointment_status, duration, modality, note_text = off_loop(record)
        assert (visit_status, appointment_status, modality) == ("finished", "fulfilled", "virtual")
        assert duration is not None
        assert duration > 0  # the visit lasted seconds: chat, a note
        assert note_text == "Dry cough for seven days, no fever."
    finally:
        with django_db_blocker.unblock():
            off_loop(lambda: _give_back(booked.appointment_id))
