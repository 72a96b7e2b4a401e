"""The patient portal's "Who opened my record": staff open a patient's record, then the patient sees who did, in
plain language, with emergency (break-the-glass) access marked in words."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect
from pytest_django import DjangoDbBlocker

from ehr.models import Patient, User
from ehr.services.audit import audit_record
from tests.browser.conftest import off_loop, sign_in
from tests.support.servers import Daphne


def _seed_emergency_access() -> tuple[int, str]:
    """An emergency (break-the-glass) access to ``patient``'s record by a doctor, as the audit log records it."""
    patient = Patient.objects.get(user__username="patient")
    doctor = User.objects.get(username="doctor")
    audit_record(
        actor=doctor,
        action="break_glass",
        purpose="break_glass",
        entity_type="Patient",
        entity_id=patient.pk,
        patient_id=patient.pk,
    )
    return patient.pk, patient.display_name


@pytest.fixture
def patient_record(server: Daphne, django_db_blocker: DjangoDbBlocker) -> tuple[int, str]:
    with django_db_blocker.unblock():
        return off_loop(_seed_emergency_access)


def test_patient_sees_who_opened_their_record(
    page: Page, browser: Browser, server: Daphne, patient_record: tuple[int, str]
) -> None:
    patient_id, patient_name = patient_record

    # The front desk (demographics read is allowed for schedulers) opens the patient's record.
    staff_context = browser.new_context(viewport={"width": 1280, "height": 800})
    staff_context.set_default_timeout(10_000)
    try:
        staff = staff_context.new_page()
        sign_in(staff, server.url, "scheduler")
        expect(staff.get_by_role("heading", level=1)).to_have_text("Scheduling")
        staff.goto(f"{server.url}/patients/{patient_id}")
        expect(staff.get_by_role("heading", level=1)).to_have_text(patient_name)
        expect(staff.get_by_test_id("patient-history").locator("li.version").first).to_be_visible()
    finally:
        staff_context.close()

    sign_in(page, server.url, "patient")
    expect(page.get_by_role("heading", level=1)).to_have_text("My health")

    # The home page's card: the newest accesses, and the way to the whole list.
    card = page.get_by_test_id("recent-access")
    expect(card.get_by_role("heading", name="Recent access")).to_be_visible()
    expect(card).to_contain_text("Sam Whitfield (Front desk) viewed your record")
    card.get_by_role("link", name="See everyone who opened your record").click()

    expect(page).to_have_url(re.compile(r"/patient/access-log$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Who opened my record")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Access log")).to_be_visible()
    expect(page.get_by_text("Every time someone opens your health record")).to_be_visible()

    rows = page.locator("tbody tr")
    front_desk = rows.filter(has_text="Sam Whitfield").filter(has_text="viewed your record").first
    expect(front_desk).to_be_visible()
    expect(front_desk.get_by_role("cell").nth(1)).to_have_text("Front desk")
    expect(front_desk.locator("time")).to_have_attribute("datetime", re.compile(r"^\d{4}-\d{2}-\d{2}T"))
    expect(front_desk.locator(".badge")).to_have_count(0)

    # Emergency access is marked with words, not colour alone.
    emergency = rows.filter(has_text="Dana Okafor").filter(has_text="break-the-glass").first
    expect(emergency).to_have_attribute("data-emergency", "true")
    expect(emergency.get_by_text("Emergency access", exact=True)).to_be_visible()
    expect(page.get_by_text("means someone used the emergency option")).to_be_visible()
