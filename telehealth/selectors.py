"""Reads of telehealth: the signaling grant, visit details, the queue and the waiting room's estimate, realtime
audiences. Names of patients come from ``ehr`` (``patient_refs_get``, audited) for staff, and are the patient's
own for the patient."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Avg, F, Q, Window
from django.db.models.functions import RowNumber
from django.http import HttpRequest
from django.utils import timezone

from core.realtime.streams import StreamUser
from ehr import selectors as ehr_selectors
from ehr.errors import EhrError
from ehr.models import Location, Role, User
from scheduling import selectors as scheduling_selectors
from scheduling.dto import AppointmentRef
from telehealth.dto import (
    CheckInInfo,
    ClinicQueue,
    CurrentVisitRef,
    GuestInfo,
    IntakeAnswer,
    InvitationSummary,
    MessageRef,
    NoticeRef,
    PersonRef,
    PresenceRef,
    QualityReportRef,
    QueueEntry,
    RelayReportRef,
    RosterEntry,
    SignalingGrant,
    ViewerRole,
    VisitDetail,
    VisitQualitySummary,
    WaitingInfo,
)
from telehealth.errors import AppointmentNotFound, Forbidden, NoGuestSession, VisitNotFound
from telehealth.intake import intake_questions_for
from telehealth.models import (
    CallQualityReport,
    ClinicianNotice,
    ClinicianPresence,
    MediaMode,
    Visit,
    VisitInvitation,
    VisitMessage,
    VisitRelayReport,
    VisitStatus,
)

LOCATION_STAFF = (Role.PRACTITIONER, Role.NURSE, Role.SCHEDULER, Role.ADMIN)


def parse_uuid(value: object) -> uuid.UUID | None:
    """A visit id from the outside world (URL, socket path): a UUID, or None."""
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def visit_signaling_grant(
    *, user: StreamUser | User | None, visit_id: str, guest_invitation_ids: Sequence[object] = ()
) -> SignalingGrant | None:
    """Who is connecting to the visit's signaling channel: its practitioner or its patient (``user``), else a guest
    whose browser session consumed an invitation to this visit (``guest_invitation_ids``, from the session's
    ``telehealth_guests``; the user may then be anonymous). None for anyone else, an unknown or malformed id, or
    nobody. A removed guest gets a grant with ``removed`` set (its socket is closed with 4411). Called by the
    signaling consumer on connect; two indexed queries (the visit with its two users, and its invitations)."""
    parsed = parse_uuid(visit_id)
    if parsed is None:
        return None
    visit = Visit.objects.select_related("practitioner", "patient_user").filter(pk=parsed).first()
    if visit is None:
        return None
    invitations = _visit_invitations(visit)
    roster = _roster(visit, invitations)
    multiparty = visit.media_mode == MediaMode.RELAY or any(e.participant_id.startswith("guest-") for e in roster)
    common = {"visit_id": str(parsed), "status": visit.status, "mode": visit.media_mode, "roster": tuple(roster)}
    authenticated = isinstance(user, User) and user.is_authenticated
    if authenticated and user.pk == visit.practitioner_id:  # type: ignore[union-attr]
        return SignalingGrant(
            role="practitioner",
            participant_id="practitioner",
            display_name=visit.practitioner.display_name,
            multiparty=multiparty,
            **common,  # type: ignore[arg-type]
        )
    if authenticated and user.pk == visit.patient_user_id:  # type: ignore[union-attr]
        return SignalingGrant(
            role="patient",
            participant_id="patient",
            display_name=visit.patient_user.display_name,
            multiparty=multiparty,
            **common,  # type: ignore[arg-type]
        )
    wanted = {parsed_id for parsed_id in (parse_uuid(i) for i in guest_invitation_ids) if parsed_id is not None}
    mine = [i for i in invitations if i.pk in wanted and i.used_at is not None]
    if not mine:
        return None
    # A session holding several invitations to one visit (rare: invited twice) is the latest one still present.
    mine.sort(key=lambda i: (i.removed_at is None, i.created_at))
    invitation = mine[-1]
    return SignalingGrant(
        role=invitation.role,  # type: ignore[arg-type]  # CHECK: a known guest role
        participant_id=invitation.participant_id,
        display_name=invitation.name,
        admitted=invitation.admitted_at is not None and invitation.removed_at is None,
        removed=invitation.removed_at is not None,
        invitation_id=str(invitation.pk),
        multiparty=True,
        **common,  # type: ignore[arg-type]
    )


def _visit_invitations(visit: Visit) -> list[VisitInvitation]:
    return list(VisitInvitation.objects.filter(visit=visit).order_by("created_at", "id"))


def _guest_status(invitation: VisitInvitation, now: dt.datetime) -> str:
    if invitation.removed_at is not None:
        return "removed"
    if invitation.admitted_at is not None:
        return "admitted"
    if invitation.used_at is not None:
        return "used"
    if invitation.expires_at <= now:
        return "expired"
    return "invited"


def _roster(visit: Visit, invitations: list[VisitInvitation]) -> list[RosterEntry]:
    """The practitioner, the patient and every guest still in the visit (invited and unexpired, in the lobby or
    admitted; removed and expired invitations are left out)."""
    now = timezone.now()
    patient_admitted = visit.status in (VisitStatus.IN_PROGRESS, VisitStatus.FINISHED)
    entries = [
        RosterEntry(
            participant_id="practitioner",
            role="practitioner",
            name=visit.practitioner.display_name,
            admitted=True,
            muted=False,
            connected=False,
            status="admitted",
            ready=True,
        ),
        RosterEntry(
            participant_id="patient",
            role="patient",
            name=visit.patient_user.display_name,
            admitted=patient_admitted,
            muted=visit.patient_muted,
            connected=visit.patient_connected,
            status="admitted" if patient_admitted else "waiting",
            ready=visit.ready,
        ),
    ]
    for invitation in invitations:
        state = _guest_status(invitation, now)
        if state in ("removed", "expired"):
            continue
        entries.append(
            RosterEntry(
                participant_id=invitation.participant_id,
                role=invitation.role,
                name=invitation.name,
                admitted=state == "admitted",
                muted=invitation.muted,
                connected=invitation.connected,
                status={"used": "waiting"}.get(state, state),
                ready=_device_ready(invitation.device_check),
            )
        )
    return entries


def _device_ready(check: object) -> bool:
    return isinstance(check, dict) and check.get("camera") == "pass" and check.get("microphone") == "pass"


def visit_roster(*, visit_id: object) -> list[dict[str, object]]:
    """The visit's roster as wire dicts (services push it to the sockets after each change). Three queries."""
    parsed = parse_uuid(visit_id)
    visit = Visit.objects.select_related("practitioner", "patient_user").filter(pk=parsed).first() if parsed else None
    if visit is None:
        return []
    return [entry.wire() for entry in _roster(visit, _visit_invitations(visit))]


