"""Patients, as the front desk uses them: search, open, edit with a reason and see it in the history; register, get
the duplicate warning and register anyway; and two people editing the same record at once."""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, Page, expect
from pytest_django import DjangoDbBlocker

from ehr.models import Patient
from tests.browser.conftest import off_loop, sign_in
from tests.support.servers import Daphne


@dataclass(frozen=True)
class DemoPatient:
    id: int
    mrn: str
    given_name: str
    family_name: str
    display_name: str
    city: str
    version: int


def _demo_patient(username: str) -> DemoPatient:
    # Each test edits its own demo patient (one no other browser test uses), so the tests do not depend on each other.
    p = Patient.objects.get(user__username=username)
    return DemoPatient(p.pk, p.mrn, p.given_name, p.family_name, p.display_name, p.city, p.version)


LoadPatient = Callable[[str], DemoPatient]


@pytest.fixture
def load_patient(server: Daphne, django_db_blocker: DjangoDbBlocker) -> LoadPatient:
    def load(username: str) -> DemoPatient:
        with django_db_blocker.unblock():
            return off_loop(lambda: _demo_patient(username))

    return load


def _suffix(n: int = 6) -> str:
    """Letters only: names are searched by trigram, and a unique tail keeps this run's records apart."""
    return "".join(random.choices(string.ascii_lowercase, k=n))  # noqa: S311 -- test data, not security


