"""Video visits in two real browsers: check-in, device check, waiting room, admit, WebRTC through the visit socket
(and through a real coturn), chat, the note, the end of the visit and what it changes elsewhere."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.utils import timezone
from playwright.sync_api import Browser, BrowserContext, Page, expect

from ehr.models import ClinicalNote, Encounter, Patient, User
from scheduling.errors import SlotUnavailable
from scheduling.models import Appointment, AppointmentType
from scheduling.services.booking import appointment_book, appointment_cancel
from telehealth.models import CallQualityReport, Visit
from tests.browser.conftest import off_loop, sign_in
from tests.support.servers import Daphne, Turn, wait_until

VIDEO_TIMEOUT_MS = 20_000


@dataclass(frozen=True)
class Booked:
    appointment_id: int
    patient_name: str
    start: dt.datetime


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
        return Booked(appointment_id=ref.id, patient_name=patient.given_name, start=ref.start)
    raise AssertionError("no start free for a test video visit in the next hour")


def _give_back(appointment_id: int) -> None:
    """Cancel what a failed test left booked, so later tests find the doctor free."""
    appointment = Appointment.objects.get(pk=appointment_id)
    if appointment.status in {"booked", "arrived", "checked-in"} and appointment.visit_started_at is None:
        appointment_cancel(
            actor=User.objects.get(username="scheduler"), appointment_id=appointment_id, reason="Browser test done"
        )


def _watching_zone(start: dt.datetime) -> str:
    """Where the browsers watch from: the clinic's New York, unless the visit falls on tomorrow there (booked minutes
    before midnight), then an hour west, where the visit is still today, so today's board shows it."""
    ny, now = ZoneInfo("America/New_York"), timezone.now()
    return "America/New_York" if start.astimezone(ny).date() == now.astimezone(ny).date() else "America/Chicago"


@contextmanager
def _signed_in(
    browser: Browser, server: Daphne, *usernames: str, zone: str = "America/New_York"
) -> Iterator[list[Page]]:
    contexts: list[BrowserContext] = []
    try:
        pages = []
        for username in usernames:
            ctx = browser.new_context(viewport={"width": 1400, "height": 900}, timezone_id=zone)
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
        zone = _watching_zone(booked.start)
        with _signed_in(browser, server, "patient", "doctor", "scheduler", zone=zone) as (patient, doctor, desk):
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


def _checked_in(appointment_id: int, patient_username: str) -> str:
    """Check-in through the services (the screens are covered above): consent, intake, a passed device check."""
    from telehealth.services.visits import visit_check_in, visit_device_check_record

    user = User.objects.get(username=patient_username)
    visit = visit_check_in(
        actor=user,
        appointment_id=appointment_id,
        consent=True,
        answers={"reason": "Follow-up", "private": True},
    )
    checks = {"camera": "pass", "microphone": "pass", "speaker": "pass", "turn": "pass"}
    visit_device_check_record(actor=user, visit_id=str(visit.id), result=checks)
    return str(visit.id)


def _end_if_open(visit_id: str, doctor_username: str) -> None:
    """Leave the doctor free for later tests when an assertion failed mid-visit."""
    from telehealth.services.visits import visit_end

    if Visit.objects.filter(pk=visit_id, status="in-progress").exists():
        visit_end(actor=User.objects.get(username=doctor_username), visit_id=visit_id)


def _admit_from_clinic(doctor: Page, patient_name: str, visit_id: str) -> None:
    _open_clinic(doctor)
    _queue_entry(doctor, patient_name).get_by_role("button", name="Admit").click()
    expect(doctor).to_have_url(re.compile(f"/visits/{visit_id}$"))


@dataclass(frozen=True)
class LiveVisit:
    visit_id: str
    patient: Page
    doctor: Page
    others: list[Page]


