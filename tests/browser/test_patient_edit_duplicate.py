"""The front desk corrects a record's name so that it now matches another patient born the same day: the duplicate
warning of registration appears in the edit form, and "Save anyway" saves the change."""

from __future__ import annotations

import datetime
import random
import string

import pytest
from playwright.sync_api import Page, expect
from pytest_django import DjangoDbBlocker

from ehr.models import User
from ehr.services.patients import PatientInput, patient_register
from tests.browser.conftest import off_loop, sign_in
from tests.support.servers import Daphne


def _tail() -> str:
    """Letters only, so this run's records stay apart from earlier runs' (the database outlives a run)."""
    return "".join(random.choices(string.ascii_lowercase, k=6))  # noqa: S311 -- test data, not security


def _register_pair(family: str) -> tuple[int, int, str]:
    """Two people born the same day; returns (existing id, mistyped id, existing MRN)."""
    registrar = User.objects.get(username="scheduler")
    born = datetime.date(1961, 3, 1 + random.randrange(27))  # noqa: S311
    existing = patient_register(
        actor=registrar, data=PatientInput(given_name="Odete", family_name=family, birth_date=born, sex="female")
    )
    mistyped = patient_register(
        actor=registrar,
        data=PatientInput(given_name="Benedita", family_name="Zorro" + family, birth_date=born, sex="female"),
    )
    return existing.pk, mistyped.pk, existing.mrn


@pytest.fixture
def pair(server: Daphne, django_db_blocker: DjangoDbBlocker) -> tuple[int, int, str, str]:
    family = f"Valente{_tail()}"
    with django_db_blocker.unblock():
        existing, mistyped, mrn = off_loop(lambda: _register_pair(family))
    return existing, mistyped, mrn, family


def test_an_edit_that_makes_a_look_alike_warns_and_saves_anyway(
    page: Page, server: Daphne, pair: tuple[int, int, str, str]
) -> None:
    existing, mistyped, mrn, family = pair
    sign_in(page, server.url, "scheduler")
    expect(page.get_by_role("heading", level=1)).to_have_text("Scheduling")
    page.goto(f"{server.url}/patients/{mistyped}")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Benedita Zorro{family}")

    page.get_by_role("button", name="Edit details").click()
    page.get_by_label("Given name", exact=True).fill("Odete")
    page.get_by_label("Family name", exact=True).fill(family)
    page.get_by_label("Reason for change", exact=True).fill("Name mistyped at the desk (browser test)")
    page.get_by_role("button", name="Save changes").click()

    warning = page.get_by_test_id("duplicate-warning")
    expect(warning.get_by_role("heading", name="Possible duplicate")).to_be_focused()
    expect(warning).to_contain_text(f"Odete {family}")
    expect(warning).to_contain_text(mrn)
    expect(warning.get_by_role("link", name=f"Odete {family}")).to_have_attribute("href", f"/patients/{existing}")
    expect(page.get_by_label("Given name", exact=True)).to_have_value("Odete")  # the edit is kept

    warning.get_by_role("button", name="Save anyway").click()
    expect(page.get_by_test_id("patient-notice")).to_have_text("Changes saved. The record is now at version 2.")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Odete {family}")
    expect(page.get_by_test_id("duplicate-warning")).to_have_count(0)