def _open_patients_page(page: Page, server: Daphne, username: str = "scheduler") -> None:
    sign_in(page, server.url, username)
    expect(page.get_by_role("heading", level=1)).to_have_text("Scheduling")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Patients").click()
    expect(page).to_have_url(re.compile(r"/patients$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Patients")


def _open_patient(page: Page, server: Daphne, patient: DemoPatient) -> None:
    page.goto(f"{server.url}/patients/{patient.id}")
    expect(page.get_by_role("heading", level=1)).to_have_text(patient.display_name)
    expect(page.get_by_test_id("patient-history").locator("li.version").first).to_be_visible()


def test_scheduler_finds_a_patient_edits_a_detail_and_sees_the_change_in_history(
    page: Page, server: Daphne, load_patient: LoadPatient
) -> None:
    patient = load_patient("patient040")
    _open_patients_page(page, server)

    page.get_by_label("Search patients", exact=True).fill(f"{patient.given_name} {patient.family_name}")
    page.get_by_role("button", name="Search").click()
    row = page.locator(f'tbody tr[data-patient-id="{patient.id}"]')
    expect(row).to_contain_text(patient.mrn)
    expect(row).to_contain_text("Active")
    row.get_by_role("link", name=patient.display_name).click()

    expect(page).to_have_url(re.compile(rf"/patients/{patient.id}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(patient.display_name)
    expect(page.get_by_test_id("patient-mrn")).to_have_text(patient.mrn)
    # Identifiers are shown masked, as the API returns them.
    expect(page.locator('dd[data-field="national_id"]')).to_have_text(re.compile(r"^•••• \w{4}$"))

    new_city = f"Testville {_suffix()}"
    page.get_by_role("button", name="Edit details").click()
    page.get_by_label("City", exact=True).fill(new_city)
    page.get_by_label("Reason for change", exact=True).fill("Patient moved (browser test)")
    page.get_by_role("button", name="Save changes").click()

    new_version = patient.version + 1
    expect(page.get_by_test_id("patient-notice")).to_have_text(
        f"Changes saved. The record is now at version {new_version}."
    )
    expect(page.locator('dd[data-field="city"]')).to_have_text(new_city)
    newest = page.get_by_test_id("patient-history").locator("li.version").first
    expect(newest.get_by_role("heading", level=3)).to_have_text(f"Version {new_version}")
    expect(newest).to_contain_text("by Sam Whitfield")
    expect(newest).to_contain_text("Reason: Patient moved (browser test)")
    expect(newest.get_by_role("listitem")).to_have_text([f"City: {patient.city} → {new_city}"])

    # Back in the search, the results are still there (the search lives in the URL).
    page.go_back()
    expect(page).to_have_url(re.compile(r"/patients\?q="))
    expect(page.locator(f'tbody tr[data-patient-id="{patient.id}"]')).to_be_visible()


def test_search_without_criteria_shows_the_apis_message(page: Page, server: Daphne) -> None:
    _open_patients_page(page, server)
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("alert").filter(has_text="Give a name, birth date, MRN or identifier")).to_be_visible()
    expect(page.get_by_label("Search patients", exact=True)).to_have_attribute("aria-invalid", "true")


def _fill_registration(page: Page, given: str, family: str, birth_date: str) -> None:
    page.get_by_label("Given name", exact=True).fill(given)
    page.get_by_label("Family name", exact=True).fill(family)
    page.get_by_label("Birth date", exact=True).fill(birth_date)
    page.get_by_label("Sex", exact=True).select_option(label="Female")
    page.get_by_label("Phone", exact=True).fill("+351 912 345 678")
    page.get_by_label("City", exact=True).fill("Lisbon")
    page.get_by_label("Country", exact=True).fill("PT")
    page.get_by_label("Preferred language", exact=True).fill("pt-PT")
    page.get_by_label("National ID", exact=True).fill(f"BT{random.randrange(10**6, 10**7)}")  # noqa: S311


def test_register_then_the_same_person_again_warns_of_a_duplicate_and_registers_anyway(
    page: Page, server: Daphne, django_db_blocker: DjangoDbBlocker
) -> None:
    given, family = "Testa", f"Registra{_suffix()}"
    birth_date = f"19{random.randrange(50, 99)}-0{random.randrange(1, 9)}-1{random.randrange(0, 9)}"  # noqa: S311
    _open_patients_page(page, server)
    page.get_by_role("link", name="Register a patient").click()
    expect(page).to_have_url(re.compile(r"/patients/new$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Register a patient")

    _fill_registration(page, given, family, birth_date)
    page.get_by_role("button", name="Register patient").click()
    expect(page).to_have_url(re.compile(r"/patients/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{given} {family}")
    expect(page.get_by_test_id("patient-notice")).to_have_text("Patient registered.")
    expect(page.locator('dd[data-field="phone"]')).to_have_text("+351912345678")
    first_id = page.url.rstrip("/").rsplit("/", 1)[1]
    first_mrn = page.get_by_test_id("patient-mrn").inner_text()

    # The same person again.
    page.goto(f"{server.url}/patients/new")
    _fill_registration(page, given, family, birth_date)
    page.get_by_role("button", name="Register patient").click()
    warning = page.get_by_role("alert").filter(has=page.get_by_role("heading", name="Possible duplicate"))
    expect(warning).to_be_visible()
    candidate = warning.get_by_role("link", name=f"{given} {family}")
    expect(candidate).to_have_attribute("href", f"/patients/{first_id}")
    expect(warning).to_contain_text(first_mrn)
    expect(warning.get_by_role("button", name="Open existing record")).to_be_visible()
    # Nothing typed was lost, and nothing was registered yet.
    expect(page).to_have_url(re.compile(r"/patients/new$"))
    expect(page.get_by_label("Family name", exact=True)).to_have_value(family)
    expect(page.get_by_label("City", exact=True)).to_have_value("Lisbon")

    warning.get_by_role("button", name="Register anyway").click()
    expect(page).not_to_have_url(re.compile(rf"/patients/({first_id}|new)$"))
    expect(page).to_have_url(re.compile(r"/patients/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{given} {family}")
    expect(page.get_by_test_id("patient-mrn")).not_to_have_text(first_mrn)

    with django_db_blocker.unblock():
        count = off_loop(lambda: Patient.objects.filter(given_name=given, family_name=family).count())
    assert count == 2


def test_a_stale_edit_shows_the_conflict_and_keeps_what_the_second_user_typed(
    page: Page, browser: Browser, server: Daphne, load_patient: LoadPatient
) -> None:
    patient = load_patient("patient041")
    first_city, second_city = f"First {_suffix()}", f"Second {_suffix()}"

    other_context = browser.new_context(viewport={"width": 1280, "height": 800})
    other_context.set_default_timeout(10_000)
    try:
        other = other_context.new_page()
        sign_in(page, server.url, "scheduler")
        expect(page.get_by_role("heading", level=1)).to_have_text("Scheduling")
        sign_in(other, server.url, "scheduler2")
        expect(other.get_by_role("heading", level=1)).to_have_text("Scheduling")

        # Both open the record and start editing the same version.
        for p in (page, other):
            _open_patient(p, server, patient)
            p.get_by_role("button", name="Edit details").click()
            expect(p.get_by_label("City", exact=True)).to_have_value(patient.city)

        page.get_by_label("City", exact=True).fill(first_city)
        page.get_by_label("Reason for change", exact=True).fill("First desk")
        page.get_by_role("button", name="Save changes").click()
        expect(page.get_by_test_id("patient-notice")).to_contain_text("Changes saved")

        other.get_by_label("City", exact=True).fill(second_city)
        other.get_by_label("Phone", exact=True).fill("+15557654321")
        other.get_by_label("Reason for change", exact=True).fill("Second desk")
        other.get_by_role("button", name="Save changes").click()

        conflict = other.get_by_role("alert").filter(
            has_text="This record was changed by someone else while you were editing"
        )
        expect(conflict).to_be_visible()
        # The current values are shown; the second user's typing is still in the form.
        expect(conflict).to_contain_text(f"It is now at version {patient.version + 1}.")
        expect(conflict).to_contain_text(f"City: {patient.city} → {first_city}")
        expect(other.get_by_label("City", exact=True)).to_have_value(second_city)
        expect(other.get_by_label("Phone", exact=True)).to_have_value("+15557654321")
        expect(other.get_by_label("Reason for change", exact=True)).to_have_value("Second desk")

        # Re-applying saves on top of the current version.
        conflict.get_by_role("button", name="Apply my changes again").click()
        expect(other.get_by_test_id("patient-notice")).to_have_text(
            f"Changes saved. The record is now at version {patient.version + 2}."
        )
        expect(other.locator('dd[data-field="city"]')).to_have_text(second_city)
        newest = other.get_by_test_id("patient-history").locator("li.version").first
        expect(newest).to_contain_text("by Jo Marchetti")
        expect(newest.get_by_role("listitem")).to_have_text(
            [f"City: {first_city} → {second_city}", re.compile(r"^Phone: .+ → \+15557654321$")]
        )
    finally:
        other_context.close()
