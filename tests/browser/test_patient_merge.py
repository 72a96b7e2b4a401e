"""Merging a duplicate record, as an administrator does it: open the duplicate, find the record to keep, compare
the two side by side, give a reason, confirm — and land on the surviving record, whose chart now holds the
duplicate's visit, while the duplicate's page points to it."""

from __future__ import annotations

import datetime
import random
import re
import string
from dataclasses import dataclass, replace

import pytest
from playwright.sync_api import Browser, Page, expect
from pytest_django import DjangoDbBlocker

from ehr.models import Encounter, Patient, User
from ehr.services.access import care_team_add
from ehr.services.clinical import encounter_open
from ehr.services.patients import PatientInput, patient_register
from tests.browser.conftest import off_loop, sign_in
from tests.support.servers import Daphne


@dataclass(frozen=True)
class Duplicate:
    kept_id: int
    kept_mrn: str
    duplicate_id: int
    duplicate_mrn: str
    name: str
    encounter_id: int


def _register_twice() -> Duplicate:
    """The same (synthetic) person registered twice; the duplicate has a visit with the demo doctor."""
    admin = User.objects.get(username="admin")
    doctor = User.objects.get(username="doctor")
    suffix = "".join(random.choices(string.ascii_lowercase, k=6))  # noqa: S311 -- test data, not security
    born = datetime.date(1950 + random.randrange(40), random.randrange(1, 13), random.randrange(1, 29))  # noqa: S311
    data = PatientInput(given_name="Orla", family_name=f"Mergewood{suffix}", birth_date=born, sex="female")
    kept = patient_register(actor=admin, data=replace(data, phone="+351910000001"), allow_duplicate=True)
    duplicate = patient_register(actor=admin, data=data, reason="walk-in, card forgotten", allow_duplicate=True)
    care_team_add(
        actor=admin,
        patient_id=duplicate.pk,
        member_id=doctor.pk,
        role="assigned-doctor",
        reason="Browser test: the doctor who saw the walk-in",
    )
    location = doctor.locations.order_by("pk").first()
    assert location is not None
    encounter = encounter_open(
        actor=doctor, patient_id=duplicate.pk, location_id=location.pk, modality="in-person", reason="Sprained ankle"
    )
    return Duplicate(kept.pk, kept.mrn, duplicate.pk, duplicate.mrn, duplicate.display_name, encounter.id)


@pytest.fixture
def duplicate(server: Daphne, django_db_blocker: DjangoDbBlocker) -> Duplicate:
    with django_db_blocker.unblock():
        return off_loop(_register_twice)


def test_admin_merges_a_duplicate_and_lands_on_the_surviving_record(
    page: Page, browser: Browser, server: Daphne, duplicate: Duplicate, django_db_blocker: DjangoDbBlocker
) -> None:
    sign_in(page, server.url, "admin")
    expect(page.get_by_role("heading", level=1)).to_have_text("Administration")
    page.goto(f"{server.url}/patients/{duplicate.duplicate_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text(duplicate.name)
    expect(page.get_by_test_id("patient-mrn")).to_have_text(duplicate.duplicate_mrn)

    page.get_by_role("button", name="Merge into another record").click()
    panel = page.get_by_test_id("merge-panel")
    expect(panel.get_by_role("heading", name="Merge into another record")).to_be_visible()
    panel.get_by_label("Find the record to keep (name or MRN)").fill(duplicate.kept_mrn)
    panel.get_by_role("button", name="Search").click()
    panel.get_by_role("button", name=f"Keep {duplicate.name}, {duplicate.kept_mrn}").click()

    compare = panel.get_by_test_id("merge-compare")
    expect(compare.get_by_role("row", name=re.compile("^MRN"))).to_contain_text(duplicate.duplicate_mrn)
    expect(compare.get_by_role("row", name=re.compile("^MRN"))).to_contain_text(duplicate.kept_mrn)
    expect(compare.get_by_role("row", name=re.compile("^Phone"))).to_contain_text("+351910000001")

    merge = panel.get_by_role("button", name=f"Merge {duplicate.duplicate_mrn} into {duplicate.kept_mrn}")
    merge.click()  # nothing sent without a reason and the confirmation
    expect(panel.get_by_role("alert").filter(has_text="Say why these records are merged.")).to_be_visible()
    panel.get_by_label("Reason for the merge").fill("Registered twice: walk-in without the patient card")
    panel.get_by_label("I have checked that both records are the same person.").check()
    merge.click()

    expect(page).to_have_url(re.compile(rf"/patients/{duplicate.kept_id}$"))
    expect(page.get_by_test_id("patient-mrn")).to_have_text(duplicate.kept_mrn)
    expect(page.get_by_test_id("patient-notice")).to_contain_text("Records merged")
    newest = page.get_by_test_id("patient-history").locator("li.version").first
    expect(newest).to_contain_text(f"merged from {duplicate.duplicate_mrn}")
    expect(newest).to_contain_text("by Alex Admin")

    with django_db_blocker.unblock():
        moved_to = off_loop(lambda: Encounter.objects.get(pk=duplicate.encounter_id).patient_id)
        state = off_loop(lambda: Patient.objects.values_list("status", "merged_into_id").get(pk=duplicate.duplicate_id))
    assert moved_to == duplicate.kept_id
    assert state == ("merged", duplicate.kept_id)

    # The duplicate's page (an old link) says where the record went.
    page.goto(f"{server.url}/patients/{duplicate.duplicate_id}")
    banner = page.get_by_test_id("merged-banner")
    expect(banner).to_contain_text("This record was merged into another record.")
    expect(page.get_by_role("button", name="Edit details")).to_have_count(0)
    banner.get_by_role("link", name="Open the surviving record").click()
    expect(page).to_have_url(re.compile(rf"/patients/{duplicate.kept_id}$"))

    # The doctor who saw the walk-in finds the visit on the surviving chart.
    doctor_context = browser.new_context(viewport={"width": 1280, "height": 800})
    doctor_context.set_default_timeout(10_000)
    try:
        doctor = doctor_context.new_page()
        sign_in(doctor, server.url, "doctor")
        expect(doctor.get_by_role("heading", level=1)).to_have_text("My clinic")
        doctor.goto(f"{server.url}/patients/{duplicate.kept_id}")
        visit = doctor.get_by_test_id("encounters").locator(f'[data-encounter-id="{duplicate.encounter_id}"]')
        expect(visit).to_contain_text("Sprained ankle")
        expect(visit.get_by_test_id("encounter-status")).to_have_text("In progress")
    finally:
        doctor_context.close()
