"""The reminder health screen: a scheduler sees what really happened to reminders sent through the local fake Twilio
and fake SMTP (delivered, undelivered and fallen back to email), resends the failed one, and sees a reminder sent
later appear without refreshing.

The messages are real outbox rows driven by the notifications services: queued with ``message_enqueue_for_patient``,
sent by ``messages_dispatch_due`` through the real Twilio SDK and Django's SMTP backend to the fakes, and settled by
the fake's signed status callbacks, which reach this module's own daphne (its webhook verifies the signature)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from ehr.models import Patient, User
from notifications.models import OutboundMessage
from notifications.selectors import message_health
from notifications.services import message_enqueue_for_patient, messages_dispatch_due
from tests.browser.conftest import off_loop, sign_in
from tests.fakes.smtp_server import FakeSmtp
from tests.fakes.twilio_server import FakeTwilio
from tests.support.servers import Daphne, free_port

SID = "AC" + "7" * 32
TOKEN = "browser-reminders-token"
FROM = "+15005550006"
PATIENT = "patient036"  # a demo patient no other browser test uses
UNDELIVERED = 30005  # Twilio: unknown destination handset


@dataclass(frozen=True)
class Providers:
    twilio: FakeTwilio
    smtp: FakeSmtp
    public_url: str


@pytest.fixture(scope="module")
def providers() -> Iterator[Providers]:
    """The fakes, and this process's settings pointed at them (the dispatcher runs here, in off_loop)."""
    twilio = FakeTwilio(account_sid=SID, auth_token=TOKEN).start()
    smtp = FakeSmtp().start()
    public_url = f"http://127.0.0.1:{free_port()}"
    overridden = override_settings(
        TWILIO_ACCOUNT_SID=SID,
        TWILIO_AUTH_TOKEN=TOKEN,
        TWILIO_FROM_NUMBER=FROM,
        TWILIO_API_BASE=twilio.base_url,
        TWILIO_TIMEOUT_SECONDS=5.0,
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST=smtp.host,
        EMAIL_PORT=smtp.port,
        NOTIFICATIONS_PUBLIC_BASE_URL=public_url,
    )
    overridden.enable()
    try:
        yield Providers(twilio=twilio, smtp=smtp, public_url=public_url)
    finally:
        overridden.disable()
        twilio.stop()
        smtp.stop()


@pytest.fixture(scope="module")
def reminders_server(
    demo_data: None, providers: Providers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Daphne]:
    """A daphne whose public URL is the one the status callbacks are addressed to, with the same Twilio token, so
    the fake's signed callbacks are verified and applied there, as in production."""
    port = int(providers.public_url.rsplit(":", 1)[1])
    env = {
        "TWILIO_ACCOUNT_SID": SID,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_FROM_NUMBER": FROM,
        "TWILIO_API_BASE": providers.twilio.base_url,
        "EMAIL_HOST": providers.smtp.host,
        "EMAIL_PORT": str(providers.smtp.port),
        "NOTIFICATIONS_PUBLIC_BASE_URL": providers.public_url,
    }
    proc = Daphne(tmp_path_factory.mktemp("reminders-server"), port=port, name="daphne-reminders", env=env)
    yield proc
    proc.stop()


def _dispatch_until_idle(twilio: FakeTwilio) -> None:
    """Send everything due and let every status callback land, until nothing more is due (fallbacks queued by the
    callbacks are due at once). Bounded: a dispatcher that never runs dry fails the test."""
    for _ in range(20):
        claimed = messages_dispatch_due(limit=200)
        twilio.wait_callbacks(timeout=15)
        if claimed == 0:
            return
    raise AssertionError("the outbox never ran dry")


def _queue_reminder(patient: Patient, tag: str, key: str) -> str:
    ref = message_enqueue_for_patient(
        patient_id=patient.pk,
        kind="reminder",
        template_key="reminder",
        due_at=timezone.now(),
        context={"first_name": patient.given_name, "practitioner": "Dr Test", "clinic": "Riverside", "when": "soon"},
        source=("browser-test", tag, key),
    )
    assert ref.channel == "sms", "the demo patient's first channel is SMS"
    return ref.id


