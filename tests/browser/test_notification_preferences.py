"""A patient's notification preferences: channel order, language and opt-outs, saved and still there after a
reload; what is saved is what the outbox will use."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect

from ehr.models import Patient, User
from notifications.services import preference_get, preference_update
from notifications.services.messages import contact_for
from tests.browser.conftest import off_loop, sign_in
from tests.support.servers import Daphne

PATIENT = "patient038"  # a demo patient no other browser test uses


def _reset_preferences() -> str:
    """Start from the defaults (a rerun against the same database finds what the last run saved); returns the last
    four digits of the patient's phone."""
    user = User.objects.get(username=PATIENT)
    preference_update(
        actor=user, data={"channels": ["sms", "email"], "language": "en", "sms_opt_out": False, "email_opt_out": False}
    )
    return Patient.objects.get(user=user).phone[-4:]


def _saved() -> dict[str, Any]:
    user = User.objects.get(username=PATIENT)
    view = preference_get(actor=user)
    patient_id = Patient.objects.get(user=user).pk
    return {
        "channels": view.channels,
        "language": view.language,
        "sms_opt_out": view.sms_opt_out,
        "email_opt_out": view.email_opt_out,
        "usable": [channel for channel, _ in contact_for(patient_id).channels],
    }


def test_patient_changes_order_language_and_opt_out_and_finds_them_kept_after_reload(
    page: Page, server: Daphne, django_db_blocker: Any
) -> None:
    with django_db_blocker.unblock():
        phone_tail = off_loop(_reset_preferences)

    sign_in(page, server.url, PATIENT)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav).to_be_visible()
    nav.get_by_role("link", name="Notifications").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Notification preferences")
    expect(page).to_have_url(re.compile(r"/patient/notifications$"))

    # The saved choices, and where messages go (masked).
    expect(page.get_by_label("Text message first")).to_be_checked()
    expect(page.get_by_label("Language")).to_have_value("en")
    expect(page.get_by_label("Stop text messages")).not_to_be_checked()
    expect(page.get_by_label("Stop emails")).not_to_be_checked()
    expect(page.get_by_test_id("pref-phone")).to_have_text(re.compile(rf"^•+{phone_tail}$"))
    expect(page.get_by_test_id("pref-email")).to_have_text(re.compile(r"^p•••@"))
    expect(page.get_by_text("Replying STOP to any text message from us does the same")).to_be_visible()

    page.get_by_label("Email first").check()
    page.get_by_label("Language").select_option(label="Español")
    page.get_by_label("Stop text messages").check()
    expect(page.get_by_test_id("pref-warning")).to_have_count(0)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Your preferences are saved")).to_be_visible()

    with django_db_blocker.unblock():
        saved = off_loop(_saved)
    assert saved == {
        "channels": ["email", "sms"],
        "language": "es",
        "sms_opt_out": True,
        "email_opt_out": False,
        # The outbox now reaches this patient by email only.
        "usable": ["email"],
    }

    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Notification preferences")
    expect(page.get_by_label("Email first")).to_be_checked()
    expect(page.get_by_label("Text message first")).not_to_be_checked()
    expect(page.get_by_label("Language")).to_have_value("es")
    expect(page.get_by_label("Stop text messages")).to_be_checked()
    expect(page.get_by_label("Stop emails")).not_to_be_checked()

    # Stopping emails too warns that nothing will arrive; undone and saved back, it is kept as well.
    page.get_by_label("Stop emails").check()
    expect(page.get_by_test_id("pref-warning")).to_contain_text("no appointment reminders")
    page.get_by_label("Stop emails").uncheck()
    page.get_by_label("Stop text messages").uncheck()
    page.get_by_label("Text message first").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Your preferences are saved")).to_be_visible()
    page.reload()
    expect(page.get_by_label("Text message first")).to_be_checked()
    expect(page.get_by_label("Stop text messages")).not_to_be_checked()
    expect(page.get_by_label("Language")).to_have_value("es")


def test_staff_cannot_open_a_patients_notification_preferences(page: Page, server: Daphne) -> None:
    sign_in(page, server.url, "scheduler")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Reminders")).to_be_visible()
    expect(nav.get_by_role("link", name="Notifications")).to_have_count(0)
    page.goto(f"{server.url}/patient/notifications")
    expect(page.get_by_role("heading", level=1)).to_have_text("Scheduling")
