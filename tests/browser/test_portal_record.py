"""The patient portal's "My record": a doctor on the patient's care team records a problem and uploads a document,
then the patient reads their chart summary and downloads the document under its original file name."""

from __future__ import annotations

import contextlib

import pytest
from playwright.sync_api import Page, expect
from pytest_django import DjangoDbBlocker

from ehr.errors import CareTeamOverlap
from ehr.models import Patient, User
from ehr.services.access import care_team_add
from ehr.services.clinical import condition_add
from ehr.services.documents import IncomingDocument, document_upload
from tests.browser.conftest import off_loop, sign_in
from tests.support.servers import Daphne


def _seed_record() -> str:
    """``doctor`` on ``patient``'s care team, an asthma problem and a PDF; returns the problem's description."""
    patient = Patient.objects.get(user__username="patient")
    doctor = User.objects.get(username="doctor")
    # CareTeamOverlap: already on the team (the test ran before against this database).
    with contextlib.suppress(CareTeamOverlap):
        care_team_add(
            actor=User.objects.get(username="admin"),
            patient_id=patient.pk,
            member_id=doctor.pk,
            role="assigned-doctor",
            reason="Browser test: the patient's own doctor",
        )
    condition = condition_add(actor=doctor, patient_id=patient.pk, code="J45.909")
    incoming = IncomingDocument(filename="asthma-plan.pdf", declared_type="application/pdf")
    try:
        incoming.write(b"%PDF-1.4\n% test\n")
        document_upload(
            actor=doctor,
            patient_id=patient.pk,
            incoming=incoming,
            type="clinical-note",
            title="Asthma action plan",
        )
    finally:
        incoming.discard()
    return condition.code_display


@pytest.fixture
def seeded_record(server: Daphne, django_db_blocker: DjangoDbBlocker) -> str:
    with django_db_blocker.unblock():
        return off_loop(_seed_record)


def test_patient_reads_their_record_and_downloads_a_document(page: Page, server: Daphne, seeded_record: str) -> None:
    problem = seeded_record
    sign_in(page, server.url, "patient")
    expect(page.get_by_role("heading", level=1)).to_have_text("My health")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="My record").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My record")

    problems = page.get_by_test_id("my-problems")
    expect(problems).to_contain_text(problem)
    expect(problems).to_contain_text("J45.909")

    documents = page.get_by_test_id("my-documents")
    expect(documents).to_contain_text("Asthma action plan")
    expect(documents).to_contain_text("Clinical note")

    with page.expect_download() as info:
        documents.get_by_role("link", name="Download Asthma action plan").first.click()
    assert info.value.suggested_filename == "asthma-plan.pdf"
