"""What the signaling app, the API and other apps receive from telehealth: frozen values, never model instances."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any, Literal

ParticipantRole = Literal["patient", "practitioner"]
ViewerRole = Literal["patient", "practitioner", "staff"]


@dataclass(frozen=True)
class SignalingGrant:
    """Who a user is in a visit's signaling channel. One ``patient`` and one ``practitioner`` per 1:1 visit;
    ``participant_id`` is the stable name peers address each other by. ``status`` is the visit's status now."""

    visit_id: str
    role: ParticipantRole
    participant_id: str
    display_name: str
    status: str


@dataclass(frozen=True)
class PersonRef:
    id: int
    name: str


@dataclass(frozen=True)
class IntakeAnswer:
    question: str
    answer: Any


@dataclass(frozen=True)
class VisitDetail:
    """A visit as one viewer may see it. ``role`` is the viewer's: the patient sees their own visit; staff also get
    ``patient_id``, ``encounter_id`` and ``intake`` (None for the patient)."""

    id: str
    appointment_id: int
    status: str
    practitioner: PersonRef
    patient_name: str
    checked_in_at: datetime.datetime
    admitted_at: datetime.datetime | None
    ended_at: datetime.datetime | None
    duration_seconds: int | None
    ready: bool
    device_check: dict[str, Any]
    summary: str
    audio_only: bool
    version: int
    role: ViewerRole
    patient_id: int | None = None
    encounter_id: int | None = None
    intake: list[IntakeAnswer] | None = None


@dataclass(frozen=True)
class IntakeQuestionRef:
    id: str
    text: str
    kind: Literal["text", "yesno"]
    required: bool


@dataclass(frozen=True)
class CheckInInfo:
    """What the patient's check-in page needs before the visit exists."""

    appointment_id: int
    start: datetime.datetime
    end: datetime.datetime
    practitioner_name: str
    type_name: str
    consent_text: str
    questions: tuple[IntakeQuestionRef, ...]
    visit_id: str | None
    visit_status: str | None
    opens_at: datetime.datetime
    closes_at: datetime.datetime
    can_check_in: bool


@dataclass(frozen=True)
class NoticeRef:
    body: str
    created_at: datetime.datetime


@dataclass(frozen=True)
class WaitingInfo:
    """The waiting room's view: place in the queue (1-based), how many are ahead, the estimate in minutes."""

    visit_id: str
    status: str
    position: int | None
    ahead: int | None
    estimated_wait_minutes: int | None
    doctor_name: str
    doctor_status: str
    notice: NoticeRef | None
    ready: bool


@dataclass(frozen=True)
class QueueEntry:
    visit_id: str
    appointment_id: int
    patient_name: str
    appointment_start: datetime.datetime
    checked_in_at: datetime.datetime
    waiting_seconds: int
    ready: bool
    device_check: dict[str, Any]
    intake: list[IntakeAnswer]
    connected: bool
    position: int
    practitioner_id: int
    practitioner_name: str


@dataclass(frozen=True)
class PresenceRef:
    status: str
    last_seen_at: datetime.datetime | None


@dataclass(frozen=True)
class CurrentVisitRef:
    visit_id: str
    appointment_id: int
    patient_name: str
    admitted_at: datetime.datetime


@dataclass(frozen=True)
class ClinicQueue:
    """The virtual clinic console: the viewer's own queue, the pool of their clinics, their notice and presence."""

    mine: list[QueueEntry]
    pool: list[QueueEntry]
    notice: NoticeRef | None
    presence: PresenceRef
    current_visit: CurrentVisitRef | None


@dataclass(frozen=True)
class MessageRef:
    id: int
    visit_id: str
    kind: str
    body: str
    sender_id: int | None
    sender_name: str
    sender_role: str
    created_at: datetime.datetime

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "visit_id": self.visit_id,
            "kind": self.kind,
            "body": self.body,
            "sender_id": self.sender_id,
            "sender_name": self.sender_name,
            "sender_role": self.sender_role,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class IceServer:
    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True)
class IceConfig:
    """An RTCConfiguration for the browser: STUN, and TURN with short-lived REST credentials."""

    ice_servers: tuple[IceServer, ...]
    ice_transport_policy: Literal["all", "relay"]
    expires_at: datetime.datetime
    ttl_seconds: int


@dataclass(frozen=True)
class CheckInLinkRef:
    token: str
    url: str
    appointment_id: int
    expires_at: datetime.datetime


@dataclass(frozen=True)
class QualityReportRef:
    id: int
    visit_id: str
    user_id: int
    user_name: str
    role: str
    created_at: datetime.datetime
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VisitQualitySummary:
    """A recent visit with the latest quality report of each participant (support staff's page)."""

    visit_id: str
    appointment_id: int
    status: str
    practitioner_name: str
    admitted_at: datetime.datetime | None
    ended_at: datetime.datetime | None
    duration_seconds: int | None
    reports: list[QualityReportRef]