def _works_at(user: User, location_id: int | None) -> bool:
    return location_id is not None and user.locations.filter(pk=location_id).exists()


def is_location_staff(user: User, location_id: int | None) -> bool:
    """Clinical or front-desk staff (practitioner, nurse, scheduler, admin) who work at the location."""
    return user.has_role(*LOCATION_STAFF) and _works_at(user, location_id)


def visit_group_may_receive(user: StreamUser, name: str) -> bool:
    """Realtime authoriser for ``group:visit.<uuid>``: the visit's patient, its practitioner, and staff of its
    location."""
    _, _, raw = name.partition(".")
    parsed = parse_uuid(raw)
    if parsed is None or not isinstance(user, User):
        return False
    row = Visit.objects.filter(pk=parsed).values_list("patient_user_id", "practitioner_id", "location_id").first()
    if row is None:
        return False
    patient_user_id, practitioner_id, location_id = row
    return user.pk in (patient_user_id, practitioner_id) or is_location_staff(user, location_id)


def queue_group_may_receive(user: StreamUser, name: str) -> bool:
    """Realtime authoriser for ``group:telehealth.queue.<practitioner id>``: that practitioner and staff who work
    at one of their locations."""
    prefix = "telehealth.queue."
    if not name.startswith(prefix) or not isinstance(user, User):
        return False
    raw = name.removeprefix(prefix)
    if not raw.isdigit():
        return False
    practitioner_id = int(raw)
    if user.pk == practitioner_id:
        return user.has_role(Role.PRACTITIONER)
    if not user.has_role(*LOCATION_STAFF):
        return False
    return User.objects.filter(pk=practitioner_id, locations__staff=user).exists()


