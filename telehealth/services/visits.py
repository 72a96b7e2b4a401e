"""The visit's life: check-in, device check, admit, transfer, end, leave, and the grace period of a disconnected
waiting patient. Each service owns one transaction, moves the status only through ``visit_transition``, calls
scheduling's services for the appointment (which in turn drive the EHR encounter), records realtime events in
the same transaction and tells the signaling sockets after commit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from ehr.errors import EhrError
from ehr.models import Role, User
from scheduling import selectors as scheduling_selectors
from scheduling.errors import SchedulingError
from scheduling.services.status import appointment_complete, appointment_patient_arrive, appointment_visit_start
from scheduling.services.transitions import RELEASING_STATUSES as RELEASING_APPOINTMENT_STATUSES
from telehealth import events
from telehealth.channels import relay_visit_end_send_on_commit, visit_state_send_on_commit
from telehealth.dto import VisitDetail
from telehealth.errors import (
    AppointmentUnavailable,
    CheckInClosed,
    ConsentRequired,
    Forbidden,
    InvalidInput,
    NotVideoAppointment,
    PractitionerBusy,
    VisitNotFound,
    VisitNotInProgress,
    VisitNotWaiting,
)
from telehealth.intake import intake_questions_for, intake_validate
from telehealth.models import Visit, VisitStatus
from telehealth.selectors import (
    CHECK_IN_APPOINTMENT_STATUSES,
    check_in_window,
    is_location_staff,
    own_appointment,
    parse_uuid,
    visit_detail_for,
)
from telehealth.services.guests import guests_end_with_visit, invitations_bind_visit, roster_push_if_multiparty
from telehealth.services.transitions import visit_transition

S = VisitStatus
DEVICE_CHECK_KEYS = ("camera", "microphone", "speaker", "turn")
DEVICE_CHECK_VALUES = frozenset({"pass", "fail", "skipped"})
SUMMARY_MAX_LENGTH = 4000
ONE_IN_PROGRESS = "visit_one_in_progress_per_practitioner"


# --- helpers ----------------------------------------------------------------------------------------------------------


def lock_visit(visit_id: object) -> Visit:
    parsed = parse_uuid(visit_id)
    visit = Visit.objects.select_for_update(of=("self",)).filter(pk=parsed).first() if parsed else None
    if visit is None:
        raise VisitNotFound()
    return visit


def waiting_patients(practitioner_ids: Iterable[int]) -> list[tuple[int, object]]:
    """(patient user id, visit id) of everyone waiting for these practitioners: their place may have moved."""
    return list(
        Visit.objects.filter(practitioner_id__in=list(practitioner_ids), status=S.WAITING).values_list(
            "patient_user_id", "id"
        )
    )


def publish_visit_change(visit: Visit, *, practitioner_ids: Iterable[int]) -> None:
    """The events of a change of ``visit`` that may move queues: the visit's own stream, the queues of the
    practitioners concerned, and every patient waiting for them (plus this visit's patient)."""
    ids = set(practitioner_ids) | {visit.practitioner_id}
    events.visit_changed(visit_id=visit.pk, status=visit.status, version=visit.version)
    events.queue_changed(practitioner_ids=ids)
    events.waiting_changed(patients=[*waiting_patients(ids), (visit.patient_user_id, visit.pk)])


def _appointment_errors(exc: Exception) -> Exception:
    if isinstance(exc, SchedulingError | EhrError):
        return AppointmentUnavailable(f"The appointment could not be updated ({getattr(exc, 'code', 'error')}).")
    return exc


# --- the patient ------------------------------------------------------------------------------------------------------


def visit_check_in(
    *, actor: User, appointment_id: int, consent: bool, answers: Any, request: HttpRequest | None = None
) -> VisitDetail:
    """The patient checks in to their video appointment: consent, intake answers; the visit is created
    ``waiting`` (or a visit they left goes back to ``waiting``; a waiting one just takes the new answers) and the
    appointment becomes ``arrived`` through ``scheduling.appointment_patient_arrive``. Returns the visit.

    Only the patient whose portal login is linked to the appointment's patient; only video appointments that are
    booked or arrived, inside the check-in window. Raises ``AppointmentNotFound`` (404, also for others'),
    ``NotVideoAppointment``, ``AppointmentUnavailable``, ``CheckInClosed`` (409), ``ConsentRequired``,
    ``InvalidInput`` (400), ``VisitNotWaiting`` (409, already admitted or finished)."""
    appointment = own_appointment(actor=actor, appointment_id=appointment_id)
    if appointment.modality != "video":
        raise NotVideoAppointment()
    existing = Visit.objects.filter(appointment_id=appointment.id).values_list("status", flat=True).first()
    if existing in (S.IN_PROGRESS, S.FINISHED):
        raise VisitNotWaiting("This visit has already started or finished.")
    if appointment.status not in CHECK_IN_APPOINTMENT_STATUSES:
        raise AppointmentUnavailable(f"The appointment is {appointment.status}.")
    now = timezone.now()
    opens, closes = check_in_window(appointment)
    if not opens <= now < closes:
        raise CheckInClosed(
            "Check-in opens "
            f"{settings.TELEHEALTH_CHECKIN_OPENS_MINUTES} minutes before the appointment and closes "
            "when it would be marked as missed."
        )
    if consent is not True:
        raise ConsentRequired()
    intake = intake_validate(
        questions=intake_questions_for(appointment_type_id=appointment.appointment_type_id), answers=answers
    )
    try:
        with transaction.atomic():
            # Locks the appointment row: concurrent check-ins of one appointment run one after the other.
            appointment_patient_arrive(actor=actor, appointment_id=appointment.id, request=request)
            visit = Visit.objects.select_for_update(of=("self",)).filter(appointment_id=appointment.id).first()
            if visit is None:
                visit = Visit(
                    appointment_id=appointment.id,
                    patient_id=appointment.patient_id,
                    patient_user_id=actor.pk,
                    practitioner_id=appointment.practitioner_id,
                    location_id=appointment.location_id,
                    encounter_id=appointment.encounter_id,
                    planned_minutes=max(1, int((appointment.end - appointment.start).total_seconds() // 60)),
                    consent_at=now,
                    intake=intake,
                    checked_in_at=now,
                    queue_key=appointment.start,
                )
                visit.save(force_insert=True)
                invitations_bind_visit(appointment_id=appointment.id, visit=visit)
            elif visit.status == S.WAITING:
                visit.intake = intake
                visit.consent_at = now
                visit.version += 1
                visit.updated_at = now
                visit.save()
            elif visit.status == S.LEFT:
                visit_transition(visit, S.WAITING)
                visit.intake = intake
                visit.consent_at = now
                visit.save()
            else:
                raise VisitNotWaiting("This visit has already started or finished.")
            publish_visit_change(visit, practitioner_ids=[visit.practitioner_id])
    except (SchedulingError, EhrError) as exc:
        raise _appointment_errors(exc) from None
    return visit_detail_for(user=actor, visit_id=str(visit.pk), request=request)


def visit_device_check_record(
    *, actor: User, visit_id: str, result: Any, request: HttpRequest | None = None
) -> VisitDetail:
    """The patient's device and network check: ``camera``, ``microphone``, ``speaker``, ``turn`` each ``pass``,
    ``fail`` or ``skipped``. The visit is ``ready`` when camera and microphone passed (a TURN failure is a warning
    the console shows). The visit's patient only, while waiting or in the visit."""
    if not isinstance(result, dict):
        raise InvalidInput({"non_field_errors": ["Send the check as an object."]})
    errors: dict[str, list[str]] = {k: ["Unknown field."] for k in result if k not in DEVICE_CHECK_KEYS}
    for key in DEVICE_CHECK_KEYS:
        if result.get(key) not in DEVICE_CHECK_VALUES:
            errors[key] = ["One of: pass, fail, skipped."]
    if errors:
        raise InvalidInput(errors)
    check = {key: result[key] for key in DEVICE_CHECK_KEYS}
    with transaction.atomic():
        visit = lock_visit(visit_id)
        if visit.patient_user_id != actor.pk:
            raise VisitNotFound()
        if visit.status not in (S.WAITING, S.IN_PROGRESS):
            raise VisitNotWaiting()
        now = timezone.now()
        visit.device_check = {**check, "checked_at": now.isoformat()}
        visit.ready = check["camera"] == "pass" and check["microphone"] == "pass"
        visit.version += 1
        visit.updated_at = now
        visit.save()
        events.visit_changed(visit_id=visit.pk, status=visit.status, version=visit.version)
        events.queue_changed(practitioner_ids=[visit.practitioner_id])
        events.waiting_changed(patients=[(visit.patient_user_id, visit.pk)])
    return visit_detail_for(user=actor, visit_id=str(visit.pk), request=request)


def visit_leave(*, actor: User, visit_id: str, request: HttpRequest | None = None) -> VisitDetail:
    """The patient leaves the waiting room (``waiting`` -> ``left``); checking in again puts them back in their
    place (the queue is ordered by appointment time). Leaving twice is a no-op. The visit's patient only."""
    with transaction.atomic():
        visit = lock_visit(visit_id)
        if visit.patient_user_id != actor.pk:
            raise VisitNotFound()
        if visit.status != S.LEFT:
            if visit.status != S.WAITING:
                raise VisitNotWaiting()
            visit_transition(visit, S.LEFT)
            visit.save()
            publish_visit_change(visit, practitioner_ids=[visit.practitioner_id])
            visit_state_send_on_commit(visit_id=visit.pk, status=visit.status)
    return visit_detail_for(user=actor, visit_id=str(visit.pk), request=request)


# --- the clinician ----------------------------------------------------------------------------------------------------


def _may_see(actor: User, visit: Visit) -> bool:
    return actor.pk in (visit.practitioner_id, visit.patient_user_id) or is_location_staff(actor, visit.location_id)


def visit_admit(*, actor: User, visit_id: str, request: HttpRequest | None = None) -> VisitDetail:
    """The practitioner admits a waiting patient: ``waiting`` -> ``in-progress``, and the appointment's visit
    starts (``scheduling.appointment_visit_start``: checked in, EHR encounter in progress), in one transaction.

    The visit's practitioner may admit; so may any practitioner working at the visit's location (taking the
    patient from the clinic pool), and the visit is then transferred to them. The visit row is locked first, so
    of two clinicians admitting at once exactly one wins and the other gets ``VisitNotWaiting``. A practitioner
    already in a visit gets ``PractitionerBusy`` (also enforced by a partial UNIQUE index)."""
    try:
        with transaction.atomic():
            visit = lock_visit(visit_id)
            if not _may_see(actor, visit):
                raise VisitNotFound()
            pool_take = actor.pk != visit.practitioner_id
            if not actor.has_role(Role.PRACTITIONER) or (pool_take and not is_location_staff(actor, visit.location_id)):
                raise Forbidden("Only the visit's practitioner or a practitioner of its clinic may admit.")
            if visit.status != S.WAITING:
                raise VisitNotWaiting()
            if Visit.objects.filter(practitioner_id=actor.pk, status=S.IN_PROGRESS).exists():
                raise PractitionerBusy()
            previous_practitioner = visit.practitioner_id
            appointment_visit_start(actor=actor, appointment_id=visit.appointment_id, request=request)
            visit.practitioner_id = actor.pk
            visit_transition(visit, S.IN_PROGRESS)
            visit.save()
            publish_visit_change(visit, practitioner_ids=[previous_practitioner, actor.pk])
            visit_state_send_on_commit(visit_id=visit.pk, status=visit.status)
            roster_push_if_multiparty(visit)  # guests see the patient admitted
    except IntegrityError as exc:
        if ONE_IN_PROGRESS in str(exc):
            raise PractitionerBusy() from None
        raise
    except (SchedulingError, EhrError) as exc:
        raise _appointment_errors(exc) from None
    return visit_detail_for(user=actor, visit_id=str(visit.pk), request=request)


def visit_transfer(
    *, actor: User, visit_id: str, practitioner_id: int, request: HttpRequest | None = None
) -> VisitDetail:
    """Hand a waiting patient to a colleague: ``practitioner_id`` must be an active practitioner working at the
    visit's location. The visit's practitioner or staff of its location may transfer; the patient keeps their
    appointment time as their place in the new queue. Both queues and every patient waiting in them are told."""
    if isinstance(practitioner_id, bool) or not isinstance(practitioner_id, int):
        raise InvalidInput({"practitioner_id": ["Give a practitioner's id."]})
    with transaction.atomic():
        visit = lock_visit(visit_id)
        if not _may_see(actor, visit) or actor.pk == visit.patient_user_id:
            raise VisitNotFound()
        if visit.status != S.WAITING:
            raise VisitNotWaiting("Only a waiting patient can be transferred.")
        target = User.objects.filter(pk=practitioner_id, is_active=True).first()
        if target is None or not target.has_role(Role.PRACTITIONER) or not is_location_staff(target, visit.location_id):
            raise InvalidInput({"practitioner_id": ["Choose a practitioner who works at this clinic."]})
        if target.pk == visit.practitioner_id:
            raise InvalidInput({"practitioner_id": ["The patient is already waiting for this practitioner."]})
        previous = visit.practitioner_id
        visit.practitioner_id = target.pk
        visit.version += 1
        visit.updated_at = timezone.now()
        visit.save()
        publish_visit_change(visit, practitioner_ids=[previous, target.pk])
        visit_state_send_on_commit(visit_id=visit.pk, status=visit.status)
    return visit_detail_for(user=actor, visit_id=str(visit.pk), request=request)


def visit_end(
    *,
    actor: User,
    visit_id: str,
    summary: str = "",
    audio_only: bool = False,
    request: HttpRequest | None = None,
) -> VisitDetail:
    """The practitioner ends the visit: ``in-progress`` -> ``finished`` with ``ended_at`` and ``duration_seconds``,
    the patient-facing ``summary`` (at most 4000 characters) and whether it fell back to audio only; the
    appointment is completed (``scheduling.appointment_complete``: fulfilled, EHR encounter closed with its
    duration) in the same transaction. The visit's practitioner only. The signaling sockets hear ``finished``
    and close."""
    if not isinstance(summary, str) or len(summary.strip()) > SUMMARY_MAX_LENGTH:
        raise InvalidInput({"summary": [f"Text of at most {SUMMARY_MAX_LENGTH} characters."]})
    if not isinstance(audio_only, bool):
        raise InvalidInput({"audio_only": ["true or false."]})
    try:
        with transaction.atomic():
            visit = lock_visit(visit_id)
            if not _may_see(actor, visit):
                raise VisitNotFound()
            if actor.pk != visit.practitioner_id:
                raise Forbidden("Only the visit's practitioner ends it.")
            if visit.status != S.IN_PROGRESS:
                raise VisitNotInProgress()
            appointment = scheduling_selectors.appointment_get(appointment_id=visit.appointment_id)
            if appointment is not None and appointment.status != "fulfilled":
                appointment_complete(actor=actor, appointment_id=visit.appointment_id, request=request)
            visit_transition(visit, S.FINISHED)
            visit.summary = summary.strip()
            visit.audio_only = audio_only
            visit.save()
            guests_end_with_visit(visit)
            publish_visit_change(visit, practitioner_ids=[visit.practitioner_id])
            visit_state_send_on_commit(visit_id=visit.pk, status=visit.status)
            relay_visit_end_send_on_commit(visit_id=visit.pk)
    except (SchedulingError, EhrError) as exc:
        raise _appointment_errors(exc) from None
    return visit_detail_for(user=actor, visit_id=str(visit.pk), request=request)


# --- the grace period -------------------------------------------------------------------------------------------------


def visits_expire_grace(*, limit: int = 500) -> int:
    """The grace job (one-minute beat task): a waiting patient whose socket has been disconnected for longer than
    ``TELEHEALTH_GRACE_SECONDS`` leaves the queue (``waiting`` -> ``left``). Rows are claimed with
    ``skip_locked``; a visit admitted or reconnected meanwhile no longer matches under the lock. Idempotent."""
    cutoff = timezone.now() - dt.timedelta(seconds=settings.TELEHEALTH_GRACE_SECONDS)
    with transaction.atomic():
        due = list(
            Visit.objects.select_for_update(skip_locked=True)
            .filter(status=S.WAITING, patient_connected=False, patient_left_at__lt=cutoff)
            .order_by("patient_left_at")[:limit]
        )
        for visit in due:
            visit_transition(visit, S.LEFT)
            visit.save()
            publish_visit_change(visit, practitioner_ids=[visit.practitioner_id])
            visit_state_send_on_commit(visit_id=visit.pk, status=visit.status)
    return len(due)


def visit_appointment_status_changed(appointment_id: int, previous: str, new: str) -> None:
    """Scheduling status listener (registered in ``TelehealthConfig.ready``): when a waiting patient's appointment
    is cancelled, marked no-show or entered in error, their visit leaves the queue (``waiting`` -> ``left``) in the
    same transaction, and the queue, the waiting room and the visit socket hear of it after commit. Visits in any
    other status are left alone (an in-progress visit ends only through ``visit_end``)."""
    if new not in RELEASING_APPOINTMENT_STATUSES:
        return
    visit = Visit.objects.select_for_update().filter(appointment_id=appointment_id, status=S.WAITING).first()
    if visit is None:
        return
    visit_transition(visit, S.LEFT)
    visit.save()
    publish_visit_change(visit, practitioner_ids=[visit.practitioner_id])
    visit_state_send_on_commit(visit_id=visit.pk, status=visit.status)