@contextmanager
def _live_visit(
    browser: Browser, server: Daphne, django_db_blocker, patient_username: str, doctor_username: str, *others: str
) -> Iterator[LiveVisit]:  # type: ignore[no-untyped-def]
    """A visit in progress: booked and checked in (services), the patient in the waiting room, admitted from the
    doctor's virtual clinic, the patient's page moved to the visit. Extra users are signed in beside them. The
    visit is ended and the appointment given back afterwards, whatever the test did."""
    with django_db_blocker.unblock():
        booked = off_loop(lambda: _book_video_soon(patient_username, doctor_username))
        visit_id = off_loop(lambda: _checked_in(booked.appointment_id, patient_username))
    try:
        with _signed_in(browser, server, patient_username, doctor_username, *others) as (patient, doctor, *rest):
            patient.goto(f"{server.url}/visits/{visit_id}/waiting")
            expect(patient.get_by_test_id("queue-position")).to_contain_text("number 1")
            _admit_from_clinic(doctor, booked.patient_name, visit_id)
            expect(patient).to_have_url(re.compile(f"/visits/{visit_id}$"), timeout=VIDEO_TIMEOUT_MS)
            yield LiveVisit(visit_id, patient, doctor, rest)
    finally:
        with django_db_blocker.unblock():
            off_loop(lambda: _end_if_open(visit_id, doctor_username))
            off_loop(lambda: _give_back(booked.appointment_id))


def test_queue_place_notice_and_messages_reach_the_waiting_patient_live(
    browser: Browser, server: Daphne, django_db_blocker
) -> None:  # type: ignore[no-untyped-def]
    with django_db_blocker.unblock():
        first = off_loop(lambda: _book_video_soon("patient", "doctor2"))
        second = off_loop(lambda: _book_video_soon("patient2", "doctor2"))
        first_visit = off_loop(lambda: _checked_in(first.appointment_id, "patient"))
        second_visit = off_loop(lambda: _checked_in(second.appointment_id, "patient2"))
    try:
        with _signed_in(browser, server, "patient2", "doctor2") as (waiting, doctor):
            waiting.goto(f"{server.url}/visits/{second_visit}/waiting")
            expect(waiting.get_by_test_id("queue-position")).to_contain_text("number 2")
            expect(waiting.get_by_test_id("estimated-wait")).to_be_visible()

            _open_clinic(doctor)
            expect(doctor.get_by_test_id("my-queue").get_by_test_id("queue-entry")).to_have_count(2)

            # A notice to every waiting patient, then a message to this one.
            doctor.get_by_role("textbox", name="Notice").fill("Running 10 minutes late, sorry")
            doctor.get_by_role("button", name="Post notice").click()
            expect(waiting.get_by_test_id("clinic-notice")).to_contain_text("Running 10 minutes late, sorry")
            entry = _queue_entry(doctor, second.patient_name)
            entry.get_by_role("button", name="Message").click()
            entry.get_by_label(re.compile("^Message to")).fill("We will see you shortly.")
            entry.get_by_role("button", name="Send").click()
            expect(waiting.get_by_test_id("visit-chat")).to_contain_text("We will see you shortly.")

            # The patient ahead is admitted: this one moves up, live.
            _queue_entry(doctor, first.patient_name).get_by_role("button", name="Admit").click()
            expect(doctor).to_have_url(re.compile(f"/visits/{first_visit}$"))
            expect(waiting.get_by_test_id("queue-position")).to_contain_text("number 1")
    finally:
        with django_db_blocker.unblock():
            off_loop(lambda: _end_if_open(first_visit, "doctor2"))
            off_loop(lambda: _give_back(second.appointment_id))


def _relay_reports(visit_id: str) -> set[str]:
    """Roles whose latest quality report of the visit says media went through the relay on both ends."""
    latest: dict[str, dict[str, object]] = {}
    for role, stats in (
        CallQualityReport.objects.filter(visit_id=visit_id).order_by("created_at").values_list("role", "stats")
    ):
        latest[role] = stats
    return {
        role
        for role, stats in latest.items()
        if stats.get("local_candidate_type") == "relay" and stats.get("remote_candidate_type") == "relay"
    }


def test_visit_through_the_turn_relay_only_decodes_video_both_ways_and_reports_its_quality(
    browser: Browser, server: Daphne, django_db_blocker
) -> None:  # type: ignore[no-untyped-def]
    with _live_visit(browser, server, django_db_blocker, "patient", "doctor3", "admin") as live:
        visit_id, patient, doctor, (admin,) = live.visit_id, live.patient, live.doctor, live.others

        # Both rejoin with relay forced (iceTransportPolicy "relay"): media must flow through coturn.
        for page in (doctor, patient):
            page.goto(f"{server.url}/visits/{visit_id}?relay=1")
        for page in (doctor, patient):
            _frames_decoded(page)
            expect(page.get_by_test_id("candidate-type")).to_have_text("relay")
            expect(page.get_by_test_id("remote-candidate-type")).to_have_text("relay")

        # Support staff see the visit's call quality, with the relay route, from the reports the browsers sent.
        with django_db_blocker.unblock():
            wait_until(
                lambda: off_loop(lambda: _relay_reports(visit_id)) == {"patient", "practitioner"},
                timeout=VIDEO_TIMEOUT_MS / 1000,
                what="relayed quality reports from both browsers",
            )
        admin.goto(f"{server.url}/admin-console/visit-quality")
        expect(admin.get_by_role("heading", level=1)).to_have_text("Call quality")
        rows = admin.locator(f'[data-testid="quality-row"][data-visit-id="{visit_id}"]')
        expect(rows.filter(has_text="relay → relay")).to_have_count(2)


