"""Telehealth test data. Visits are normally made by the real check-in service (``tests/telehealth/conftest.py``);
``visit_row`` writes a bare row for selector and constraint tests that need a state directly."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from telehealth.models import Visit

_next_appointment_id = [900_000]


def visit_row(*, patient: Any, practitioner: Any, **fields: Any) -> Visit:
    """A Visit row for ``patient`` (an ``ehr`` PatientRef or Patient with a portal ``user_id``) waiting for
    ``practitioner``. ``appointment_id`` defaults to a fresh fake id (no appointment exists behind it)."""
    now = timezone.now()
    _next_appointment_id[0] += 1
    values: dict[str, Any] = {
        "appointment_id": _next_appointment_id[0],
        "patient_id": patient.id,
        "patient_user_id": patient.user_id,
        "practitioner": practitioner,
        "location_id": practitioner.locations.first().pk if practitioner.locations.exists() else None,
        "consent_at": now,
        "checked_in_at": now,
        "queue_key": now + dt.timedelta(minutes=10),
    }
    values.update(fields)
    return Visit.objects.create(**values)
