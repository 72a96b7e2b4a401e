"""A booked visit on the chart, as the doctor sees it: the front desk books an appointment in scheduling, which plans
an upcoming encounter on the record (linked to the appointment) and opens the chart to the booked doctor's clinic.
The doctor cancels the visit from the chart with a reason: the chart cancels the APPOINTMENT in scheduling, so the
appointment and the encounter both end up cancelled — the two never disagree."""

from __future__ import annotations

import datetime
import random
import string

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect
from pytest_django import DjangoDbBlocker

from ehr.models import Encounter, EncounterVersion, User
from ehr.services.patients import PatientInput, patient_register
from scheduling.models import Appointment, AppointmentType
from scheduling.selectors import free_slot_search
from scheduling.services.booking import appointment_book
from tests.browser.conftest import off_loop, sign_in
from tests.support.servers import Daphne

REASON = "Patient rang: knee is better"


def _book_a_visit() -> tuple[int, int, int]:
    """A new (synthetic) patient with a video consultation booked by the front desk with the demo doctor, at the
    doctor's first free time three days from now. Returns (patient id, appointment id, encounter id)."""
    admin = User.objects.get(username="admin")
    scheduler = User.objects.get(username="scheduler")
    doctor = User.objects.get(username="doctor")
    suffix = "".join(random.choices(string.ascii_lowercase, k=6))  # noqa: S311 -- test data, not security
    patient = patient_register(
        actor=admin,
        data=PatientInput(given_name="Ines", family_name=f"Bookwell{suffix}", birth_date="1984-07-19", sex="female"),
        allow_duplicate=True,
    )
    video = AppointmentType.objects.get(code="video-consult")
    day = timezone.now() + datetime.timedelta(days=3)
    free = free_slot_search(
        actor=scheduler,
        appointment_type_id=video.pk,
        window_start=day,
        window_end=day + datetime.timedelta(days=1),
        practitioner_id=doctor.pk,
    )
    assert free, "the demo doctor has no free time three days from now"
    booked = appointment_book(
        actor=scheduler,
        appointment_type_id=video.pk,
        patient_id=patient.pk,
        start=free[0].start,
        practitioner_id=doctor.pk,
    )
    assert booked.encounter_id is not None
    return patient.pk, booked.id, booked.encounter_id


@pytest.fixture
def booked(server: Daphne, django_db_blocker: DjangoDbBlocker) -> tuple[int, int, int]:
    with django_db_blocker.unblock():
        return off_loop(_book_a_visit)


def test_doctor_sees_the_booked_visit_as_upcoming_and_cancelling_it_cancels_the_appointment(
    page: Page, server: Daphne, booked: tuple[int, int, int], django_db_blocker: DjangoDbBlocker
) -> None:
    patient_id, appointment_id, visit_id = booked
    sign_in(page, server.url, "doctor")
    expect(page.get_by_role("heading", level=1)).to_have_text("My clinic")
    page.goto(f"{server.url}/patients/{patient_id}")

    upcoming = page.get_by_test_id("upcoming-encounters")
    expect(upcoming.get_by_role("heading", name="Upcoming")).to_be_visible()
    visit = upcoming.locator(f'[data-encounter-id="{visit_id}"]')
    expect(visit).to_contain_text("With Dana Okafor")
    expect(visit.get_by_test_id("encounter-status")).to_have_text("Planned")

    visit.get_by_role("button", name="Cancel visit").click()
    expect(visit.get_by_test_id("cancel-appointment-note")).to_have_text(
        "Booked in scheduling: this cancels the appointment."
    )
    visit.get_by_role("button", name="Cancel the visit").click()
    expect(visit.get_by_role("alert")).to_have_text("Say why the visit is cancelled.")
    visit.get_by_label("Why is the visit cancelled?").fill(REASON)
    visit.get_by_role("button", name="Cancel the visit").click()

    # The booked visit was this doctor's only link to the new patient (docs/access.md, SAME_CLINIC): once it is
    # cancelled the chart closes to them, and the section says so instead of vanishing.
    expect(page.get_by_test_id("encounters").get_by_role("status").first).to_have_text(
        "Visit cancelled: the appointment is cancelled in scheduling too. The chart is now closed to you: this visit "
        "was your link to the patient."
    )
    expect(page.get_by_test_id("upcoming-encounters")).to_have_count(0)
    cancelled = page.get_by_test_id("encounters").locator(f'[data-encounter-id="{visit_id}"]')
    expect(cancelled.get_by_test_id("encounter-status")).to_have_text("Cancelled")

    def stored() -> tuple[tuple[str, str], tuple[str, str, int | None]]:
        appointment = Appointment.objects.get(pk=appointment_id)
        encounter = Encounter.objects.get(pk=visit_id)
        latest = EncounterVersion.objects.filter(record_id=visit_id).order_by("-version").first()
        assert latest is not None
        booking = (appointment.status, appointment.cancel_reason)
        return booking, (encounter.status, latest.reason, encounter.appointment_id)

    with django_db_blocker.unblock():
        assert off_loop(stored) == (("cancelled", REASON), ("cancelled", REASON, appointment_id))
