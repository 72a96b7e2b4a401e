"""The admin's audit log page: find a patient's record accesses, narrow them to refused ones, clear the filters."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect

from ehr.models import AuditEvent, User
from ehr.services.audit import audit_record
from tests.browser.conftest import off_loop, sign_in
from tests.support.servers import Daphne


@dataclass(frozen=True)
class Seeded:
    patient_id: int
    read_id: int
    update_id: int
    denied_id: int
    doctor_name: str


def _seed() -> Seeded:
    # A patient id no other row uses, so that exactly this test's rows match the filter.
    patient_id = 424242
    while AuditEvent.objects.filter(patient_id=patient_id).exists():
        patient_id += 1
    doctor = User.objects.get(username="doctor")
    patient2 = User.objects.get(username="patient2")
    common = {"entity_type": "Patient", "entity_id": patient_id, "patient_id": patient_id}
    # One transaction each (autocommit): the rows get increasing times, so the newest-first order is known.
    read = audit_record(actor=doctor, action="read", purpose="treatment", **common)
    update = audit_record(actor=doctor, action="update", purpose="treatment", **common)
    denied = audit_record(actor=patient2, action="read", outcome="denied", **common)
    return Seeded(patient_id, read.id, update.id, denied.id, doctor.display_name)


@pytest.fixture
def seeded(server: Daphne, django_db_blocker) -> Seeded:  # type: ignore[no-untyped-def]
    with django_db_blocker.unblock():
        return off_loop(_seed)


def _row_ids(page: Page) -> list[str]:
    return page.locator("tbody tr[data-event-id]").evaluate_all("rows => rows.map(r => r.dataset.eventId)")


def test_admin_finds_a_patients_accesses_and_the_refused_one(page: Page, server: Daphne, seeded: Seeded) -> None:
    sign_in(page, server.url, "admin")
    expect(page.get_by_role("heading", level=1)).to_have_text("Administration")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").click()
    expect(page).to_have_url(re.compile(r"/admin-console/audit$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")
    count = page.get_by_test_id("audit-count")
    expect(count).to_have_text(re.compile(r"^\d+ events?$"))

    page.get_by_label("Patient ID", exact=True).fill(str(seeded.patient_id))
    page.get_by_role("button", name="Search").click()
    expect(count).to_have_text("3 events")
    rows = page.locator("tbody tr[data-event-id]")
    expect(rows).to_have_count(3)
    assert _row_ids(page) == [str(seeded.denied_id), str(seeded.update_id), str(seeded.read_id)]

    denied = page.locator(f'tbody tr[data-event-id="{seeded.denied_id}"]')
    expect(denied.get_by_role("cell").nth(0)).to_contain_text("patient2")
    expect(denied).to_contain_text("Denied")
    updated = page.locator(f'tbody tr[data-event-id="{seeded.update_id}"]')
    expect(updated).to_contain_text(seeded.doctor_name)
    expect(updated).to_contain_text("doctor · Practitioner")
    expect(updated).to_contain_text("Update")
    expect(updated).to_contain_text("treatment")
    expect(updated).to_contain_text("Success")

    page.get_by_label("Outcome", exact=True).select_option(label="Denied")
    page.get_by_role("button", name="Search").click()
    expect(count).to_have_text("1 event")
    expect(rows).to_have_count(1)
    assert _row_ids(page) == [str(seeded.denied_id)]
    expect(rows.first).to_contain_text("patient2")

    page.get_by_role("button", name="Clear filters").click()
    expect(page.get_by_label("Patient ID", exact=True)).to_have_value("")
    expect(page.get_by_label("Outcome", exact=True)).to_have_value("")
    expect(count).not_to_have_text("1 event")
    expect(count).to_have_text(re.compile(r"^\d+ events$"))
    # Unfiltered, the list holds more than the seeded rows (at least the searches above, which are audited too).
    assert rows.count() > 3


def test_filter_mistakes_are_shown_next_to_the_field(page: Page, server: Daphne) -> None:
    sign_in(page, server.url, "admin")
    expect(page.get_by_role("heading", level=1)).to_have_text("Administration")
    page.goto(f"{server.url}/admin-console/audit")
    page.get_by_label("From", exact=True).fill("2026-03-05T10:00")
    page.get_by_label("To", exact=True).fill("2026-03-04T10:00")
    page.get_by_role("button", name="Search").click()
    to_field = page.get_by_label("To", exact=True)
    expect(to_field).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("alert").filter(has_text="must not be before")).to_be_visible()

    page.get_by_role("button", name="Clear filters").click()
    expect(to_field).not_to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("alert").filter(has_text="must not be before")).to_have_count(0)


def test_audit_log_fits_a_phone_screen(page: Page, server: Daphne) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    sign_in(page, server.url, "admin")
    expect(page.get_by_role("heading", level=1)).to_have_text("Administration")
    page.goto(f"{server.url}/admin-console/audit")
    expect(page.get_by_test_id("audit-count")).to_have_text(re.compile(r"^\d+ events?$"))
    expect(page.get_by_role("button", name="Search")).to_be_visible()

    # The page does not scroll sideways; the wide table scrolls inside its own region.
    overflow = page.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth")
    assert overflow is False
    table_region = page.get_by_role("region", name="Audit events, newest first")
    assert table_region.evaluate("el => el.scrollWidth > el.clientWidth") is True
