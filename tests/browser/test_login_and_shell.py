"""Each demo role signs in and lands on its own shell; wrong passwords and sign-out behave as people expect."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import sign_in
from tests.support.servers import Daphne

# username → (home path, page heading, a nav link only that role sees)
ROLE_HOMES = {
    "patient": ("/patient", "My health"),
    "patient2": ("/patient", "My health"),
    "doctor": ("/clinic", "My clinic"),
    "doctor2": ("/clinic", "My clinic"),
    "nurse": ("/clinic", "My clinic"),
    "scheduler": ("/schedule", "Scheduling"),
    "billing": ("/billing", "Billing"),
    "admin": ("/admin-console", "Administration"),
}


@pytest.mark.parametrize("username", list(ROLE_HOMES))
def test_each_demo_role_lands_on_its_own_shell(page: Page, server: Daphne, username: str) -> None:
    path, heading = ROLE_HOMES[username]
    sign_in(page, server.url, username)
    expect(page).to_have_url(re.compile(re.escape(path) + r"$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_text("Live", exact=True)).to_be_visible()


def test_admin_nav_offers_users_and_status_but_patient_nav_does_not(page: Page, server: Daphne) -> None:
    sign_in(page, server.url, "admin")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Users")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login"))
    sign_in(page, server.url, "patient")
    expect(page.get_by_role("heading", level=1)).to_have_text("My health")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Users")).to_have_count(0)


def test_patient_cannot_open_the_admin_console_by_url(page: Page, server: Daphne) -> None:
    sign_in(page, server.url, "patient")
    expect(page.get_by_role("heading", level=1)).to_have_text("My health")
    page.goto(f"{server.url}/admin-console/users")
    expect(page).to_have_url(re.compile(r"/patient$"))


def test_wrong_password_shows_an_error_and_stays_on_login(page: Page, server: Daphne) -> None:
    sign_in(page, server.url, "doctor2", "definitely-wrong")
    expect(page.get_by_role("alert")).to_have_text(re.compile("Wrong username or password"))
    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.get_by_label("Username")).to_have_value("doctor2")


def test_sign_out_returns_to_login_and_the_shell_is_closed(page: Page, server: Daphne) -> None:
    sign_in(page, server.url, "scheduler")
    expect(page.get_by_role("heading", level=1)).to_have_text("Scheduling")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.get_by_role("heading", name="Sign in to Consulta")).to_be_visible()
    page.goto(f"{server.url}/schedule")
    expect(page).to_have_url(re.compile(r"/login"))


def test_login_page_fits_a_phone_screen(page: Page, server: Daphne) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(f"{server.url}/login")
    expect(page.get_by_role("button", name="Sign in")).to_be_in_viewport()
    overflow = page.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth")
    assert overflow is False
    sign_in(page, server.url, "patient")
    expect(page.get_by_role("heading", level=1)).to_have_text("My health")
    overflow = page.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth")
    assert overflow is False
