"""Multi-party video visits (issue 7) in real Chromium, through the real media relay process (`manage.py relay`)
and a real coturn: the doctor invites an interpreter during a 1:1 visit, the interpreter (anonymous, a browser of
their own) opens the link, passes the device check, waits and is admitted; the visit moves to the relay without a
reload and every browser decodes video from both others. Refused links, removal, a relay crash, and the scheduler
inviting ahead of time.

Video assertions read each participant tile's `data-frames-decoded` (the page's getStats of that participant's
inbound video track, sampled twice a second) and wait until it has risen twice in a row for every remote
participant: video is flowing now, not only at some point."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager

from django.utils import timezone
from playwright.sync_api import Browser, BrowserContext, Page, expect
from pytest_django import DjangoDbBlocker

from tests.browser.conftest import off_loop, sign_in
from tests.browser.test_video_visit import VIDEO_TIMEOUT_MS, _book_video_soon, _frames_decoded, _give_back, _live_visit
from tests.support.servers import Daphne, Relay

GUEST_ID = re.compile(r"^guest-[0-9a-f]{32}$")

# True once every listed participant's tile on this page showed its decoded-frame count rise twice in a row
# (a count that drops — a new connection after a reconnect — starts that participant over).
RISING = """(ids) => {
  const seen = (window.__rising ??= {});
  return ids.every((id) => {
    const tile = document.querySelector(`[data-testid=participant-tile][data-participant-id="${id}"]`);
    if (!tile) return false;
    const now = Number(tile.dataset.framesDecoded);
    const s = (seen[id] ??= { last: now, ups: 0 });
    if (now > s.last) s.ups += 1;
    else if (now < s.last) s.ups = 0;
    s.last = now;
    return s.ups >= 2;
  });
}"""


def _decoding(page: Page, *participant_ids: str) -> None:
    """This browser decodes video from each of these participants now (frames decoded rising)."""
    page.evaluate("() => { window.__rising = {}; }")
    page.wait_for_function(RISING, arg=list(participant_ids), timeout=VIDEO_TIMEOUT_MS, polling=100)


@contextmanager
def _anonymous(browser: Browser) -> Iterator[Page]:
    ctx: BrowserContext = browser.new_context(viewport={"width": 1280, "height": 800})
    ctx.set_default_timeout(10_000)
    try:
        yield ctx.new_page()
    finally:
        ctx.close()


def _invite(doctor: Page, name: str, role: str = "Interpreter") -> str:
    """The doctor invites a guest from the visit page; returns the join link the dialog shows."""
    doctor.get_by_test_id("visit-guests").get_by_role("button", name="Invite guest").click()
    dialog = doctor.get_by_role("dialog", name="Invite a guest")
    dialog.get_by_label("Role").select_option(label=role)
    dialog.get_by_label("Guest's name").fill(name)
    dialog.get_by_role("button", name="Create invitation link").click()
    link = dialog.get_by_label("Join link")
    expect(link).to_have_value(re.compile(r"^https?://.+/visit/join/.+"))
    url = link.input_value()
    dialog.get_by_role("button", name="Done").click()
    return url


def _guest_waits(guest: Page, link: str, *, run_check: bool) -> None:
    """The guest opens the link (the token leaves the address bar), optionally runs the device check, and waits."""
    guest.goto(link)
    expect(guest).to_have_url(re.compile(r"/visit/guest$"))
    expect(guest.get_by_test_id("guest-info")).to_contain_text("Interpreter")
    if run_check:
        guest.get_by_role("button", name="Run device check").click()
        expect(guest.get_by_test_id("device-camera")).to_have_attribute("data-state", "pass", timeout=VIDEO_TIMEOUT_MS)
        expect(guest.get_by_test_id("device-microphone")).to_have_attribute("data-state", "pass")
        expect(guest.get_by_test_id("device-turn")).to_have_attribute("data-state", "pass", timeout=VIDEO_TIMEOUT_MS)
    guest.get_by_role("button", name="Continue").click()
    expect(guest.get_by_test_id("guest-lobby-status")).to_have_text(
        "Waiting for the doctor to let you in…", timeout=VIDEO_TIMEOUT_MS
    )


def _admit(doctor: Page, name: str) -> str:
    """The doctor lets the waiting guest in; returns the guest's participant id."""
    waiting = doctor.get_by_test_id("waiting-guest").filter(has_text=name)
    expect(waiting).to_be_visible(timeout=VIDEO_TIMEOUT_MS)
    participant_id = waiting.get_attribute("data-participant-id") or ""
    assert GUEST_ID.match(participant_id), participant_id
    waiting.get_by_role("button", name=f"Admit {name}").click()
    return participant_id


