"""Guests of a video visit (issue 7): invitations, the guest's lobby, admission, mute and removal, the media mode,
and the media relay's telemetry. Every service owns one transaction; what sockets and the relay must hear is sent
after commit (telehealth/channels.py). docs/telehealth.md, "Guests and the media relay"."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from ehr.models import User
from scheduling import selectors as scheduling_selectors
from scheduling.services.transitions import RELEASING_STATUSES as RELEASING_APPOINTMENT_STATUSES
from telehealth import events
from telehealth.channels import (
    participant_frame_send_on_commit,
    relay_participant_mute_send_on_commit,
    relay_participant_remove_send_on_commit,
    visit_mode_send_on_commit,
    visit_removed_send_on_commit,
    visit_roster_send_on_commit,
)
from telehealth.dto import GuestInfo, InvitationRef, RelayReportRef
from telehealth.errors import (
    AppointmentNotFound,
    Forbidden,
    GuestNotFound,
    GuestNotJoined,
    InvalidInput,
    InvalidToken,
    InvitationExpired,
    InvitationRevoked,
    InvitationUsed,
    NoGuestSession,
    NotAllowed,
    NotVideoAppointment,
    VisitClosed,
    VisitNotFound,
)
from telehealth.models import GuestRole, MediaMode, Visit, VisitInvitation, VisitRelayReport, VisitStatus
from telehealth.selectors import (
    guest_info_from,
    may_manage_guests,
    parse_uuid,
    relay_report_ref,
    session_invitation,
    visit_roster,
)

S = VisitStatus
INVITE_SALT = "telehealth.invite"
JOIN_PATH = "/visit/join/"
SESSION_KEY = "telehealth_guests"
SESSION_MAX_GUESTS = 10
NAME_MAX = 80
EXPIRY_MIN_MINUTES, EXPIRY_MAX_MINUTES = 5, 1440
GUEST_ID = re.compile(r"^guest-([0-9a-f]{32})$")
OPEN_VISIT_STATUSES = (S.WAITING, S.IN_PROGRESS, S.LEFT)
DEVICE_CHECK_KEYS = ("camera", "microphone", "speaker", "turn")
DEVICE_CHECK_VALUES = frozenset({"pass", "fail", "skipped"})


# --- helpers ----------------------------------------------------------------------------------------------------------


def _lock_visit(visit_id: object) -> Visit:
    parsed = parse_uuid(visit_id)
    visit = Visit.objects.select_for_update(of=("self",)).filter(pk=parsed).first() if parsed else None
    if visit is None:
        raise VisitNotFound()
    return visit


def _push_roster(visit_id: object) -> None:
    """Inside the transaction: read the roster as it will be committed, send it after commit."""
    visit_roster_send_on_commit(visit_id=visit_id, participants=visit_roster(visit_id=visit_id))


def _practitioner_only(actor: User, visit: Visit, what: str) -> None:
    if actor.pk == visit.practitioner_id:
        return
    if may_manage_guests(actor, practitioner_id=visit.practitioner_id, location_id=visit.location_id):
        raise Forbidden(f"Only the visit's practitioner {what}.")
    raise VisitNotFound()


def _guest_of(visit: Visit, participant_id: Any, *, lock: bool = True) -> VisitInvitation:
    match = GUEST_ID.match(participant_id) if isinstance(participant_id, str) else None
    if match is None:
        raise GuestNotFound()
    query = VisitInvitation.objects.filter(pk=match.group(1), visit=visit)
    invitation = (query.select_for_update() if lock else query).first()
    if invitation is None:
        raise GuestNotFound()
    return invitation


def session_hash(session_key: str) -> str:
    """What is stored of the consuming browser's session: a SHA-256 of its key (never the key itself)."""
    return hashlib.sha256(f"telehealth.guest:{session_key}".encode()).hexdigest()


