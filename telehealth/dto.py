"""What the signaling app, the API and other apps receive from telehealth: frozen values, never model instances."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any, Literal

ParticipantRole = Literal["patient", "practitioner", "interpreter", "family", "clinician"]
GuestRoleName = Literal["interpreter", "family", "clinician"]
MediaModeName = Literal["direct", "relay"]
ViewerRole = Literal["patient", "practitioner", "staff"]


@dataclass(frozen=True)
class RosterEntry:
    """One participant of a visit as the signaling sockets show it. ``status``: ``invited`` (a guest whose link is
    not used yet), ``waiting`` (a guest in the lobby, or the patient before admission) or ``admitted``.
    ``connected`` is the database's last word; each socket overrides it with the peers it knows."""

    participant_id: str
    role: str
    name: str
    admitted: bool
    muted: bool
    connected: bool
    status: str
    ready: bool

    def wire(self) -> dict[str, Any]:
        return {
            "participant_id": self.participant_id,
            "role": self.role,
            "name": self.name,
            "admitted": self.admitted,
            "muted": self.muted,
            "connected": self.connected,
            "status": self.status,
            "ready": self.ready,
        }


@dataclass(frozen=True)
class SignalingGrant:
    """Who a user (or a guest's browser session) is in a visit's signaling channel: its ``patient``, its
    ``practitioner`` or a guest (role ``interpreter``/``family``/``clinician``, participant id ``guest-<hex>``).
    ``participant_id`` is the stable name peers address each other by. ``status`` is the visit's status now;
    ``mode`` its media mode; ``admitted`` whether this participant may signal (guests once admitted);
    ``removed`` a guest the practitioner removed (its socket is refused with 4411); ``roster`` everyone in the
    visit; ``multiparty`` whether the visit has guests or is in relay mode (only then are roster frames sent)."""

    visit_id: str
    role: ParticipantRole
    participant_id: str
    display_name: str
    status: str
    mode: MediaModeName = "direct"
    admitted: bool = True
    removed: bool = False
    invitation_id: str | None = None
    roster: tuple[RosterEntry, ...] = ()
    multiparty: bool = False


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
    media_mode: str = "direct"
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
    media_mode: str = "direct"
    relay_reports: list[RelayReportRef] = field(default_factory=list)


@dataclass(frozen=True)
class InvitationRef:
    """A new invitation with its signed link (``url`` is the path ``/visit/join/<token>``; the API makes it
    absolute). The token is shown once, to the inviter; lists never carry it."""

    id: str
    participant_id: str
    appointment_id: int
    visit_id: str | None
    role: str
    name: str
    token: str
    url: str
    expires_at: datetime.datetime


@dataclass(frozen=True)
class InvitationSummary:
    """An invitation in a visit's list: ``status`` is ``invited``, ``used`` (the guest opened the link and waits),
    ``admitted``, ``removed`` or ``expired`` (never used before its expiry)."""

    id: str
    participant_id: str
    role: str
    name: str
    status: str
    expires_at: datetime.datetime
    used_at: datetime.datetime | None
    admitted_at: datetime.datetime | None
    removed_at: datetime.datetime | None
    muted: bool
    connected: bool
    ready: bool
    device_check: dict[str, Any]
    created_at: datetime.datetime
    created_by_name: str


@dataclass(frozen=True)
class GuestInfo:
    """A guest's view of their visit (the lobby): ``state`` is ``not_started`` (no visit yet: the patient has not
    checked in), ``waiting`` (for the doctor to let them in), ``admitted``, ``removed`` or ``ended``."""

    invitation_id: str
    participant_id: str
    appointment_id: int
    visit_id: str | None
    visit_status: str | None
    role: str
    name: str
    state: str
    media_mode: str
    practitioner_name: str
    appointment_start: datetime.datetime | None
    device_check: dict[str, Any]
    ready: bool


@dataclass(frozen=True)
class RelayReportRef:
    """The relay's latest telemetry of one participant: tracks forwarded to them and how (``forward`` or
    ``transcode``); ``forwarded``/``transcoded`` count the tracks of each kind."""

    participant_id: str
    updated_at: datetime.datetime
    tracks: list[dict[str, Any]]
    forwarded: int
    transcoded: int
    connection: str | None
