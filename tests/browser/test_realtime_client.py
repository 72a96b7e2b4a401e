"""The browser's realtime client: live events, forced sign-out, and recovery after a server restart."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from ehr.models import User
from ehr.services import session_sign_in
from tests.browser.conftest import off_loop, sign_in
from tests.support.servers import Daphne


def test_admin_deactivation_signs_the_user_out_of_their_open_tab(browser, server: Daphne, django_db_blocker) -> None:  # type: ignore[no-untyped-def]
    admin_ctx: BrowserContext = browser.new_context()
    patient_ctx: BrowserContext = browser.new_context()
    try:
        patient_page = patient_ctx.new_page()
        sign_in(patient_page, server.url, "patient2")
        expect(patient_page.get_by_role("heading", level=1)).to_have_text("My health")
        expect(patient_page.get_by_text("Live", exact=True)).to_be_visible()

        admin_page = admin_ctx.new_page()
        sign_in(admin_page, server.url, "admin")
        admin_page.get_by_role("navigation", name="Main").get_by_role("link", name="Users").click()
        admin_page.get_by_label("Search users").fill("patient2")
        admin_page.get_by_role("button", name="Deactivate patient2").click()
        admin_page.get_by_role("button", name="Confirm deactivation").click()
        expect(admin_page.get_by_role("button", name="Activate patient2")).to_be_visible()

        # The patient's tab is pushed out within moments, with the reason.
        expect(patient_page).to_have_url(re.compile(r"/login"), timeout=5_000)
        expect(patient_page.get_by_role("status").filter(has_text="deactivated")).to_be_visible()

        admin_page.get_by_role("button", name="Activate patient2").click()
        expect(admin_page.get_by_role("button", name="Deactivate patient2")).to_be_visible()
    finally:
        admin_ctx.close()
        patient_ctx.close()
        with django_db_blocker.unblock():
            off_loop(lambda: User.objects.filter(username="patient2").update(is_active=True))


def test_signing_in_elsewhere_is_announced_live(browser, server: Daphne) -> None:  # type: ignore[no-untyped-def]
    first: BrowserContext = browser.new_context()
    second: BrowserContext = browser.new_context()
    try:
        tab = first.new_page()
        sign_in(tab, server.url, "doctor2")
        expect(tab.get_by_text("Live", exact=True)).to_be_visible()
        sign_in(second.new_page(), server.url, "doctor2")
        expect(tab.get_by_role("status").filter(has_text="another device")).to_be_visible(timeout=5_000)
    finally:
        first.close()
        second.close()


@pytest.fixture
def own_server(demo_data, tmp_path: Path) -> Iterator[Daphne]:  # type: ignore[no-untyped-def]
    proc = Daphne(tmp_path, name="daphne-restart")
    yield proc
    proc.stop()


def test_client_reconnects_after_server_restart_and_fetches_what_it_missed(
    page: Page, own_server: Daphne, tmp_path: Path, django_db_blocker
) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, own_server.url, "nurse")
    expect(page.get_by_role("heading", level=1)).to_have_text("My clinic")
    expect(page.get_by_text("Live", exact=True)).to_be_visible()

    own_server.stop()
    expect(page.get_by_text(re.compile("Reconnecting"))).to_be_visible()

    # While the server is down an event is committed for this user: nobody is connected to receive it live.
    with django_db_blocker.unblock():
        off_loop(
            lambda: session_sign_in(
                user=User.objects.get(username="nurse"),
                session_key="a-session-on-another-device",
                user_agent="Test Tablet",
            )
        )

    restarted = Daphne(tmp_path, port=own_server.port, name="daphne-restarted")
    try:
        expect(page.get_by_text("Live", exact=True)).to_be_visible(timeout=15_000)
        # The hello told the client its user stream moved on; it fetched the missed event over REST.
        expect(page.get_by_role("status").filter(has_text="another device")).to_be_visible()
        expect(page.get_by_role("heading", level=1)).to_have_text("My clinic")
    finally:
        restarted.stop()