def session_guest_ids(request: HttpRequest) -> list[str]:
    """The invitation ids this browser session consumed (``request.session["telehealth_guests"]``)."""
    raw = request.session.get(SESSION_KEY, []) if hasattr(request, "session") else []
    return [str(i) for i in raw if isinstance(i, str)] if isinstance(raw, list) else []


def _validate_invitation_input(role: Any, name: Any, expires_in_minutes: Any) -> tuple[str, str, int]:
    errors: dict[str, list[str]] = {}
    if role not in GuestRole.values:
        errors["role"] = [f"One of: {', '.join(GuestRole.values)}."]
    clean_name = name.strip() if isinstance(name, str) else ""
    if not clean_name or len(clean_name) > NAME_MAX:
        errors["name"] = [f"A name of 1 to {NAME_MAX} characters."]
    minutes = settings.TELEHEALTH_INVITATION_DEFAULT_MINUTES if expires_in_minutes is None else expires_in_minutes
    if (
        isinstance(minutes, bool)
        or not isinstance(minutes, int)
        or not EXPIRY_MIN_MINUTES <= minutes <= EXPIRY_MAX_MINUTES
    ):
        errors["expires_in_minutes"] = [f"A whole number of minutes from {EXPIRY_MIN_MINUTES} to {EXPIRY_MAX_MINUTES}."]
    if errors:
        raise InvalidInput(errors)
    return str(role), clean_name, int(minutes)


# --- invitations ------------------------------------------------------------------------------------------------------


def invitation_create(
    *,
    actor: User,
    role: Any,
    name: Any,
    visit_id: str | None = None,
    appointment_id: int | None = None,
    expires_in_minutes: Any = None,
) -> InvitationRef:
    """Invite a guest (``role`` interpreter, family or clinician; ``name`` 1-80 characters, shown to everyone in
    the visit) to the video visit ``visit_id``, or ahead of time to the video appointment ``appointment_id`` (the
    invitation binds to its visit at check-in). The link expires after ``expires_in_minutes`` (5-1440, default
    ``TELEHEALTH_INVITATION_DEFAULT_MINUTES``). Who may: the visit's (appointment's) practitioner, or a scheduler
    or admin working at its location; others get ``VisitNotFound``/``AppointmentNotFound``. A finished visit or a
    cancelled appointment gets ``VisitClosed``. The roster of an existing visit is pushed after commit."""
    role, clean_name, minutes = _validate_invitation_input(role, name, expires_in_minutes)
    if (visit_id is None) == (appointment_id is None):
        raise InvalidInput({"non_field_errors": ["Name a visit or an appointment."]})
    now = timezone.now()
    with transaction.atomic():
        visit: Visit | None
        if visit_id is not None:
            visit = _lock_visit(visit_id)
            if not may_manage_guests(actor, practitioner_id=visit.practitioner_id, location_id=visit.location_id):
                raise VisitNotFound()
            target_appointment = visit.appointment_id
        else:
            if isinstance(appointment_id, bool) or not isinstance(appointment_id, int):
                raise AppointmentNotFound()
            appointment = scheduling_selectors.appointment_get(appointment_id=appointment_id)
            if appointment is None or not may_manage_guests(
                actor, practitioner_id=appointment.practitioner_id, location_id=appointment.location_id
            ):
                raise AppointmentNotFound()
            if appointment.modality != "video":
                raise NotVideoAppointment()
            if appointment.status in RELEASING_APPOINTMENT_STATUSES or appointment.status == "fulfilled":
                raise VisitClosed(f"The appointment is {appointment.status}.")
            target_appointment = appointment.id
            visit = Visit.objects.select_for_update(of=("self",)).filter(appointment_id=appointment.id).first()
        if visit is not None and visit.status == S.FINISHED:
            raise VisitClosed()
        invitation = VisitInvitation.objects.create(
            appointment_id=target_appointment,
            visit=visit,
            role=role,
            name=clean_name,
            expires_at=now + dt.timedelta(minutes=minutes),
            created_by=actor,
            created_at=now,
        )
        if visit is not None:
            _push_roster(visit.pk)
    token = invitation_token(invitation_id=str(invitation.pk))
    return InvitationRef(
        id=str(invitation.pk),
        participant_id=invitation.participant_id,
        appointment_id=invitation.appointment_id,
        visit_id=str(visit.pk) if visit is not None else None,
        role=role,
        name=clean_name,
        token=token,
        url=JOIN_PATH + token,
        expires_at=invitation.expires_at,
    )


