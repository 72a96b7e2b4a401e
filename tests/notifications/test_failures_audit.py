"""The failures list names patients only through ehr's audited patient_refs_get: each page that shows patient names
writes one read audit row (PatientSearch, purpose reminder_failures, the ids); a page without patients audits
nothing."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from ehr.models import AuditEvent
from notifications.services import message_enqueue_for_patient, staff_alert_send
from notifications.services.messages import preference_for
from tests.conftest import csrf_login

pytestmark = pytest.mark.django_db(transaction=True)
FAILURES = "/api/v1/notifications/failures/"


def _reads() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(entity_type="PatientSearch", purpose="reminder_failures").order_by("id"))


def test_failures_page_naming_a_patient_writes_one_audit_row(
    providers: Any, patient: Any, scheduler: Any, frozen_now: Any
) -> None:
    preference = preference_for(patient.pk)
    preference.sms_opt_out = preference.email_opt_out = True
    preference.save()
    with transaction.atomic():
        message_enqueue_for_patient(
            patient_id=patient.pk, kind="reminder", template_key="reminder", due_at=timezone.now(), context={}
        )
    client = APIClient()
    csrf_login(client, scheduler.username)
    before = AuditEvent.objects.count()
    page = client.get(FAILURES).json()
    [row] = page["results"]
    assert row["patient_name"] == f"{patient.given_name} {patient.family_name}"
    [read] = _reads()
    assert read.actor_id == scheduler.pk
    assert read.action == "read"
    assert read.detail["patient_ids"] == [patient.pk]
    assert AuditEvent.objects.count() == before + 1
    client.get(FAILURES)
    assert len(_reads()) == 2  # every showing is audited


def test_failures_page_without_patients_audits_nothing(
    providers: Any, doctor: Any, scheduler: Any, frozen_now: Any
) -> None:
    with transaction.atomic():
        staff_alert_send(user_id=doctor.pk, kind="staff_wait_alert", context={"minutes": 16})
    client = APIClient()
    csrf_login(client, scheduler.username)
    [row] = client.get(FAILURES).json()["results"]
    assert (row["kind"], row["patient_name"]) == ("staff_alert", "")
    assert _reads() == []