def test_a_reloaded_page_rejoins_the_visit_and_video_resumes_without_a_new_admit(
    browser: Browser, server: Daphne, django_db_blocker
) -> None:  # type: ignore[no-untyped-def]
    with _live_visit(browser, server, django_db_blocker, "patient2", "doctor3") as live:
        visit_id, patient, doctor = live.visit_id, live.patient, live.doctor
        _frames_decoded(patient)
        _frames_decoded(doctor)
        with django_db_blocker.unblock():
            admitted_at = off_loop(lambda: Visit.objects.get(pk=visit_id).admitted_at)

        patient.reload()
        expect(patient.get_by_test_id("frames-decoded")).to_have_text("0")
        _frames_decoded(patient)
        doctor.reload()
        _frames_decoded(doctor)
        _frames_decoded(patient)
        expect(doctor.get_by_role("button", name="Admit")).to_have_count(0)

        with django_db_blocker.unblock():
            status, again = off_loop(lambda: Visit.objects.values_list("status", "admitted_at").get(pk=visit_id))
        assert status == "in-progress"
        assert again == admitted_at


def test_a_check_in_link_signs_the_patient_in_once_and_is_refused_after(
    browser: Browser, server: Daphne, django_db_blocker
) -> None:  # type: ignore[no-untyped-def]
    from telehealth.services.links import checkin_link_create

    with django_db_blocker.unblock():
        booked = off_loop(lambda: _book_video_soon("patient2", "doctor4"))
        link = off_loop(lambda: checkin_link_create(actor=None, appointment_id=booked.appointment_id))
    try:
        ctx = browser.new_context(viewport={"width": 1280, "height": 800})
        ctx.set_default_timeout(10_000)
        try:
            page = ctx.new_page()
            page.goto(f"{server.url}{link.url}")
            expect(page).to_have_url(re.compile(rf"/visits/check-in/{booked.appointment_id}$"))
            expect(page.get_by_label("I consent to this video visit")).to_be_visible()
        finally:
            ctx.close()

        # The same link in another browser: used already, refused, nobody signed in.
        ctx = browser.new_context(viewport={"width": 1280, "height": 800})
        ctx.set_default_timeout(10_000)
        try:
            page = ctx.new_page()
            page.goto(f"{server.url}{link.url}")
            expect(page.get_by_role("alert")).to_contain_text(re.compile("used|expired|no longer", re.I))
            page.goto(f"{server.url}/patient/appointments")
            expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        finally:
            ctx.close()
    finally:
        with django_db_blocker.unblock():
            off_loop(lambda: _give_back(booked.appointment_id))


def _frames_now(page: Page) -> int:
    return int(page.get_by_test_id("frames-decoded").inner_text().strip())


def _frames_grow(page: Page) -> None:
    """Video keeps arriving: the decoded-frame count passes what it is now."""
    before = _frames_now(page)
    page.wait_for_function(
        f"() => Number(document.querySelector('[data-testid=frames-decoded]')?.textContent?.trim()) > {before}",
        timeout=VIDEO_TIMEOUT_MS,
    )