def invitation_token(*, invitation_id: str) -> str:
    """The link token of an invitation: ``django.core.signing`` of its id (salt ``telehealth.invite``). Signing the
    same id again gives another valid token for the same single-use invitation (the demo re-prints its link)."""
    return signing.dumps(str(invitation_id), salt=INVITE_SALT)


def _invitation_id(token: Any) -> Any:
    if not isinstance(token, str) or not token or len(token) > 500:
        raise InvalidToken()
    try:
        raw = signing.loads(token, salt=INVITE_SALT)
    except signing.BadSignature:
        raise InvalidToken() from None
    parsed = parse_uuid(raw)
    if parsed is None:
        raise InvalidToken()
    return parsed


def invitation_consume(*, token: Any, request: HttpRequest) -> GuestInfo:
    """A guest opens their link (anyone, signed in or not). The token must verify (``InvalidToken``, 400). Under
    the invitation's row lock: removed -> ``InvitationRevoked`` (410); used by another browser session ->
    ``InvitationUsed`` (409); used by this session -> the same answer again (idempotent, even after expiry);
    expired, or its visit finished or appointment cancelled -> ``InvitationExpired`` (410). Otherwise it is marked
    used with a hash of this session's key, and the id is added to the session's ``telehealth_guests`` (the
    grant the signaling socket, the lobby and the ICE servers read). Returns the guest's lobby view."""
    invitation_id = _invitation_id(token)
    session = request.session
    if session.session_key is None:
        session.save()  # an anonymous browser gets its session (and cookie) now
    key_hash = session_hash(session.session_key or "")
    already = str(invitation_id) in session_guest_ids(request)
    now = timezone.now()
    with transaction.atomic():
        invitation = VisitInvitation.objects.select_for_update().filter(pk=invitation_id).first()
        if invitation is None:
            raise InvalidToken()
        if invitation.removed_at is not None:
            raise InvitationRevoked()
        if invitation.used_at is not None:
            if invitation.used_session != key_hash and not already:
                raise InvitationUsed()
        else:
            if invitation.expires_at <= now:
                raise InvitationExpired()
            visit = invitation.visit
            if visit is None:
                visit = Visit.objects.filter(appointment_id=invitation.appointment_id).first()
                invitation.visit = visit
            if visit is not None and visit.status == S.FINISHED:
                raise InvitationExpired("The visit is over.")
            if visit is None:
                appointment = scheduling_selectors.appointment_get(appointment_id=invitation.appointment_id)
                if appointment is None or appointment.status in RELEASING_APPOINTMENT_STATUSES:
                    raise InvitationExpired("The appointment was cancelled.")
            invitation.used_at = now
            invitation.used_session = key_hash
            invitation.save(update_fields=["used_at", "used_session", "visit"])
            if invitation.visit_id is not None:
                _push_roster(invitation.visit_id)
        info = guest_info_from(invitation)
    ids = [i for i in session_guest_ids(request) if i != str(invitation_id)] + [str(invitation_id)]
    session[SESSION_KEY] = ids[-SESSION_MAX_GUESTS:]
    return info


