"""Admin audit search: filters, pagination, admin-only, and the search itself audited."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from ehr.models import AuditEvent
from ehr.services.audit import audit_record
from tests.conftest import csrf_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_api(admin_user) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    assert csrf_login(client, "admin-test").status_code == 200
    return client


def test_admin_filters_the_audit_log_by_patient_actor_and_outcome(admin_api: APIClient, doctor, patient) -> None:
    for pid in (7, 7, 8):
        audit_record(actor=doctor, action="read", entity_type="Patient", entity_id=pid, patient_id=pid)
    audit_record(actor=patient, action="read", entity_type="Patient", entity_id=7, patient_id=7, outcome="denied")

    by_patient = admin_api.get("/api/v1/ehr/audit-events/", {"patient_id": 7}).json()
    assert by_patient["count"] == 3
    by_actor = admin_api.get("/api/v1/ehr/audit-events/", {"patient_id": 7, "actor": "dr-test"}).json()
    assert by_actor["count"] == 2
    assert {r["actor_role"] for r in by_actor["results"]} == {"practitioner"}
    denied = admin_api.get("/api/v1/ehr/audit-events/", {"outcome": "denied"}).json()
    assert [(r["actor_username"], r["patient_id"]) for r in denied["results"]] == [("pt-test", 7)]


def test_audit_search_is_itself_audited_without_filter_values(admin_api: APIClient, admin_user) -> None:
    admin_api.get("/api/v1/ehr/audit-events/", {"patient_id": 42, "action": "read"})
    row = AuditEvent.objects.get(entity_type="AuditLog")
    assert (row.actor_id, row.purpose, row.patient_id) == (admin_user.pk, "audit_review", 42)
    assert row.detail == {"filters": ["patient_id", "action"]}


def test_audit_list_query_count_does_not_grow_with_rows(admin_api: APIClient, doctor) -> None:
    for i in range(30):
        audit_record(actor=doctor, action="read", entity_type="Patient", entity_id=i, patient_id=i)
    with CaptureQueriesContext(connection) as queries:
        response = admin_api.get("/api/v1/ehr/audit-events/")
    assert response.status_code == 200
    # session, user, the audit insert for this search, count, page (actors joined): none per row
    assert len(queries) <= 6, [q["sql"] for q in queries]


def test_audit_log_is_for_admins_only(api: APIClient, doctor) -> None:
    csrf_login(api, "dr-test")
    assert api.get("/api/v1/ehr/audit-events/").status_code == 403


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"patient_id": "x"}, "patient_id"),
        ({"action": "peek"}, "action"),
        ({"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
    ],
)
def test_bad_filters_are_a_400_naming_the_field(admin_api: APIClient, params: dict[str, str], field: str) -> None:
    response = admin_api.get("/api/v1/ehr/audit-events/", params)
    assert response.status_code == 400
    assert field in response.json()["fields"]