def _in_relay(page: Page) -> None:
    expect(page.get_by_test_id("call-phase")).to_have_attribute("data-mode", "relay", timeout=VIDEO_TIMEOUT_MS)


@contextmanager
def _three_party(
    browser: Browser, server: Daphne, django_db_blocker: DjangoDbBlocker, doctor_username: str, *, run_check: bool
) -> Iterator[tuple[Page, Page, Page, str]]:
    """A 1:1 visit in progress (direct), then an interpreter invited, waiting and admitted: all three in relay mode.
    Yields (doctor, patient, guest, guest participant id)."""
    with (
        _live_visit(browser, server, django_db_blocker, "patient", doctor_username) as live,
        _anonymous(browser) as guest,
    ):
        doctor, patient = live.doctor, live.patient
        _frames_decoded(doctor)
        _frames_decoded(patient)
        # Marks that only survive if the pages are never reloaded.
        for page in (doctor, patient):
            page.evaluate("() => { window.__sameDocument = true; }")

        link = _invite(doctor, "Ana Ruiz")
        _guest_waits(guest, link, run_check=run_check)
        guest_id = _admit(doctor, "Ana Ruiz")
        for page in (doctor, patient, guest):
            _in_relay(page)
        for page in (doctor, patient):
            assert page.evaluate("() => window.__sameDocument === true"), "the page was reloaded"
        yield doctor, patient, guest, guest_id


def test_an_interpreter_joins_by_link_and_all_three_browsers_decode_both_others_through_the_relay(
    browser: Browser, server: Daphne, relay: Relay, django_db_blocker: DjangoDbBlocker
) -> None:
    with _three_party(browser, server, django_db_blocker, "doctor", run_check=True) as (doctor, patient, guest, gid):
        _decoding(doctor, "patient", gid)
        _decoding(patient, "practitioner", gid)
        _decoding(guest, "practitioner", "patient")
        # Names and roles on the tiles, the guest's own preview, and the active-speaker highlight from the
        # participants' (fake, beeping) microphones.
        expect(patient.locator(f'[data-testid=participant-tile][data-participant-id="{gid}"]')).to_contain_text(
            "Ana Ruiz"
        )
        expect(patient.locator(f'[data-testid=participant-tile][data-participant-id="{gid}"]')).to_contain_text(
            "Interpreter"
        )
        expect(guest.locator("[data-testid=participant-tile][data-self=true]")).to_contain_text("Ana Ruiz (you)")
        for page in (doctor, patient, guest):
            expect(page.locator("[data-testid=participant-tile][data-speaking=true]").first).to_be_visible(
                timeout=VIDEO_TIMEOUT_MS
            )