def guest_device_check_record(*, guest_invitation_ids: list[str], result: Any) -> GuestInfo:
    """The guest's device and network check (``camera``, ``microphone``, ``speaker``, ``turn``: each ``pass``,
    ``fail`` or ``skipped``), stored on their invitation; the practitioner's roster shows them ready when camera
    and microphone passed. The browser session's guest only (``NoGuestSession``), not once removed."""
    if not isinstance(result, dict):
        raise InvalidInput({"non_field_errors": ["Send the check as an object."]})
    errors: dict[str, list[str]] = {k: ["Unknown field."] for k in result if k not in DEVICE_CHECK_KEYS}
    for key in DEVICE_CHECK_KEYS:
        if result.get(key) not in DEVICE_CHECK_VALUES:
            errors[key] = ["One of: pass, fail, skipped."]
    if errors:
        raise InvalidInput(errors)
    found = session_invitation(guest_invitation_ids=guest_invitation_ids)
    if found is None:
        raise NoGuestSession()
    with transaction.atomic():
        invitation = VisitInvitation.objects.select_for_update(of=("self",)).select_related("visit").get(pk=found.pk)
        if invitation.removed_at is not None:
            raise InvitationRevoked()
        invitation.device_check = {
            **{k: result[k] for k in DEVICE_CHECK_KEYS},
            "checked_at": timezone.now().isoformat(),
        }
        invitation.save(update_fields=["device_check"])
        if invitation.visit_id is not None:
            _push_roster(invitation.visit_id)
        return guest_info_from(invitation)


def guest_presence_mark(*, invitation_id: str, present: bool) -> None:
    """The signaling consumer reports that a guest's socket connected or closed (``connected``, which the
    practitioner's guest list shows). One UPDATE; a removed guest stays disconnected. Callers: the consumer."""
    parsed = parse_uuid(invitation_id)
    if parsed is None:
        return
    with transaction.atomic():
        query = VisitInvitation.objects.filter(pk=parsed).exclude(connected=present)
        if present:
            query = query.filter(removed_at__isnull=True)
        query.update(connected=present)


# --- the practitioner's controls --------------------------------------------------------------------------------------


def _relay_on(visit: Visit) -> bool:
    """Switch ``visit`` (locked) to relay mode; True when it changed. Relay is for the rest of the visit."""
    if visit.media_mode == MediaMode.RELAY:
        return False
    visit.media_mode = MediaMode.RELAY
    visit.version += 1
    visit.updated_at = timezone.now()
    visit.save(update_fields=["media_mode", "version", "updated_at"])
    events.visit_changed(visit_id=visit.pk, status=visit.status, version=visit.version)
    visit_mode_send_on_commit(visit_id=visit.pk, mode=MediaMode.RELAY)
    return True


def guest_admit(*, actor: User, visit_id: str, participant_id: Any) -> str:
    """The practitioner lets a guest in: the guest must have opened their link and not been removed
    (``GuestNotJoined``, ``InvitationRevoked``); the visit waiting or in progress. The visit switches to relay mode
    (all sockets hear ``visit-mode``), and the roster is pushed. Admitting twice is a no-op. Returns the media
    mode. The visit's practitioner only."""
    with transaction.atomic():
        visit = _lock_visit(visit_id)
        _practitioner_only(actor, visit, "admits guests")
        invitation = _guest_of(visit, participant_id)
        if invitation.removed_at is not None:
            raise InvitationRevoked()
        if invitation.used_at is None:
            raise GuestNotJoined()
        if visit.status not in (S.WAITING, S.IN_PROGRESS):
            raise VisitClosed("Guests join a visit that is waiting or in progress.")
        if invitation.admitted_at is None:
            invitation.admitted_at = max(timezone.now(), invitation.used_at)
            invitation.save(update_fields=["admitted_at"])
            _relay_on(visit)
            _push_roster(visit.pk)
        return visit.media_mode