# --- names ------------------------------------------------------------------------------------------------------------


def patient_names(
    *, actor: User, patient_ids: list[int], purpose: str, request: HttpRequest | None = None
) -> dict[int, str]:
    """Display names of patients as ``actor`` may read them, through ``ehr.patient_refs_get`` (access-checked,
    one audit row). A patient reading their own visit gets their own name without an audit row. Names the actor
    may not read come back empty rather than failing the whole list."""
    wanted = sorted(set(patient_ids))
    if not wanted:
        return {}
    own = ehr_selectors.patient_ref_for_user(user_id=actor.pk) if actor.has_role(Role.PATIENT) else None
    if own is not None and wanted == [own.id]:
        return {own.id: own.display_name}
    try:
        refs = ehr_selectors.patient_refs_get(actor=actor, patient_ids=wanted, purpose=purpose, request=request)
        return {pk: ref.display_name for pk, ref in refs.items()}
    except EhrError:
        names: dict[int, str] = {}
        for pk in wanted:
            try:
                one = ehr_selectors.patient_refs_get(actor=actor, patient_ids=[pk], purpose=purpose, request=request)
                names[pk] = one[pk].display_name
            except EhrError:
                names[pk] = ""
        return names


# --- one visit --------------------------------------------------------------------------------------------------------


def viewer_role(user: User, visit: Visit) -> ViewerRole | None:
    """How ``user`` sees the visit: its patient, its practitioner, staff of its location, or not at all."""
    if user.pk == visit.patient_user_id:
        return "patient"
    if user.pk == visit.practitioner_id:
        return "practitioner"
    if is_location_staff(user, visit.location_id):
        return "staff"
    return None


def _intake_list(visit: Visit) -> list[IntakeAnswer]:
    answers = visit.intake.get("answers", []) if isinstance(visit.intake, dict) else []
    return [IntakeAnswer(question=str(a.get("question", "")), answer=a.get("answer")) for a in answers]


def visit_get_for(*, user: User, visit_id: object) -> tuple[Visit, ViewerRole]:
    """The visit and the viewer's role, or ``VisitNotFound`` (unknown id, or a visit the user may not see)."""
    parsed = parse_uuid(visit_id)
    visit = Visit.objects.select_related("practitioner").filter(pk=parsed).first() if parsed else None
    role = viewer_role(user, visit) if visit is not None else None
    if visit is None or role is None:
        raise VisitNotFound()
    return visit, role


def visit_detail_for(*, user: User, visit_id: object, request: HttpRequest | None = None) -> VisitDetail:
    """The visit as ``user`` may see it: the patient their own; the practitioner and staff of the location also
    ``patient_id``, ``encounter_id`` and the intake answers. Raises ``VisitNotFound`` for anyone else."""
    visit, role = visit_get_for(user=user, visit_id=visit_id)
    name = patient_names(actor=user, patient_ids=[visit.patient_id], purpose="telehealth_visit", request=request)
    staff = role != "patient"
    return VisitDetail(
        id=str(visit.pk),
        appointment_id=visit.appointment_id,
        status=visit.status,
        practitioner=PersonRef(id=visit.practitioner_id, name=visit.practitioner.display_name),
        patient_name=name.get(visit.patient_id, ""),
        checked_in_at=visit.checked_in_at,
        admitted_at=visit.admitted_at,
        ended_at=visit.ended_at,
        duration_seconds=visit.duration_seconds,
        ready=visit.ready,
        device_check=dict(visit.device_check),
        summary=visit.summary,
        audio_only=visit.audio_only,
        version=visit.version,
        role=role,
        media_mode=visit.media_mode,
        patient_id=visit.patient_id if staff else None,
        encounter_id=visit.encounter_id if staff else None,
        intake=_intake_list(visit) if staff else None,
    )


