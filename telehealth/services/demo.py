"""Demo telehealth data for `make run` and browser tests: the demo ``patient`` and ``patient2`` each have a video
appointment with the demo ``doctor`` whose check-in window is open when the demo starts (the first 15 to 30
minutes ahead, the second 30 minutes after it), so both can check in and the doctor's queue shows two.
Idempotent: an appointment whose window is still open is kept; otherwise a new one is booked through the real
booking service as the demo scheduler. The demo doctor also invites a "Demo Interpreter" to ``patient``'s visit
(issue 7); its join link is printed in the `make run` banner. Synthetic data; refused in production."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from ehr.models import Patient, User
from scheduling import selectors as scheduling_selectors
from scheduling.errors import SchedulingError
from scheduling.services.booking import appointment_book
from telehealth.errors import TelehealthError
from telehealth.models import VisitInvitation
from telehealth.selectors import CHECK_IN_APPOINTMENT_STATUSES, check_in_window, visit_id_for_appointment
from telehealth.services.guests import JOIN_PATH, invitation_create, invitation_token

DEMO_PATIENTS = ("patient", "patient2")
DEMO_DOCTOR = "doctor"
VIDEO_TYPE = "video-consult"
OVERRIDE_REASON = "Demo: telehealth waiting room (booked whenever the demo starts)"


@dataclass(frozen=True)
class TelehealthDemoSummary:
    kept: int
    booked: int
    guest_url: str | None = None  # the demo interpreter's join link (a path), for the `make run` banner


def _first_start(now: dt.datetime) -> dt.datetime:
    """The first quarter hour at least 15 minutes from now (so 15 to 30 minutes ahead)."""
    base = now + dt.timedelta(minutes=15)
    rounded = base.replace(second=0, microsecond=0)
    if rounded.minute % 15 or base != rounded:
        rounded += dt.timedelta(minutes=15 - rounded.minute % 15)
    return rounded


def demo_seed_telehealth() -> TelehealthDemoSummary:
    """Make sure each demo patient has a video appointment with the demo doctor that they can check in to now.
    Runs after the ehr and scheduling demos."""
    if getattr(settings, "ENVIRONMENT", "") == "production":
        raise TelehealthError("the telehealth demo refuses to run with production settings")
    scheduler = User.objects.get(username="scheduler")
    doctor = User.objects.get(username=DEMO_DOCTOR)
    video = next(t for t in scheduling_selectors.appointment_type_list(actor=scheduler) if t.code == VIDEO_TYPE)
    now = timezone.now()
    start = _first_start(now)
    kept = booked = 0
    for index, username in enumerate(DEMO_PATIENTS):
        patient = Patient.objects.filter(user__username=username).first()
        if patient is None:
            continue
        if _has_open_video_visit(patient.pk, doctor.pk, now):
            kept += 1
            continue
        try:
            appointment_book(
                actor=scheduler,
                appointment_type_id=video.pk,
                patient_id=patient.pk,
                start=start + dt.timedelta(minutes=30 * index),
                practitioner_id=doctor.pk,
                override_reason=OVERRIDE_REASON,
            )
            booked += 1
        except SchedulingError:
            continue  # the demo simply has one fewer
    return TelehealthDemoSummary(kept=kept, booked=booked, guest_url=_demo_guest_link(doctor, now))


DEMO_GUEST_NAME = "Demo Interpreter"
DEMO_GUEST_MINUTES = 720


def _demo_guest_link(doctor: User, now: dt.datetime) -> str | None:
    """An interpreter invited by the demo doctor to the demo ``patient``'s open video appointment (issue 7), so a
    third browser can join the visit from the banner's link. Idempotent: an unused, unexpired demo invitation of
    that appointment is kept and its link printed again (a fresh signature of the same single-use invitation)."""
    patient = Patient.objects.filter(user__username=DEMO_PATIENTS[0]).first()
    if patient is None:
        return None
    appointment_id = _open_video_appointment(patient.pk, doctor.pk, now)
    if appointment_id is None:
        return None
    existing = (
        VisitInvitation.objects.filter(
            appointment_id=appointment_id,
            name=DEMO_GUEST_NAME,
            used_at__isnull=True,
            removed_at__isnull=True,
            expires_at__gt=now + dt.timedelta(minutes=60),
        )
        .values_list("id", flat=True)
        .first()
    )
    if existing is not None:
        return JOIN_PATH + invitation_token(invitation_id=str(existing))
    try:
        ref = invitation_create(
            actor=doctor,
            appointment_id=appointment_id,
            role="interpreter",
            name=DEMO_GUEST_NAME,
            expires_in_minutes=DEMO_GUEST_MINUTES,
        )
    except TelehealthError:
        return None
    return ref.url


def _has_open_video_visit(patient_id: int, doctor_id: int, now: dt.datetime) -> bool:
    """A video appointment with the doctor that can still be checked in to (window open, not started)."""
    return _open_video_appointment(patient_id, doctor_id, now) is not None


def _open_video_appointment(patient_id: int, doctor_id: int, now: dt.datetime) -> int | None:
    """The id of a video appointment with the doctor that can still be checked in to (window open, not started)."""
    for ref in scheduling_selectors.appointment_list_for_patient(patient_id=patient_id):
        if ref.practitioner_id != doctor_id or ref.modality != "video":
            continue
        if ref.status not in CHECK_IN_APPOINTMENT_STATUSES or ref.visit_started_at is not None:
            continue
        opens, closes = check_in_window(ref)
        if (
            opens <= now
            and now + dt.timedelta(minutes=10) < closes
            and visit_id_for_appointment(appointment_id=ref.id) is None
        ):
            return ref.id
    return None
