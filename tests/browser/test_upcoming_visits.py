"""A booked visit on the chart, as the doctor sees it: the front desk's booking makes it an upcoming (planned)
encounter, which opens the chart to the booked doctor's clinic; the doctor cancels it with a reason."""

from __future__ import annotations

import datetime
import random
import string

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect
from pytest_django import DjangoDbBlocker

from ehr.models import Encounter, EncounterVersion, User
from ehr.services.clinical import encounter_plan
from ehr.services.patients import PatientInput, patient_register
from tests.browser.conftest import off_loop, sign_in
from tests.support.servers import Daphne


def _book_a_visit() -> tuple[int, int]:
    """A new (synthetic) patient with a visit booked by the front desk with the demo doctor in three days."""
    admin = User.objects.get(username="admin")
    scheduler = User.objects.get(username="scheduler")
    doctor = User.objects.get(username="doctor")
    suffix = "".join(random.choices(string.ascii_lowercase, k=6))  # noqa: S311 -- test data, not security
    patient = patient_register(
        actor=admin,
        data=PatientInput(given_name="Ines", family_name=f"Bookwell{suffix}", birth_date="1984-07-19", sex="female"),
        allow_duplicate=True,
    )
    location = doctor.locations.order_by("pk").first()
    assert location is not None
    start = (timezone.now() + datetime.timedelta(days=3)).replace(second=0, microsecond=0)
    visit = encounter_plan(
        actor=scheduler,
        patient_id=patient.pk,
        practitioner_id=doctor.pk,
        location_id=location.pk,
        modality="virtual",
        planned_start=start,
        planned_end=start + datetime.timedelta(minutes=20),
        reason="Follow-up of knee pain",
    )
    return patient.pk, visit.id


@pytest.fixture
def booked(server: Daphne, django_db_blocker: DjangoDbBlocker) -> tuple[int, int]:
    with django_db_blocker.unblock():
        return off_loop(_book_a_visit)


def test_doctor_sees_the_booked_visit_as_upcoming_and_cancels_it(
    page: Page, server: Daphne, booked: tuple[int, int], django_db_blocker: DjangoDbBlocker
) -> None:
    patient_id, visit_id = booked
    sign_in(page, server.url, "doctor")
    expect(page.get_by_role("heading", level=1)).to_have_text("My clinic")
    page.goto(f"{server.url}/patients/{patient_id}")

    upcoming = page.get_by_test_id("upcoming-encounters")
    expect(upcoming.get_by_role("heading", name="Upcoming")).to_be_visible()
    visit = upcoming.locator(f'[data-encounter-id="{visit_id}"]')
    expect(visit).to_contain_text("With Dana Okafor")
    expect(visit).to_contain_text("Reason: Follow-up of knee pain")
    expect(visit.get_by_test_id("encounter-status")).to_have_text("Planned")

    visit.get_by_role("button", name="Cancel visit").click()
    visit.get_by_role("button", name="Cancel the visit").click()
    expect(visit.get_by_role("alert")).to_have_text("Say why the visit is cancelled.")
    visit.get_by_label("Why is the visit cancelled?").fill("Patient rang: knee is better")
    visit.get_by_role("button", name="Cancel the visit").click()

    expect(page.get_by_test_id("encounters").get_by_role("status").first).to_have_text("Visit cancelled.")
    expect(page.get_by_test_id("upcoming-encounters")).to_have_count(0)
    cancelled = page.get_by_test_id("encounters").locator(f'[data-encounter-id="{visit_id}"]')
    expect(cancelled.get_by_test_id("encounter-status")).to_have_text("Cancelled")

    def stored() -> tuple[str, str]:
        latest = EncounterVersion.objects.filter(record_id=visit_id).order_by("-version").first()
        assert latest is not None
        return Encounter.objects.get(pk=visit_id).status, latest.reason

    with django_db_blocker.unblock():
        assert off_loop(stored) == ("cancelled", "Patient rang: knee is better")