def test_an_expired_link_and_a_link_used_in_another_browser_are_refused(
    browser: Browser, server: Daphne, django_db_blocker: DjangoDbBlocker
) -> None:
    from ehr.models import User
    from telehealth.models import VisitInvitation
    from telehealth.services.guests import invitation_create

    def invite_two(appointment_id: int) -> tuple[str, str]:
        scheduler = User.objects.get(username="scheduler")
        fresh = invitation_create(actor=scheduler, role="family", name="Sam Lee", appointment_id=appointment_id)
        old = invitation_create(actor=scheduler, role="family", name="Old Link", appointment_id=appointment_id)
        earlier = timezone.now() - dt.timedelta(hours=3)
        VisitInvitation.objects.filter(pk=old.id).update(
            created_at=earlier, expires_at=earlier + dt.timedelta(minutes=5)
        )
        return fresh.url, old.url

    with django_db_blocker.unblock():
        booked = off_loop(lambda: _book_video_soon("patient2", "doctor2"))
        fresh, expired = off_loop(lambda: invite_two(booked.appointment_id))
    try:
        with _anonymous(browser) as page:
            page.goto(f"{server.url}{expired}")
            expect(page.get_by_test_id("guest-error")).to_contain_text("expired")
        with _anonymous(browser) as first:
            first.goto(f"{server.url}{fresh}")
            expect(first).to_have_url(re.compile(r"/visit/guest$"))
            expect(first.get_by_test_id("guest-info")).to_contain_text("Family member")
            # The same browser may come back to it (a reload reads the grant from its session).
            first.reload()
            expect(first.get_by_test_id("guest-info")).to_contain_text("Sam Lee")
            with _anonymous(browser) as second:
                second.goto(f"{server.url}{fresh}")
                expect(second.get_by_test_id("guest-error")).to_contain_text("already been used")
                expect(second.get_by_test_id("guest-info")).to_have_count(0)
    finally:
        with django_db_blocker.unblock():
            off_loop(lambda: _give_back(booked.appointment_id))


def test_a_removed_guest_is_told_and_the_others_stop_receiving_them_but_keep_each_other(
    browser: Browser, server: Daphne, relay: Relay, django_db_blocker: DjangoDbBlocker
) -> None:
    with _three_party(browser, server, django_db_blocker, "doctor2", run_check=False) as (doctor, patient, guest, gid):
        _decoding(patient, "practitioner", gid)
        tile = doctor.locator(f'[data-testid=participant-tile][data-participant-id="{gid}"]')
        tile.get_by_role("button", name="Remove Ana Ruiz").click()
        tile.get_by_role("button", name="Confirm removal").click()

        expect(guest.get_by_test_id("guest-removed")).to_be_visible(timeout=VIDEO_TIMEOUT_MS)
        for page in (doctor, patient):
            expect(page.locator(f'[data-testid=participant-tile][data-participant-id="{gid}"]')).to_have_count(
                0, timeout=VIDEO_TIMEOUT_MS
            )
            expect(page.get_by_test_id("participant-grid")).not_to_have_attribute("data-pcs", re.compile(f"sub:{gid}"))
        _decoding(doctor, "patient")
        _decoding(patient, "practitioner")
        # The removed guest does not come back by reloading.
        guest.reload()
        expect(guest.get_by_test_id("guest-removed")).to_be_visible(timeout=VIDEO_TIMEOUT_MS)


def test_the_relay_killed_mid_visit_and_restarted_every_browser_reconnects_and_video_resumes(
    browser: Browser, server: Daphne, relay: Relay, django_db_blocker: DjangoDbBlocker
) -> None:
    with _three_party(browser, server, django_db_blocker, "doctor3", run_check=False) as (doctor, patient, guest, gid):
        _decoding(guest, "practitioner", "patient")
        for page in (doctor, patient, guest):
            expect(page.get_by_test_id("relay-restarts")).to_have_text("0")

        relay.restart()  # SIGKILL, then a new relay process with no state

        for page in (doctor, patient, guest):
            expect(page.get_by_test_id("relay-restarts")).not_to_have_text("0", timeout=VIDEO_TIMEOUT_MS)
        for page in (doctor, patient, guest):
            expect(page.get_by_test_id("call-phase")).to_have_attribute(
                "data-phase", "connected", timeout=VIDEO_TIMEOUT_MS
            )
        _decoding(doctor, "patient", gid)
        _decoding(patient, "practitioner", gid)
        _decoding(guest, "practitioner", "patient")