def participant_mute_set(*, actor: User, visit_id: str, participant_id: Any, audio: Any) -> None:
    """The practitioner mutes (``audio`` false) or unmutes the patient (``participant_id`` ``"patient"``) or a
    guest. After commit: the relay stops or resumes forwarding their audio, the participant's sockets get
    ``{"kind":"muted","participant_id","by":"practitioner","audio"}`` (the browser stops its microphone too), and
    everyone gets the roster. Repeating the current state changes nothing. The visit's practitioner only."""
    if not isinstance(audio, bool):
        raise InvalidInput({"audio": ["true (unmute) or false (mute)."]})
    with transaction.atomic():
        visit = _lock_visit(visit_id)
        _practitioner_only(actor, visit, "mutes participants")
        if visit.status == S.FINISHED:
            raise VisitClosed()
        muted = not audio
        if participant_id == "patient":
            if visit.patient_muted == muted:
                return
            visit.patient_muted = muted
            visit.save(update_fields=["patient_muted"])
        else:
            invitation = _guest_of(visit, participant_id)
            if invitation.removed_at is not None:
                raise InvitationRevoked()
            if invitation.muted == muted:
                return
            invitation.muted = muted
            invitation.save(update_fields=["muted"])
        pid = str(participant_id)
        relay_participant_mute_send_on_commit(visit_id=visit.pk, participant_id=pid, audio=audio)
        participant_frame_send_on_commit(
            visit_id=visit.pk,
            participant_id=pid,
            frame={"kind": "muted", "participant_id": pid, "by": "practitioner", "audio": audio},
        )
        _push_roster(visit.pk)


def participant_mute(*, actor: User, visit_id: str, participant_id: Any) -> None:
    """``participant_mute_set`` with ``audio`` false."""
    participant_mute_set(actor=actor, visit_id=visit_id, participant_id=participant_id, audio=False)


def participant_unmute(*, actor: User, visit_id: str, participant_id: Any) -> None:
    """``participant_mute_set`` with ``audio`` true."""
    participant_mute_set(actor=actor, visit_id=visit_id, participant_id=participant_id, audio=True)


def guest_remove(*, actor: User, visit_id: str, participant_id: Any) -> None:
    """The practitioner removes a guest (admitted, waiting in the lobby, or only invited: the link stops working).
    After commit the guest's sockets close with 4411 and refuse to reconnect, the relay closes its peer
    connections, and everyone gets the roster. The patient cannot be removed (``NotAllowed``: end the visit).
    Removing twice is a no-op. The visit's practitioner only."""
    with transaction.atomic():
        visit = _lock_visit(visit_id)
        _practitioner_only(actor, visit, "removes guests")
        if participant_id in ("patient", "practitioner"):
            raise NotAllowed("Only guests can be removed; end the visit instead.")
        invitation = _guest_of(visit, participant_id)
        if invitation.removed_at is not None:
            return
        invitation.removed_at = max(timezone.now(), invitation.created_at)
        invitation.connected = False
        invitation.save(update_fields=["removed_at", "connected"])
        pid = invitation.participant_id
        visit_removed_send_on_commit(visit_id=visit.pk, participant_id=pid)
        relay_participant_remove_send_on_commit(visit_id=visit.pk, participant_id=pid)
        _push_roster(visit.pk)


def visit_media_mode_set(*, actor: User, visit_id: str, mode: Any = MediaMode.RELAY) -> str:
    """The practitioner forces the media relay (e.g. the two browsers cannot reach each other directly). Only
    ``relay``: a visit never goes back to direct (``InvalidInput``). The visit must be waiting or in progress.
    Idempotent. The visit's practitioner only. Returns the mode."""
    if mode != MediaMode.RELAY:
        raise InvalidInput({"mode": ["Only relay: a visit does not go back to direct."]})
    with transaction.atomic():
        visit = _lock_visit(visit_id)
        _practitioner_only(actor, visit, "switches the media mode")
        if visit.status not in (S.WAITING, S.IN_PROGRESS):
            raise VisitClosed("The media mode changes while the visit is waiting or in progress.")
        if _relay_on(visit):
            _push_roster(visit.pk)
        return visit.media_mode


# --- the relay's telemetry --------------------------------------------------------------------------------------------