@dataclass(frozen=True)
class Seeded:
    failed_id: str
    patient_name: str
    phone_tail: str
    totals: dict[str, Any]


def _seed(providers: Providers) -> Seeded:
    """Two reminders delivered, one undelivered by the carrier (which fails it and falls back to an email, sent),
    on top of whatever other tests left due (sent first)."""
    twilio = providers.twilio
    scheduler = User.objects.get(username="scheduler")
    patient = Patient.objects.get(user__username=PATIENT)
    tag = uuid.uuid4().hex[:12]

    _dispatch_until_idle(twilio)
    before = message_health(actor=scheduler, days=14).totals

    twilio.undeliver_next(1, error_code=UNDELIVERED)
    failed_id = _queue_reminder(patient, tag, "reminder:failing")
    _dispatch_until_idle(twilio)
    delivered_ids = [_queue_reminder(patient, tag, f"reminder:{n}") for n in (1, 2)]
    _dispatch_until_idle(twilio)

    rejected = [c for c in twilio.callbacks if c.get("status") != 204]
    assert not rejected, f"status callbacks not applied: {rejected}"
    failed = OutboundMessage.objects.get(pk=failed_id)
    assert (failed.state, failed.last_error_code) == ("failed", str(UNDELIVERED))
    fallback = OutboundMessage.objects.get(fallback_of=failed)
    assert (fallback.channel, fallback.state) == ("email", "sent")
    assert providers.smtp.count_recipient(patient.email) >= 1
    assert set(OutboundMessage.objects.filter(pk__in=delivered_ids).values_list("state", flat=True)) == {"delivered"}

    after = message_health(actor=scheduler, days=14).totals
    # Ours at least: two texts delivered, the fallback email sent; one text failed and fell back. (A demo reminder
    # falling due while this seeds is dispatched by the same calls, so the totals may move by more; the page is
    # compared with these totals, read after the last dispatch.)
    assert after.sent - before.sent >= 3
    assert after.delivered - before.delivered >= 2
    assert after.failed - before.failed >= 1
    assert after.fell_back - before.fell_back >= 1
    return Seeded(
        failed_id=failed_id,
        patient_name=f"{patient.given_name} {patient.family_name}",
        phone_tail=patient.phone[-4:],
        totals={
            "sent": after.sent,
            "delivered": after.delivered,
            "failed": after.failed,
            "fell_back": after.fell_back,
            "delivery_rate": after.delivery_rate,
        },
    )


def _rate_text(rate: float | None) -> str:
    if rate is None:
        return "—"
    percent = round(rate * 1000) / 10
    return f"{percent:g}%"


def _open_reminders(page: Page, server: Daphne) -> None:
    sign_in(page, server.url, "scheduler")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav).to_be_visible()
    nav.get_by_role("link", name="Reminders").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Reminder health")
    expect(page).to_have_url(re.compile(r"/schedule/reminders$"))