def test_the_scheduler_invites_an_interpreter_ahead_of_time_from_the_calendar(
    browser: Browser, server: Daphne, django_db_blocker: DjangoDbBlocker
) -> None:
    from zoneinfo import ZoneInfo

    from scheduling.models import Appointment, Schedule
    from telehealth.models import VisitInvitation

    def where(appointment_id: int) -> tuple[int, dt.date]:
        appointment = Appointment.objects.get(pk=appointment_id)
        schedule = Schedule.objects.get(practitioner_id=appointment.practitioner_id)
        # The calendar's day in the schedule's own zone (tz=clinic), which is not always New York.
        return schedule.pk, appointment.start.astimezone(ZoneInfo(schedule.time_zone)).date()

    with django_db_blocker.unblock():
        booked = off_loop(lambda: _book_video_soon("patient2", "doctor4"))
        schedule_id, day = off_loop(lambda: where(booked.appointment_id))
    try:
        with _anonymous(browser) as page:
            sign_in(page, server.url, "scheduler")
            expect(page.get_by_role("heading", level=1)).to_have_text("Scheduling")
            page.goto(
                f"{server.url}/schedule/calendar?schedule={schedule_id}&date={day.isoformat()}&view=day&tz=clinic"
            )
            expect(page.get_by_role("heading", level=1)).to_have_text("Calendar")
            page.locator(".fc-timegrid-event", has_text=booked.patient_name).first.click()
            panel = page.get_by_test_id("appointment-panel")
            panel.get_by_role("button", name="Invite guest").click()
            dialog = page.get_by_role("dialog", name="Invite a guest")
            dialog.get_by_label("Role").select_option(label="Interpreter")
            dialog.get_by_label("Guest's name").fill("Li Wei")
            dialog.get_by_role("button", name="Create invitation link").click()
            expect(dialog.get_by_label("Join link")).to_have_value(re.compile(r"/visit/join/.+"))
            expect(dialog).to_contain_text("Send this link to Li Wei")

        with django_db_blocker.unblock():
            rows: list[tuple[str, str, object]] = off_loop(
                lambda: list(
                    VisitInvitation.objects.filter(appointment_id=booked.appointment_id).values_list(
                        "role", "name", "visit_id"
                    )
                )
            )
        assert rows == [("interpreter", "Li Wei", None)]
    finally:
        with django_db_blocker.unblock():
            off_loop(lambda: _give_back(booked.appointment_id))


def test_the_doctor_moves_a_two_party_visit_to_the_relay_and_mutes_the_patient(
    browser: Browser, server: Daphne, relay: Relay, django_db_blocker: DjangoDbBlocker
) -> None:
    with _live_visit(browser, server, django_db_blocker, "patient2", "doctor4") as live:
        doctor, patient = live.doctor, live.patient
        _frames_decoded(doctor)
        _frames_decoded(patient)
        for page in (doctor, patient):
            page.evaluate("() => { window.__sameDocument = true; }")

        doctor.get_by_test_id("visit-guests").get_by_role("button", name="Use relay").click()
        for page in (doctor, patient):
            _in_relay(page)
            assert page.evaluate("() => window.__sameDocument === true"), "the page was reloaded"
        expect(doctor.get_by_test_id("relay-mode")).to_be_visible()
        _decoding(doctor, "patient")
        _decoding(patient, "practitioner")

        # Muted by the doctor: the patient's microphone is locked off until the doctor allows it again.
        tile = doctor.locator('[data-testid=participant-tile][data-participant-id="patient"]')
        tile.get_by_role("button", name=re.compile("^Mute ")).click()
        expect(patient.get_by_test_id("muted-by-practitioner")).to_have_text("You were muted by the doctor.")
        expect(patient.get_by_role("button", name="Unmute")).to_be_disabled()
        expect(tile.get_by_test_id("participant-muted")).to_be_visible()
        tile.get_by_role("button", name=re.compile("^Unmute ")).click()
        expect(patient.get_by_test_id("muted-by-practitioner")).to_have_count(0)
        patient.get_by_role("button", name="Unmute").click()
        expect(tile.get_by_test_id("participant-muted")).to_have_count(0)
