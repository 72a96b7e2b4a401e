"""The clinical chart as a doctor uses it: problems (with ICD-10 validation), vitals, an encounter with a SOAP note
that autosaves and survives a reload, signing it and adding an addendum."""

from __future__ import annotations

import contextlib
import re

import pytest
from playwright.sync_api import Page, expect
from pytest_django import DjangoDbBlocker

from ehr.errors import CareTeamOverlap
from ehr.models import Patient
from ehr.services.access import care_team_add
from tests.browser.conftest import off_loop, sign_in
from tests.support.servers import Daphne

# A demo patient no other browser test uses (doctor2's break-the-glass test uses patient046).
PATIENT = "patient045"


def _put_doctor_on_care_team(username: str) -> tuple[int, str]:
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    patient = Patient.objects.get(user__username=PATIENT)
    # CareTeamOverlap: already on the team (the test ran before against this database).
    with contextlib.suppress(CareTeamOverlap):
        care_team_add(
            actor=users.get(username="admin"),
            patient_id=patient.pk,
            member_id=users.get(username=username).pk,
            role="assigned-doctor",
            reason="Browser test: the doctor's own patient",
        )
    return patient.pk, patient.display_name


@pytest.fixture
def doctors_patient(server: Daphne, django_db_blocker: DjangoDbBlocker) -> tuple[int, str]:
    with django_db_blocker.unblock():
        return off_loop(lambda: _put_doctor_on_care_team("doctor"))


def test_doctor_charts_problems_vitals_and_a_signed_soap_note(
    page: Page, server: Daphne, doctors_patient: tuple[int, str]
) -> None:
    patient_id, name = doctors_patient
    sign_in(page, server.url, "doctor")
    expect(page.get_by_role("heading", level=1)).to_have_text("My clinic")
    page.goto(f"{server.url}/patients/{patient_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    summary = page.get_by_test_id("chart-summary")
    expect(summary.get_by_role("heading", name="Summary")).to_be_visible()

    # A problem with a valid ICD-10-CM code shows with the library's description.
    summary.locator("summary", has_text="Add a problem").click()
    summary.get_by_label("ICD-10 code").fill("E11.9")
    summary.get_by_role("button", name="Add problem").click()
    problems = summary.get_by_test_id("problems")
    expect(problems).to_contain_text("E11.9")
    expect(problems).to_contain_text(re.compile("Type 2 diabetes", re.I))

    # An unknown code: the API's field error next to the field.
    summary.get_by_label("ICD-10 code").fill("Q99.999X")
    summary.get_by_role("button", name="Add problem").click()
    expect(page.locator("#problem-code-error")).to_contain_text("not an ICD-10-CM code")
    expect(summary.get_by_label("ICD-10 code")).to_have_attribute("aria-invalid", "true")

    # The history disclosure of the problem lists its first version.
    problems.locator("summary", has_text="History").first.click()
    expect(problems.get_by_test_id("record-history").first).to_contain_text("Version 1")

    # A heart rate; an impossible one is refused with the API's message.
    summary.locator("summary", has_text="Record a vital sign").click()
    summary.get_by_label("Vital sign", exact=True).select_option(label="Heart rate (/min)")
    summary.get_by_label("Value", exact=True).fill("500")
    summary.get_by_role("button", name="Record vital sign").click()
    expect(page.locator("#vital-value-error")).to_contain_text("not a possible heart rate")
    summary.get_by_label("Value", exact=True).fill("72")
    summary.get_by_role("button", name="Record vital sign").click()
    expect(summary.get_by_test_id("vitals")).to_contain_text("Heart rate: 72 /min")

    # An encounter and its SOAP note: autosaved, still there after a reload.
    encounters = page.get_by_test_id("encounters")
    encounters.locator("summary", has_text="New encounter").click()
    encounters.get_by_label("Reason (optional)").fill("Diabetes follow-up")
    encounters.get_by_role("button", name="Start encounter").click()
    encounter = encounters.locator("li.encounter").first
    expect(encounter.get_by_test_id("encounter-status")).to_have_text("In progress")
    encounter.get_by_role("button", name="Write a note").click()
    subjective = encounter.get_by_label("Subjective")
    subjective.click()
    subjective.press_sequentially("Feels well, no hypoglycaemia.")
    encounter.get_by_label("Plan").fill("Continue metformin; HbA1c in 3 months.")
    expect(encounter.get_by_test_id("note-save-status")).to_contain_text("Saved at", timeout=10_000)

    page.reload()
    encounter = page.get_by_test_id("encounters").locator("li.encounter").first
    expect(encounter.get_by_label("Subjective")).to_have_value("Feels well, no hypoglycaemia.")
    expect(encounter.get_by_label("Plan")).to_have_value("Continue metformin; HbA1c in 3 months.")

    # Sign (with a confirm step): read-only with the signature.
    encounter.get_by_role("button", name="Sign note").click()
    encounter.get_by_role("button", name="Confirm and sign").click()
    expect(encounter.get_by_test_id("note-signature")).to_contain_text("Signed by Dana Okafor at")
    expect(encounter.get_by_label("Subjective")).to_have_count(0)
    expect(encounter.get_by_test_id("note-text")).to_contain_text("Feels well, no hypoglycaemia.")

    # An addendum under the signed note.
    encounter.get_by_label("Addendum").fill("Patient called: also taking vitamin D.")
    encounter.get_by_role("button", name="Add addendum").click()
    expect(encounter.get_by_test_id("note-addenda")).to_contain_text("Patient called: also taking vitamin D.")

    # Close the encounter.
    encounter.get_by_role("button", name="Close encounter").click()
    expect(encounter.get_by_test_id("encounter-status")).to_have_text("Finished")