def test_scheduler_sees_delivered_failed_and_fallen_back_reminders_and_resends_the_failed_one(
    browser: Browser, reminders_server: Daphne, providers: Providers, django_db_blocker: Any
) -> None:
    with django_db_blocker.unblock():
        seeded = off_loop(lambda: _seed(providers))

    ctx = browser.new_context(viewport={"width": 1440, "height": 900})
    ctx.set_default_timeout(10_000)
    try:
        page = ctx.new_page()
        _open_reminders(page, reminders_server)

        totals = page.get_by_test_id("reminder-totals")
        expect(totals.locator('[data-total="sent"] dd')).to_have_text(str(seeded.totals["sent"]))
        expect(totals.locator('[data-total="delivered"] dd')).to_have_text(str(seeded.totals["delivered"]))
        expect(totals.locator('[data-total="delivery_rate"] dd')).to_have_text(
            _rate_text(seeded.totals["delivery_rate"])
        )
        expect(totals.locator('[data-total="failed"] dd')).to_have_text(str(seeded.totals["failed"]))
        expect(totals.locator('[data-total="fell_back"] dd')).to_have_text(str(seeded.totals["fell_back"]))

        # Today's text-message row counts the failure and the fallback; the email row the fallback email.
        sms_today = page.locator('tr[data-channel="sms"]').first
        expect(sms_today.locator('[data-count="failed"]')).not_to_have_text("0")
        expect(sms_today.locator('[data-count="fell_back"]')).not_to_have_text("0")
        expect(sms_today.locator('[data-count="delivered"]')).not_to_have_text("0")
        email_today = page.locator('tr[data-channel="email"]').first
        expect(email_today.locator('[data-count="sent"]')).not_to_have_text("0")
        # Mail servers send no delivery receipts: no rate is claimed for email.
        expect(email_today.locator('[data-count="rate"]')).to_have_text("No receipts")

        # The period selector asks again.
        page.get_by_label("Period").select_option(label="Last 7 days")
        expect(totals.locator('[data-total="sent"] dd')).to_have_text(str(seeded.totals["sent"]))

        # The failed reminder, newest failure first, with what is known about it.
        row = page.locator(f'tr[data-message-id="{seeded.failed_id}"]')
        expect(row).to_be_visible()
        cells = row.locator("th, td")
        expect(cells.nth(1)).to_contain_text(seeded.patient_name)
        expect(row.get_by_test_id("failure-recipient")).to_have_text(re.compile(rf"^•+{seeded.phone_tail}$"))
        expect(cells.nth(2)).to_have_text("Reminder")
        expect(cells.nth(3)).to_have_text("Text message")
        expect(cells.nth(4)).to_have_text("Failed")
        expect(cells.nth(6)).to_have_text(str(UNDELIVERED))
        expect(cells.nth(7)).to_have_text("Email")

        row.get_by_role("button", name="Resend").click()
        expect(row.get_by_test_id("resend-state")).to_have_text("Resent: Queued")
        expect(row.get_by_role("button", name="Resend")).to_have_count(0)
        expect(page.get_by_test_id("resend-announcement")).to_contain_text(f"to {seeded.patient_name} resent: Queued")

        def resent() -> tuple[str, str, str]:
            message = OutboundMessage.objects.get(source_type="message", source_id=seeded.failed_id)
            return message.kind, message.state, message.channel

        with django_db_blocker.unblock():
            kind, state, _channel = off_loop(resent)
        assert (kind, state) == ("manual_resend", "queued")

        # After a refresh the server's view: resent already, no button.
        page.get_by_role("button", name="Refresh").click()
        expect(row.get_by_test_id("resend-cell")).to_have_text("Resent already")
        expect(row.get_by_role("button", name="Resend")).to_have_count(0)

        # Live: a reminder that goes out while the page is open shows up without "Refresh".
        expect(page.get_by_test_id("reminders-live")).to_be_visible()

        def send_one_more() -> int:
            patient = Patient.objects.get(user__username=PATIENT)
            _queue_reminder(patient, uuid.uuid4().hex[:12], "reminder:live")
            _dispatch_until_idle(providers.twilio)
            return message_health(actor=User.objects.get(username="scheduler"), days=14).totals.sent

        with django_db_blocker.unblock():
            sent_now = off_loop(send_one_more)
        assert sent_now > seeded.totals["sent"]
        expect(totals.locator('[data-total="sent"] dd')).to_have_text(str(sent_now))
    finally:
        ctx.close()


def test_reminders_are_for_admins_and_schedulers_only(browser: Browser, reminders_server: Daphne) -> None:
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    ctx.set_default_timeout(10_000)
    try:
        page = ctx.new_page()
        sign_in(page, reminders_server.url, "nurse")
        nav = page.get_by_role("navigation", name="Main")
        expect(nav.get_by_role("link", name="Live board")).to_be_visible()
        expect(nav.get_by_role("link", name="Reminders")).to_have_count(0)
        page.goto(f"{reminders_server.url}/schedule/reminders")
        expect(page.get_by_role("heading", level=1)).not_to_have_text("Reminder health")
        expect(page).not_to_have_url(re.compile(r"/schedule/reminders$"))

        page.context.clear_cookies()
        sign_in(page, reminders_server.url, "admin")
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Reminders").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Reminder health")
        expect(page.get_by_test_id("failure-count")).to_have_text(re.compile(r"^\d+ messages? failed$"))
    finally:
        ctx.close()
