"""What other apps and the API receive from notifications: frozen values, never model instances."""

from __future__ import annotations

import datetime
from dataclasses import dataclass


@dataclass(frozen=True)
class MessageRef:
    id: str
    channel: str
    kind: str
    state: str
    due_at: datetime.datetime
    created: bool  # False when an existing message for the same source (or key) was returned


@dataclass(frozen=True)
class LanguageOption:
    code: str
    name: str


@dataclass(frozen=True)
class PreferenceView:
    channels: list[str]
    language: str
    languages: list[LanguageOption]
    sms_opt_out: bool
    email_opt_out: bool
    phone_masked: str
    email_masked: str


@dataclass(frozen=True)
class HealthDay:
    date: datetime.date
    channel: str
    queued: int
    sent: int
    delivered: int
    failed: int
    undeliverable: int
    fell_back: int


@dataclass(frozen=True)
class HealthTotals:
    sent: int
    delivered: int
    failed: int
    fell_back: int
    delivery_rate: float | None


@dataclass(frozen=True)
class Health:
    days: list[HealthDay]
    totals: HealthTotals


@dataclass(frozen=True)
class FailureRow:
    id: str
    kind: str
    channel: str
    state: str
    attempts: int
    last_error_code: str
    recipient_masked: str
    patient_name: str
    created_at: datetime.datetime
    fell_back_to: str | None
    resendable: bool