def visit_id_for_appointment(*, appointment_id: int) -> str | None:
    row = Visit.objects.filter(appointment_id=appointment_id).values_list("id", flat=True).first()
    return str(row) if row is not None else None


# --- the queue and the waiting room -----------------------------------------------------------------------------------


def _local_day_start(location_id: int | None, now: dt.datetime) -> dt.datetime:
    name = Location.objects.filter(pk=location_id).values_list("timezone", flat=True).first() if location_id else None
    try:
        zone = ZoneInfo(name or "UTC")
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    local = now.astimezone(zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def practitioner_pace_minutes(
    *, practitioner_id: int, location_id: int | None, fallback_minutes: float, now: dt.datetime
) -> float:
    """The practitioner's pace today: the mean duration (minutes) of the visits they finished since local midnight
    at the location; ``fallback_minutes`` (the appointment type's duration) when they finished none yet."""
    mean = Visit.objects.filter(
        practitioner_id=practitioner_id,
        status=VisitStatus.FINISHED,
        ended_at__gte=_local_day_start(location_id, now),
        ended_at__lte=now,
    ).aggregate(mean=Avg("duration_seconds"))["mean"]
    return float(mean) / 60.0 if mean else float(fallback_minutes)


def estimate_wait_minutes(*, position: int, pace: float, elapsed_current: float | None) -> int:
    """The queue maths (docs/telehealth.md): what remains of the visit in progress (none when the doctor is free,
    never negative) plus one pace per patient ahead; whole minutes, rounded up."""
    current = max(0.0, pace - elapsed_current) if elapsed_current is not None else 0.0
    return math.ceil(current + (position - 1) * pace - 1e-9)


def waiting_queue(practitioner_id: int) -> list[Visit]:
    """Waiting visits of a practitioner in queue order: (appointment start, check-in time)."""
    return list(
        Visit.objects.filter(practitioner_id=practitioner_id, status=VisitStatus.WAITING).order_by(
            "queue_key", "checked_in_at", "id"
        )
    )


def doctor_status(*, practitioner_id: int, now: dt.datetime, in_visit: bool) -> str:
    """``in-visit`` | ``available`` | ``away`` (console seen within ``TELEHEALTH_PRESENCE_SECONDS``) | ``offline``."""
    if in_visit:
        return "in-visit"
    presence = ClinicianPresence.objects.filter(pk=practitioner_id).first()
    online_since = now - dt.timedelta(seconds=settings.TELEHEALTH_PRESENCE_SECONDS)
    if presence is None or presence.last_seen_at < online_since:
        return "offline"
    return presence.status


def active_notice(practitioner_id: int) -> NoticeRef | None:
    notice = ClinicianNotice.objects.filter(practitioner_id=practitioner_id, cleared_at__isnull=True).first()
    return NoticeRef(body=notice.body, created_at=notice.created_at) if notice is not None else None


def visit_waiting_info(*, user: User, visit_id: object) -> WaitingInfo:
    """The waiting room of the visit's patient (or its practitioner/staff): place, patients ahead, estimated
    wait, the doctor's status and notice. Place and estimate are None once the patient is no longer waiting."""
    visit, _ = visit_get_for(user=user, visit_id=visit_id)
    now = timezone.now()
    current = (
        Visit.objects.filter(practitioner_id=visit.practitioner_id, status=VisitStatus.IN_PROGRESS)
        .values_list("admitted_at", flat=True)
        .first()
    )
    position: int | None = None
    estimate: int | None = None
    if visit.status == VisitStatus.WAITING:
        queue = [v.pk for v in waiting_queue(visit.practitioner_id)]
        position = queue.index(visit.pk) + 1
        pace = practitioner_pace_minutes(
            practitioner_id=visit.practitioner_id,
            location_id=visit.location_id,
            fallback_minutes=visit.planned_minutes,
            now=now,
        )
        elapsed = (now - current).total_seconds() / 60.0 if current is not None else None
        estimate = estimate_wait_minutes(position=position, pace=pace, elapsed_current=elapsed)
    return WaitingInfo(
        visit_id=str(visit.pk),
        status=visit.status,
        position=position,
        ahead=position - 1 if position is not None else None,
        estimated_wait_minutes=estimate,
        doctor_name=visit.practitioner.display_name,
        doctor_status=doctor_status(practitioner_id=visit.practitioner_id, now=now, in_visit=current is not None),
        notice=active_notice(visit.practitioner_id),
        ready=visit.ready,
    )


def clinic_queue_for(*, user: User, request: HttpRequest | None = None) -> ClinicQueue:
    """The virtual clinic console of a practitioner or nurse: ``mine`` (patients waiting for them) and ``pool``
    (patients waiting for colleagues at their locations), each in queue order with their place in their own
    practitioner's queue; their notice, presence and current visit. A fixed number of queries plus the EHR's
    access checks of the names (one audit row)."""
    if not user.has_role(Role.PRACTITIONER, Role.NURSE):
        raise Forbidden("The virtual clinic is for practitioners and nurses.")
    now = timezone.now()
    location_ids = list(user.locations.values_list("pk", flat=True))
    rows = list(
        Visit.objects.filter(status=VisitStatus.WAITING)
        .annotate(
            position=Window(
                RowNumber(),
                partition_by=[F("practitioner_id")],
                order_by=[F("queue_key").asc(), F("checked_in_at").asc(), F("id").asc()],
            )
        )
        .filter(Q(practitioner_id=user.pk) | Q(location_id__in=location_ids))
        .select_related("practitioner")
        .order_by("queue_key", "checked_in_at", "id")
    )
    current = (
        Visit.objects.filter(practitioner_id=user.pk, status=VisitStatus.IN_PROGRESS).order_by("admitted_at").first()
    )
    ids = [v.patient_id for v in rows] + ([current.patient_id] if current is not None else [])
    names = patient_names(actor=user, patient_ids=ids, purpose="telehealth_queue", request=request)

    def entry(v: Visit) -> QueueEntry:
        return QueueEntry(
            visit_id=str(v.pk),
            appointment_id=v.appointment_id,
            patient_name=names.get(v.patient_id, ""),
            appointment_start=v.queue_key,
            checked_in_at=v.checked_in_at,
            waiting_seconds=max(0, int((now - v.checked_in_at).total_seconds())),
            ready=v.ready,
            device_check=dict(v.device_check),
            intake=_intake_list(v),
            connected=v.patient_connected,
            position=int(v.position),  # type: ignore[attr-defined]  # the window annotation
            practitioner_id=v.practitioner_id,
            practitioner_name=v.practitioner.display_name,
        )

    presence = ClinicianPresence.objects.filter(pk=user.pk).first()
    online_since = now - dt.timedelta(seconds=settings.TELEHEALTH_PRESENCE_SECONDS)
    return ClinicQueue(
        mine=[entry(v) for v in rows if v.practitioner_id == user.pk],
        pool=[entry(v) for v in rows if v.practitioner_id != user.pk],
        notice=active_notice(user.pk),
        presence=PresenceRef(
            status=presence.status if presence is not None and presence.last_seen_at >= online_since else "offline",
            last_seen_at=presence.last_seen_at if presence is not None else None,
        ),
        current_visit=CurrentVisitRef(
            visit_id=str(current.pk),
            appointment_id=current.appointment_id,
            patient_name=names.get(current.patient_id, ""),
            admitted_at=current.admitted_at,
        )
        if current is not None and current.admitted_at is not None
        else None,
    )


def colleague_list(*, user: User) -> list[PersonRef]:
    """Active practitioners working at any of the user's locations (transfer targets), by name; not the user."""
    if not user.has_role(*LOCATION_STAFF):
        raise Forbidden("Staff only.")
    rows = (
        User.objects.filter(
            is_active=True, roles__contains=[Role.PRACTITIONER], locations__in=user.locations.values("pk")
        )
        .exclude(pk=user.pk)
        .distinct()
        .order_by("last_name", "first_name", "id")
    )
    return [PersonRef(id=u.pk, name=u.display_name) for u in rows]


# --- messages ---------------------------------------------------------------------------------------------------------


def sender_role(visit: Visit, sender_id: int | None) -> str:
    if sender_id is None:
        return "system"
    if sender_id == visit.patient_user_id:
        return "patient"
    if sender_id == visit.practitioner_id:
        return "practitioner"
    return "staff"


def message_ref(visit: Visit, message: VisitMessage) -> MessageRef:
    return MessageRef(
        id=message.pk,
        visit_id=str(visit.pk),
        kind=message.kind,
        body=message.body,
        sender_id=message.sender_id,
        sender_name=message.sender.display_name if message.sender is not None else "Clinic",
        sender_role=sender_role(visit, message.sender_id),
        created_at=message.created_at,
    )


def visit_message_list(*, user: User, visit_id: object) -> list[MessageRef]:
    """The visit's chat, oldest first (at most the last 200), for its patient, practitioner and location staff.
    Two queries."""
    visit, _ = visit_get_for(user=user, visit_id=visit_id)
    rows = list(VisitMessage.objects.filter(visit=visit).select_related("sender").order_by("-created_at", "-id")[:200])
    return [message_ref(visit, m) for m in reversed(rows)]


# --- call quality -----------------------------------------------------------------------------------------------------


def _report_ref(report: CallQualityReport) -> QualityReportRef:
    return QualityReportRef(
        id=report.pk,
        visit_id=str(report.visit_id),
        user_id=report.user_id,
        user_name=report.user.display_name,
        role=report.role,
        created_at=report.created_at,
        stats=dict(report.stats),
    )


def visit_quality_list(*, user: User, visit_id: object) -> list[QualityReportRef]:
    """Every quality report of a visit, oldest first: for admins and the visit's practitioner."""
    parsed = parse_uuid(visit_id)
    visit = Visit.objects.filter(pk=parsed).first() if parsed else None
    if visit is None:
        raise VisitNotFound()
    if not (user.has_role(Role.ADMIN) or user.pk == visit.practitioner_id):
        if viewer_role(user, visit) is None:
            raise VisitNotFound()
        raise Forbidden("Call quality is for administrators and the visit's practitioner.")
    rows = CallQualityReport.objects.filter(visit=visit).select_related("user").order_by("created_at", "id")[:500]
    return [_report_ref(r) for r in rows]


def quality_overview(*, user: User, limit: int = 50) -> list[VisitQualitySummary]:
    """Support's page (admins): the most recent admitted visits with the latest report of each participant and
    the media relay's latest telemetry of each (forwarded or transcoded). Four queries whatever the number of
    visits."""
    if not user.has_role(Role.ADMIN):
        raise Forbidden("Administrators only.")
    visits = list(
        Visit.objects.filter(admitted_at__isnull=False).select_related("practitioner").order_by("-admitted_at")[:limit]
    )
    latest = (
        CallQualityReport.objects.filter(visit_id__in=[v.pk for v in visits])
        .select_related("user")
        .order_by("visit_id", "user_id", "-created_at", "-id")
        .distinct("visit_id", "user_id")
    )
    by_visit: dict[object, list[QualityReportRef]] = {}
    for report in latest:
        by_visit.setdefault(report.visit_id, []).append(_report_ref(report))
    relay_by_visit: dict[object, list[RelayReportRef]] = {}
    for row in VisitRelayReport.objects.filter(visit_id__in=[v.pk for v in visits]).order_by("participant_id"):
        relay_by_visit.setdefault(row.visit_id, []).append(relay_report_ref(row))
    return [
        VisitQualitySummary(
            visit_id=str(v.pk),
            appointment_id=v.appointment_id,
            status=v.status,
            practitioner_name=v.practitioner.display_name,
            admitted_at=v.admitted_at,
            ended_at=v.ended_at,
            duration_seconds=v.duration_seconds,
            reports=sorted(by_visit.get(v.pk, []), key=lambda r: r.role),
            media_mode=v.media_mode,
            relay_reports=relay_by_visit.get(v.pk, []),
        )
        for v in visits
    ]


# --- check-in ---------------------------------------------------------------------------------------------------------

CONSENT_TEXT = (
    "I agree to a video visit. It is a real medical consultation held over a secure connection; nothing is recorded. "
    "If the connection fails, the clinic may continue by phone. In an emergency, call your local emergency number."
)
CHECK_IN_APPOINTMENT_STATUSES = frozenset({"booked", "arrived"})


def check_in_window(appointment: AppointmentRef) -> tuple[dt.datetime, dt.datetime]:
    """(opens, closes): from ``TELEHEALTH_CHECKIN_OPENS_MINUTES`` before the start until the type's no-show time."""
    opens = appointment.start - dt.timedelta(minutes=settings.TELEHEALTH_CHECKIN_OPENS_MINUTES)
    noshow = scheduling_selectors.appointment_noshow_after_minutes(appointment_type_id=appointment.appointment_type_id)
    closes = appointment.start + dt.timedelta(minutes=noshow if noshow is not None else 15)
    return opens, closes


def own_appointment(*, actor: User, appointment_id: int) -> AppointmentRef:
    """The actor's own appointment (they are the portal user of its patient), else ``AppointmentNotFound``."""
    if isinstance(appointment_id, bool) or not isinstance(appointment_id, int):
        raise AppointmentNotFound()
    appointment = scheduling_selectors.appointment_get(appointment_id=appointment_id)
    me = ehr_selectors.patient_ref_for_user(user_id=actor.pk)
    if appointment is None or me is None or appointment.patient_id != me.id:
        raise AppointmentNotFound()
    return appointment


def checkin_info_for(*, actor: User, appointment_id: int) -> CheckInInfo:
    """What the patient's check-in page shows for their own appointment: when, with whom, the consent text, the
    intake questions, the window and whether they can check in now. ``AppointmentNotFound`` for anyone else."""
    appointment = own_appointment(actor=actor, appointment_id=appointment_id)
    visit = Visit.objects.filter(appointment_id=appointment.id).values_list("id", "status").first()
    opens, closes = check_in_window(appointment)
    now = timezone.now()
    can = (
        appointment.modality == "video"
        and appointment.status in CHECK_IN_APPOINTMENT_STATUSES
        and opens <= now < closes
        and (visit is None or visit[1] in (VisitStatus.WAITING, VisitStatus.LEFT))
    )
    return CheckInInfo(
        appointment_id=appointment.id,
        start=appointment.start,
        end=appointment.end,
        practitioner_name=appointment.practitioner_display_name,
        type_name=appointment.appointment_type_name,
        consent_text=CONSENT_TEXT,
        questions=intake_questions_for(appointment_type_id=appointment.appointment_type_id),
        visit_id=str(visit[0]) if visit is not None else None,
        visit_status=visit[1] if visit is not None else None,
        opens_at=opens,
        closes_at=closes,
        can_check_in=can,
    )


# --- guests and the media relay ---------------------------------------------------------------------------------------


def relay_report_ref(row: VisitRelayReport) -> RelayReportRef:
    tracks = list(row.report.get("tracks", [])) if isinstance(row.report, dict) else []
    report = row.report if isinstance(row.report, dict) else {}
    connection = report.get("connection")
    pcs = report.get("pcs")
    if connection is None and isinstance(pcs, dict) and pcs:
        # The publish pc's state stands for the participant's connection to the relay.
        connection = pcs.get("pub") or next(iter(pcs.values()))
    return RelayReportRef(
        participant_id=row.participant_id,
        updated_at=row.updated_at,
        tracks=tracks,
        forwarded=sum(1 for t in tracks if t.get("mode") == "forward"),
        transcoded=sum(1 for t in tracks if t.get("mode") == "transcode"),
        connection=connection if isinstance(connection, str) else None,
    )


def visit_relay_list(*, user: User, visit_id: object) -> list[RelayReportRef]:
    """The relay's latest telemetry of each participant of a visit, for admins and the visit's practitioner (like
    the call-quality reports). Two queries."""
    parsed = parse_uuid(visit_id)
    visit = Visit.objects.filter(pk=parsed).first() if parsed else None
    if visit is None:
        raise VisitNotFound()
    if not (user.has_role(Role.ADMIN) or user.pk == visit.practitioner_id):
        if viewer_role(user, visit) is None:
            raise VisitNotFound()
        raise Forbidden("Relay telemetry is for administrators and the visit's practitioner.")
    return [relay_report_ref(r) for r in VisitRelayReport.objects.filter(visit=visit).order_by("participant_id")]


def may_manage_guests(user: User, *, practitioner_id: int, location_id: int | None) -> bool:
    """Who may invite guests and list them: the visit's (or appointment's) practitioner, or a scheduler or admin
    working at its location."""
    if user.pk == practitioner_id:
        return True
    return user.has_role(Role.SCHEDULER, Role.ADMIN) and _works_at(user, location_id)


def invitation_list_for(*, user: User, visit_id: object) -> list[InvitationSummary]:
    """The guests invited to a visit, oldest first, with their status (never their tokens): for its practitioner
    and schedulers/admins at its location (``VisitNotFound`` for anyone else). Two queries."""
    parsed = parse_uuid(visit_id)
    visit = Visit.objects.filter(pk=parsed).first() if parsed else None
    if visit is None or not may_manage_guests(
        user, practitioner_id=visit.practitioner_id, location_id=visit.location_id
    ):
        raise VisitNotFound()
    now = timezone.now()
    rows = VisitInvitation.objects.filter(visit=visit).select_related("created_by").order_by("created_at", "id")
    return [
        InvitationSummary(
            id=str(i.pk),
            participant_id=i.participant_id,
            role=i.role,
            name=i.name,
            status=_guest_status(i, now),
            expires_at=i.expires_at,
            used_at=i.used_at,
            admitted_at=i.admitted_at,
            removed_at=i.removed_at,
            muted=i.muted,
            connected=i.connected,
            ready=_device_ready(i.device_check),
            device_check=dict(i.device_check) if isinstance(i.device_check, dict) else {},
            created_at=i.created_at,
            created_by_name=i.created_by.display_name if i.created_by is not None else "",
        )
        for i in rows
    ]


def session_invitation(*, guest_invitation_ids: Sequence[object]) -> VisitInvitation | None:
    """The invitation a guest's browser session holds: the latest consumed one of ``guest_invitation_ids`` (the
    session's ``telehealth_guests``), or None."""
    wanted = [p for p in (parse_uuid(i) for i in guest_invitation_ids) if p is not None]
    if not wanted:
        return None
    return (
        VisitInvitation.objects.select_related("visit", "visit__practitioner")
        .filter(pk__in=wanted, used_at__isnull=False)
        .order_by("-used_at", "-id")
        .first()
    )


def guest_info_from(invitation: VisitInvitation) -> GuestInfo:
    """A guest's lobby view of their invitation (see ``GuestInfo``)."""
    visit = invitation.visit
    appointment = scheduling_selectors.appointment_get(appointment_id=invitation.appointment_id)
    if invitation.removed_at is not None:
        state = "removed"
    elif visit is None:
        state = "ended" if appointment is None or appointment.status not in _OPEN_APPOINTMENT else "not_started"
    elif visit.status == VisitStatus.FINISHED:
        state = "ended"
    elif invitation.admitted_at is not None:
        state = "admitted"
    else:
        state = "waiting"
    practitioner_name = (
        visit.practitioner.display_name
        if visit is not None
        else (appointment.practitioner_display_name if appointment is not None else "")
    )
    check = dict(invitation.device_check) if isinstance(invitation.device_check, dict) else {}
    return GuestInfo(
        invitation_id=str(invitation.pk),
        participant_id=invitation.participant_id,
        appointment_id=invitation.appointment_id,
        visit_id=str(visit.pk) if visit is not None else None,
        visit_status=visit.status if visit is not None else None,
        role=invitation.role,
        name=invitation.name,
        state=state,
        media_mode=visit.media_mode if visit is not None else MediaMode.DIRECT,
        practitioner_name=practitioner_name,
        appointment_start=appointment.start if appointment is not None else None,
        device_check=check,
        ready=_device_ready(check),
    )


_OPEN_APPOINTMENT = frozenset({"proposed", "pending", "booked", "arrived", "checked-in"})


def guest_info_for(*, guest_invitation_ids: Sequence[object]) -> GuestInfo:
    """The lobby of the guest whose browser session consumed an invitation (``NoGuestSession`` otherwise)."""
    invitation = session_invitation(guest_invitation_ids=guest_invitation_ids)
    if invitation is None:
        raise NoGuestSession()
    return guest_info_from(invitation)