TRACK_KEYS = frozenset({"kind", "source", "mode", "codec", "packets", "bytes", "keyframe_requests"})
TRACK_OPTIONAL_COUNTERS = frozenset({"dropped", "encoded_frames"})
PUBLISHED_KEYS = frozenset({"kind", "codec", "frames", "bytes", "keyframes", "keyframe_requests"})
REPORT_KEYS = frozenset({"tracks", "connection", "pcs", "published"})
CONNECTION_STATES = frozenset({"new", "connecting", "connected", "disconnected", "failed", "closed"})
CODEC = re.compile(r"^[A-Za-z0-9._-]{1,20}$")
PARTICIPANT = re.compile(r"^(patient|practitioner|guest-[0-9a-f]{32})$")
PC_ID = re.compile(r"^(pub|sub:(patient|practitioner|guest-[0-9a-f]{32}))$")
MAX_TRACKS = 64
MAX_COUNTER = 2**53 - 1


def _counter(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNTER


def _codec(value: Any) -> bool:
    return value is None or (isinstance(value, str) and CODEC.match(value) is not None)


def _track(track: Any) -> dict[str, Any] | None:
    """A forwarded track's counters as the relay reports them, or None when it breaks the schema."""
    if not isinstance(track, dict) or not TRACK_KEYS <= set(track) <= TRACK_KEYS | TRACK_OPTIONAL_COUNTERS | {
        "source_codec"
    }:
        return None
    ok = (
        track["kind"] in ("audio", "video")
        and isinstance(track["source"], str)
        and PARTICIPANT.match(track["source"]) is not None
        and track["mode"] in ("forward", "transcode")
        and _codec(track["codec"])
        and _codec(track.get("source_codec"))
        and all(_counter(track[k]) for k in ("packets", "bytes", "keyframe_requests"))
        and all(_counter(track[k]) for k in TRACK_OPTIONAL_COUNTERS if k in track)
    )
    return {k: track[k] for k in sorted(track)} if ok else None


def _published(item: Any) -> dict[str, Any] | None:
    if not isinstance(item, dict) or set(item) != PUBLISHED_KEYS:
        return None
    ok = (
        item["kind"] in ("audio", "video")
        and _codec(item["codec"])
        and all(_counter(item[k]) for k in ("frames", "bytes", "keyframes", "keyframe_requests"))
    )
    return {k: item[k] for k in sorted(item)} if ok else None


def relay_report_validate(report: Any) -> dict[str, Any]:
    """The stored report (ids, states, codec names and counters only; never SDP or addresses):
    ``tracks``: what the participant receives, ≤ 64 of ``{kind audio|video, source (a participant id), mode
    forward|transcode, codec, packets, bytes, keyframe_requests}`` plus optional ``source_codec``, ``dropped`` and
    ``encoded_frames``; ``pcs``?: ``{pc id: connection state}``; ``published``?: what the participant sends, ≤ 2
    of ``{kind, codec, frames, bytes, keyframes, keyframe_requests}``; ``connection``?: a connection state.
    Counters are non-negative integers, codecs names like ``VP8`` (or null). Anything else is refused
    (``InvalidInput``)."""
    if not isinstance(report, dict):
        raise InvalidInput({"report": ["Send the report as an object."]})
    errors: dict[str, list[str]] = {f"report.{k}": ["Unknown field."] for k in report if k not in REPORT_KEYS}
    clean: dict[str, Any] = {}
    tracks = report.get("tracks")
    if not isinstance(tracks, list) or len(tracks) > MAX_TRACKS:
        errors["report.tracks"] = [f"A list of at most {MAX_TRACKS} tracks."]
    else:
        clean["tracks"] = []
        for n, track in enumerate(tracks):
            good = _track(track)
            if good is None:
                errors[f"report.tracks[{n}]"] = [
                    "kind audio|video, source a participant id, mode forward|transcode, codec, counters."
                ]
            else:
                clean["tracks"].append(good)
    if "pcs" in report:
        pcs = report["pcs"]
        if (
            not isinstance(pcs, dict)
            or len(pcs) > MAX_TRACKS
            or not all(isinstance(k, str) and PC_ID.match(k) for k in pcs)
            or not all(v in CONNECTION_STATES for v in pcs.values())
        ):
            errors["report.pcs"] = ["An object of pc id -> connection state."]
        else:
            clean["pcs"] = {k: pcs[k] for k in sorted(pcs)}
    if "published" in report:
        published = report["published"]
        items = [_published(i) for i in published] if isinstance(published, list) and len(published) <= 2 else [None]
        if any(i is None for i in items):
            errors["report.published"] = ["At most 2 of {kind, codec, frames, bytes, keyframes, keyframe_requests}."]
        else:
            clean["published"] = items
    if "connection" in report:
        if report["connection"] not in CONNECTION_STATES:
            errors["report.connection"] = [f"One of: {', '.join(sorted(CONNECTION_STATES))}."]
        else:
            clean["connection"] = report["connection"]
    if errors:
        raise InvalidInput(errors)
    return clean


def visit_relay_report(*, visit_id: str, participant_id: Any, report: Any) -> RelayReportRef:
    """The media relay's telemetry of one participant (called by the relay process when a peer connection
    connects or closes and every 10 s): replaces that participant's previous report (one row each, UPSERT).
    Validated by ``relay_report_validate``; an unknown visit is ``VisitNotFound``, an unknown participant
    ``GuestNotFound``. Callers: the relay process (trusted, no actor)."""
    clean = relay_report_validate(report)
    if not isinstance(participant_id, str) or PARTICIPANT.match(participant_id) is None:
        raise InvalidInput({"participant_id": ["patient, practitioner or guest-<32 hex>."]})
    parsed = parse_uuid(visit_id)
    if parsed is None or not Visit.objects.filter(pk=parsed).exists():
        raise VisitNotFound()
    if (
        participant_id.startswith("guest-")
        and not VisitInvitation.objects.filter(pk=participant_id.removeprefix("guest-"), visit_id=parsed).exists()
    ):
        raise GuestNotFound()
    now = timezone.now()
    with transaction.atomic():
        VisitRelayReport.objects.bulk_create(
            [
                VisitRelayReport(
                    visit_id=parsed, participant_id=participant_id, report=clean, created_at=now, updated_at=now
                )
            ],
            update_conflicts=True,
            unique_fields=["visit", "participant_id"],
            update_fields=["report", "updated_at"],
        )
        row = VisitRelayReport.objects.get(visit_id=parsed, participant_id=participant_id)
    return relay_report_ref(row)


# --- the visit's end --------------------------------------------------------------------------------------------------


def guests_end_with_visit(visit: Visit) -> None:
    """Inside ``visit_end``'s transaction: every guest link of the visit stops working (expires now) and nobody is
    shown connected. The relay hears ``relay.visit_end`` from ``visit_end``."""
    now = timezone.now()
    VisitInvitation.objects.filter(visit=visit, expires_at__gt=now, created_at__lt=now).update(expires_at=now)
    VisitInvitation.objects.filter(visit=visit, connected=True).update(connected=False)


def roster_push_if_multiparty(visit: Visit) -> None:
    """Inside a visit service's transaction (admit): push the roster after commit when the visit has guests or is
    in relay mode (a 1:1 direct visit's sockets show no roster, so it costs one EXISTS query there)."""
    if visit.media_mode == MediaMode.RELAY or VisitInvitation.objects.filter(visit=visit).exists():
        _push_roster(visit.pk)


def invitations_bind_visit(*, appointment_id: int, visit: Visit) -> None:
    """Inside ``visit_check_in``'s transaction: invitations made ahead for the appointment join its visit."""
    VisitInvitation.objects.filter(appointment_id=appointment_id, visit__isnull=True).update(visit=visit)
