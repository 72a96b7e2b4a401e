"""What other apps (telehealth, notifications, billing, interop) and the API receive from scheduling: frozen
values, never model instances."""

from __future__ import annotations

import datetime
from dataclasses import dataclass


@dataclass(frozen=True)
class ResourceRef:
    schedule_id: int
    kind: str
    name: str


@dataclass(frozen=True)
class AppointmentRef:
    id: int
    patient_id: int
    appointment_type_id: int
    appointment_type_name: str
    practitioner_id: int
    practitioner_display_name: str
    location_id: int
    location_name: str
    modality: str
    status: str
    start: datetime.datetime
    end: datetime.datetime
    resources: tuple[ResourceRef, ...]
    encounter_id: int | None
    series_id: int | None
    comment: str
    cancel_reason: str
    override_reason: str
    arrived_at: datetime.datetime | None
    checked_in_at: datetime.datetime | None
    visit_started_at: datetime.datetime | None
    fulfilled_at: datetime.datetime | None
    version: int
    created_at: datetime.datetime
    updated_at: datetime.datetime


@dataclass(frozen=True)
class HoldRef:
    id: str
    patient_id: int
    appointment_type_id: int
    practitioner_id: int
    location_id: int
    start: datetime.datetime
    end: datetime.datetime
    expires_at: datetime.datetime
    resources: tuple[ResourceRef, ...]


@dataclass(frozen=True)
class FreeSlot:
    """A bookable start for an appointment type: the practitioner and one free schedule per required resource."""

    start: datetime.datetime
    end: datetime.datetime
    practitioner_id: int
    practitioner_display_name: str
    location_id: int
    resources: tuple[ResourceRef, ...]


@dataclass(frozen=True)
class SeriesRef:
    """A recurring series and its occurrences (start order), each an appointment with its own status.
    ``first_start_local`` is the wall-clock start of the first occurrence in ``time_zone`` (no offset)."""

    id: int
    patient_id: int
    appointment_type_id: int
    rrule: str
    time_zone: str
    first_start: datetime.datetime
    first_start_local: datetime.datetime
    created_at: datetime.datetime
    occurrences: tuple[AppointmentRef, ...]
