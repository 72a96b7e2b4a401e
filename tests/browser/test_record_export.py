"""Exporting a whole record as a file: the patient clicks "Download my record" in the portal, a doctor clicks
"Export record" in the chart; each gets a JSON file holding the record (identifiers masked for the patient), and
each download is audited as one export."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from pytest_django import DjangoDbBlocker

from ehr.errors import CareTeamOverlap
from ehr.models import AuditEvent, Patient, User
from ehr.services.access import care_team_add
from ehr.services.clinical import allergy_add
from tests.browser.conftest import off_loop, sign_in
from tests.support.servers import Daphne

SUBSTANCE = "Export-test latex"


def _seed() -> int:
    """``doctor`` on the demo ``patient``'s care team and an allergy to find in the file; returns the patient id."""
    patient = Patient.objects.get(user__username="patient")
    doctor = User.objects.get(username="doctor")
    # CareTeamOverlap: already on the team (another test, or an earlier run against this database).
    with contextlib.suppress(CareTeamOverlap):
        care_team_add(
            actor=User.objects.get(username="admin"),
            patient_id=patient.pk,
            member_id=doctor.pk,
            role="assigned-doctor",
            reason="Browser test: the patient's own doctor",
        )
    allergy_add(actor=doctor, patient_id=patient.pk, substance_text=SUBSTANCE, criticality="low")
    return int(patient.pk)


@pytest.fixture
def patient_id(server: Daphne, django_db_blocker: DjangoDbBlocker) -> int:
    with django_db_blocker.unblock():
        return off_loop(_seed)


def _exports_by(username: str, patient_id: int) -> list[tuple[str, str]]:
    rows = AuditEvent.objects.filter(actor__username=username, patient_id=patient_id, action="export")
    return list(rows.order_by("id").values_list("purpose", "channel"))


def exports_by(django_db_blocker: DjangoDbBlocker, username: str, patient_id: int) -> list[tuple[str, str]]:
    with django_db_blocker.unblock():
        return off_loop(lambda: _exports_by(username, patient_id))


def test_patient_downloads_their_whole_record(
    page: Page, server: Daphne, patient_id: int, django_db_blocker: DjangoDbBlocker, tmp_path: Path
) -> None:
    before = len(exports_by(django_db_blocker, "patient", patient_id))
    sign_in(page, server.url, "patient")
    expect(page.get_by_role("heading", level=1)).to_have_text("My health")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="My record").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My record")

    with page.expect_download() as info:
        page.get_by_role("link", name="Download my record").click()
    download = info.value
    assert re.fullmatch(rf"consulta-record-{patient_id}-\d{{8}}\.json", download.suggested_filename)
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    document = json.loads(saved.read_text(encoding="utf-8"))

    assert document["format"] == "consulta.patient-record"
    record = document["record"]
    assert record["patient"]["id"] == patient_id
    assert record["patient"]["identifiers_masked"] is True
    assert SUBSTANCE in [allergy["substance_text"] for allergy in record["allergies"]]
    assert all("storage_key" not in d for d in record["documents"])
    assert exports_by(django_db_blocker, "patient", patient_id)[before:] == [("export", "export")]


def test_doctor_exports_the_record_from_the_chart(
    page: Page, server: Daphne, patient_id: int, django_db_blocker: DjangoDbBlocker, tmp_path: Path
) -> None:
    before = len(exports_by(django_db_blocker, "doctor", patient_id))
    sign_in(page, server.url, "doctor")
    expect(page.get_by_role("heading", level=1)).to_have_text("My clinic")
    page.goto(f"{server.url}/patients/{patient_id}")
    summary = page.get_by_test_id("chart-summary")
    expect(summary.get_by_role("heading", name="Summary")).to_be_visible()

    with page.expect_download() as info:
        summary.get_by_role("link", name="Export record").click()
    saved = tmp_path / "record.json"
    info.value.save_as(saved)
    record = json.loads(saved.read_text(encoding="utf-8"))["record"]
    assert record["patient"]["id"] == patient_id
    assert record["patient"]["identifiers_masked"] is False  # the care team may read identifiers in full
    assert SUBSTANCE in [allergy["substance_text"] for allergy in record["allergies"]]
    assert exports_by(django_db_blocker, "doctor", patient_id)[before:] == [("export", "export")]
