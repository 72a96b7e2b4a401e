"""Frozen values the ehr app hands to its API and to other apps (never model instances across apps)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: Any  # JSON value; identifiers appear masked ("•••• 1234")
    after: Any


@dataclass(frozen=True)
class PatientHistoryEntry:
    """One version of a Patient with the fields that changed relative to the previous version."""

    version: int
    changed_fields: list[str]
    actor_id: int
    actor_display_name: str
    reason: str
    recorded_at: datetime.datetime
    diff: list[FieldChange]


@dataclass(frozen=True)
class PatientIdentifiers:
    """Plaintext identifiers: only ``patient_identifiers_get`` produces this, after an audited access check."""

    patient_id: int
    national_id: str
    insurance_member_id: str
