"""Break-the-glass: a doctor outside the patient's care opens the record in an emergency with a reason, and an
administrator reviews the access."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect
from pytest_django import DjangoDbBlocker

from ehr.models import Patient
from tests.browser.conftest import off_loop, sign_in
from tests.support.servers import Daphne

# doctor2 is on nobody's care team and no encounter exists for this patient (the chart test uses patient045).
PATIENT = "patient046"
REASON = "Unconscious in the waiting room, need allergies"


def test_doctor_opens_a_record_in_an_emergency_and_an_admin_reviews_it(
    page: Page, browser: Browser, server: Daphne, django_db_blocker: DjangoDbBlocker
) -> None:
    with django_db_blocker.unblock():
        patient = off_loop(lambda: Patient.objects.get(user__username=PATIENT))
    patient_id, name, mrn = patient.pk, patient.display_name, patient.mrn

    sign_in(page, server.url, "doctor2")
    expect(page.get_by_role("heading", level=1)).to_have_text("My clinic")
    page.goto(f"{server.url}/patients/{patient_id}")
    panel = page.get_by_test_id("break-glass")
    expect(panel).to_contain_text("This patient is not in your care")
    expect(page.get_by_test_id("chart-summary")).to_have_count(0)

    panel.get_by_role("button", name="Request emergency access").click()
    reason = panel.get_by_label("Reason for emergency access")
    reason.fill("Emergency")
    expect(panel.get_by_test_id("break-glass-hint")).to_contain_text("11 more needed")
    panel.get_by_role("button", name="Open the record in an emergency").click()
    expect(panel.get_by_role("alert")).to_contain_text("at least 20 characters")
    reason.fill(REASON)
    expect(panel.get_by_test_id("break-glass-hint")).to_contain_text("enough detail")
    panel.get_by_role("button", name="Open the record in an emergency").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    expect(page.get_by_test_id("emergency-banner")).to_contain_text("Emergency access")
    expect(page.get_by_test_id("chart-summary").get_by_role("heading", name="Summary")).to_be_visible()
    expect(page.get_by_test_id("break-glass")).to_have_count(0)

    admin_context = browser.new_context(viewport={"width": 1280, "height": 800})
    admin_context.set_default_timeout(10_000)
    try:
        admin = admin_context.new_page()
        sign_in(admin, server.url, "admin")
        expect(admin.get_by_role("heading", level=1)).to_have_text("Administration")
        admin.get_by_role("navigation", name="Main").get_by_role("link", name="Emergency access").click()
        expect(admin.get_by_role("heading", level=1)).to_have_text("Emergency access")
        grant = admin.locator("li.grant", has_text=mrn).filter(has_text=REASON)
        expect(grant).to_contain_text("Samuel Lindqvist")
        expect(grant).to_contain_text("Practitioner")
        expect(grant).to_contain_text(name)
        grant.get_by_role("button", name="Mark appropriate").click()
        expect(admin.get_by_test_id("break-glass-notice")).to_contain_text("marked appropriate")
        expect(admin.locator("li.grant", has_text=mrn).filter(has_text=REASON)).to_have_count(0)

        admin.get_by_label("Show").select_option(label="Reviewed: appropriate")
        reviewed = admin.locator("li.grant", has_text=mrn).filter(has_text=REASON)
        expect(reviewed).to_contain_text("Appropriate")
        expect(reviewed.get_by_role("button", name="Mark appropriate")).to_have_count(0)
    finally:
        admin_context.close()