def test_call_controls_mute_camera_audio_only_and_screen_share_reach_the_other_side(
    browser: Browser, server: Daphne, django_db_blocker
) -> None:  # type: ignore[no-untyped-def]
    with _live_visit(browser, server, django_db_blocker, "patient", "doctor4") as live:
        patient, doctor = live.patient, live.doctor
        _frames_decoded(patient)
        _frames_decoded(doctor)
        phase_on_doctor = doctor.get_by_test_id("call-phase")

        patient.get_by_role("button", name="Mute").click()
        expect(phase_on_doctor).to_contain_text("is muted")
        patient.get_by_role("button", name="Unmute").click()
        expect(phase_on_doctor).not_to_contain_text("is muted")

        doctor.get_by_role("button", name="Turn camera off").click()
        expect(patient.get_by_text("has turned their camera off")).to_be_visible()
        doctor.get_by_role("button", name="Turn camera on").click()
        expect(patient.get_by_text("has turned their camera off")).to_have_count(0)
        _frames_grow(patient)

        # Audio only on a poor connection, and back: the doctor's view of the patient follows.
        patient.get_by_role("button", name="Switch to audio only").click()
        expect(doctor.get_by_text("has turned their camera off")).to_be_visible()
        patient.get_by_role("button", name="Turn video back on").click()
        expect(doctor.get_by_text("has turned their camera off")).to_have_count(0)
        _frames_grow(doctor)

        # Screen share replaces the doctor's camera track; the patient keeps decoding video, then the camera.
        doctor.get_by_role("button", name="Share screen").click()
        expect(patient.get_by_test_id("call-phase")).to_contain_text("is sharing their screen")
        _frames_grow(patient)
        doctor.get_by_role("button", name="Stop sharing").click()
        expect(patient.get_by_test_id("call-phase")).not_to_contain_text("is sharing their screen")
        _frames_grow(patient)


def test_a_waiting_patient_transferred_to_a_colleague_moves_to_their_queue_and_sees_the_new_doctor(
    browser: Browser, server: Daphne, django_db_blocker
) -> None:  # type: ignore[no-untyped-def]
    with django_db_blocker.unblock():
        booked = off_loop(lambda: _book_video_soon("patient2", "doctor2"))
        visit_id = off_loop(lambda: _checked_in(booked.appointment_id, "patient2"))
    try:
        with _signed_in(browser, server, "patient2", "doctor2", "doctor") as (waiting, doctor2, colleague):
            waiting.goto(f"{server.url}/visits/{visit_id}/waiting")
            expect(waiting.get_by_test_id("doctor-status")).to_contain_text("Lindqvist")
            _open_clinic(colleague)
            expect(colleague.get_by_test_id("my-queue").get_by_test_id("queue-entry")).to_have_count(0)

            _open_clinic(doctor2)
            entry = _queue_entry(doctor2, booked.patient_name)
            entry.get_by_role("button", name="Transfer").click()
            entry.get_by_label("Transfer to").select_option(label="Dana Okafor")
            entry.get_by_role("button", name="Confirm transfer").click()

            expect(doctor2.get_by_test_id("my-queue").get_by_test_id("queue-entry")).to_have_count(0)
            expect(_queue_entry(colleague, booked.patient_name)).to_be_visible()
            expect(waiting.get_by_test_id("doctor-status")).to_contain_text("Okafor")
            expect(waiting.get_by_test_id("queue-position")).to_contain_text("number 1")
    finally:
        with django_db_blocker.unblock():
            off_loop(lambda: _give_back(booked.appointment_id))


def test_a_relay_outage_mid_visit_recovers_by_ice_restart(
    browser: Browser, server: Daphne, turn: Turn, django_db_blocker
) -> None:  # type: ignore[no-untyped-def]
    """The network path dies under a running call (coturn, the only path with relay forced, is stopped) and comes
    back: the practitioner's browser restarts ICE and video flows again, with no new admit and no reload."""
    with _live_visit(browser, server, django_db_blocker, "patient2", "doctor3") as live:
        visit_id, patient, doctor = live.visit_id, live.patient, live.doctor
        for page in (doctor, patient):
            page.goto(f"{server.url}/visits/{visit_id}?relay=1")
        for page in (doctor, patient):
            _frames_decoded(page)
            expect(page.get_by_test_id("candidate-type")).to_have_text("relay")
        expect(doctor.get_by_test_id("ice-restarts")).to_have_text("0")

        turn.stop()
        try:
            expect(doctor.get_by_test_id("call-phase")).to_have_attribute(
                "data-phase", "reconnecting", timeout=VIDEO_TIMEOUT_MS
            )
        finally:
            turn.restart()
        for page in (doctor, patient):
            expect(page.get_by_test_id("call-phase")).to_have_attribute(
                "data-phase", "connected", timeout=VIDEO_TIMEOUT_MS
            )
            _frames_grow(page)
        expect(doctor.get_by_test_id("ice-restarts")).not_to_have_text("0")
        with django_db_blocker.unblock():
            status = off_loop(lambda: Visit.objects.values_list("status", flat=True).get(pk=visit_id))
        assert status == "in-progress"
