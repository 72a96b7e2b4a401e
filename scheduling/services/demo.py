"""Demo scheduling data: schedules for the demo clinics' doctors, rooms, equipment and an interpreter, the demo
appointment types, and a few bookings (today's board, the demo patient's next visit). Idempotent; synthetic."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ehr.models import Location, Patient, User
from scheduling.errors import SchedulingError
from scheduling.models import Appointment, AppointmentType, AvailabilityRule, ResourceRequirement, Schedule
from scheduling.services.booking import appointment_book

# (code, name, modality, minutes, buffer before, buffer after, patient bookable, needs [(kind, category, optional)])
DEMO_TYPES: list[tuple[str, str, str, int, int, int, bool, list[tuple[str, str, bool]]]] = [
    ("video-consult", "Video consultation", "video", 30, 0, 0, True, [("interpreter", "pt", True)]),
    ("clinic-follow-up", "Follow-up at the clinic", "in-person", 30, 0, 10, True, [("room", "exam", False)]),
    ("ecg-check", "ECG check", "in-person", 30, 5, 10, False, [("room", "exam", False), ("equipment", "ecg", False)]),
]
# (username, location name); the other resources: (kind, name, category, location name)
DEMO_PRACTITIONERS = [
    ("doctor", "Riverside Clinic"),
    ("doctor2", "Riverside Clinic"),
    ("doctor3", "Hilltop Virtual Clinic"),
    ("doctor4", "Hilltop Virtual Clinic"),
]
DEMO_RESOURCES = [
    ("room", "Exam room 1", "exam", "Riverside Clinic"),
    ("room", "Exam room 2", "exam", "Riverside Clinic"),
    ("equipment", "ECG cart", "ecg", "Riverside Clinic"),
    ("interpreter", "Portuguese interpreter", "pt", "Hilltop Virtual Clinic"),
]
# Demo hours are every day, 07:00-21:00 local, so the demo has free slots and a board on any day it is opened.
DEMO_OPEN, DEMO_CLOSE = dt.time(7, 0), dt.time(21, 0)


@dataclass(frozen=True)
class SchedulingDemoSummary:
    schedules: int
    appointment_types: int
    appointments_booked: int


def _schedule(kind: str, name: str, category: str, location: Location, practitioner: User | None) -> Schedule:
    lookup: dict[str, Any] = (
        {"practitioner": practitioner} if practitioner is not None else {"kind": kind, "name": name}
    )
    schedule, _ = Schedule.objects.update_or_create(
        **lookup,
        defaults={
            "kind": kind,
            "name": name,
            "category": category,
            "location": location,
            "time_zone": location.timezone,
            "active": True,
        },
    )
    if not AvailabilityRule.objects.filter(schedule=schedule).exists():
        AvailabilityRule.objects.bulk_create(
            [
                AvailabilityRule(
                    schedule=schedule,
                    weekday=day,
                    start_time=DEMO_OPEN,
                    end_time=DEMO_CLOSE,
                    effective_from=dt.date(2024, 1, 1),
                )
                for day in range(7)
            ]
        )
    return schedule


def demo_seed_scheduling() -> SchedulingDemoSummary:
    """Bring the demo schedules and types to their defined state, then book today's board and the demo patient's
    next visit if they are not booked yet. Runs after ``ehr.services.demo.demo_seed``."""
    if getattr(settings, "ENVIRONMENT", "") == "production":
        raise SchedulingError("the scheduling demo refuses to run with production settings")
    locations = {loc.name: loc for loc in Location.objects.filter(organization__name="Consulta Demo Health")}
    with transaction.atomic():
        count = 0
        for username, location_name in DEMO_PRACTITIONERS:
            user = User.objects.get(username=username)
            _schedule("practitioner", user.display_name, "", locations[location_name], user)
            count += 1
        for kind, name, category, location_name in DEMO_RESOURCES:
            _schedule(kind, name, category, locations[location_name], None)
            count += 1
        for code, name, modality, minutes, before, after, bookable, needs in DEMO_TYPES:
            appointment_type, _ = AppointmentType.objects.update_or_create(
                code=code,
                defaults={
                    "name": name,
                    "modality": modality,
                    "duration_minutes": minutes,
                    "buffer_before_minutes": before,
                    "buffer_after_minutes": after,
                    "slot_interval_minutes": 15,
                    "min_notice_minutes": 30,
                    "horizon_days": 90,
                    "cancellation_window_minutes": 12 * 60,
                    "patient_bookable": bookable,
                    "active": True,
                },
            )
            ResourceRequirement.objects.get_or_create(appointment_type=appointment_type, kind="practitioner")
            for kind, category, optional in needs:
                ResourceRequirement.objects.update_or_create(
                    appointment_type=appointment_type, kind=kind, category=category, defaults={"optional": optional}
                )
    return SchedulingDemoSummary(
        schedules=count, appointment_types=len(DEMO_TYPES), appointments_booked=_book_demo_appointments()
    )


def _next_start(after: dt.datetime) -> dt.datetime:
    """The first quarter hour at least 30 minutes after ``after``."""
    base = after + dt.timedelta(minutes=30)
    return base.replace(minute=(base.minute // 15) * 15, second=0, microsecond=0) + dt.timedelta(minutes=15)


def _book_demo_appointments() -> int:
    """A few bookings from now on today (the scheduler board) and the demo patient's visit tomorrow; skipped when
    demo appointments for those days exist already. Each booking goes through the real service as the scheduler."""
    scheduler = User.objects.get(username="scheduler")
    video = AppointmentType.objects.get(code="video-consult")
    follow_up = AppointmentType.objects.get(code="clinic-follow-up")
    now = timezone.now()
    booked = 0
    patients = list(Patient.objects.filter(user__username__startswith="patient").order_by("id")[:8])
    if not patients:
        return 0
    plan: list[tuple[AppointmentType, str, dt.datetime, Patient]] = []
    if not Appointment.objects.filter(start__gte=now, start__lt=now + dt.timedelta(hours=8)).exists():
        start = _next_start(now)
        for index, patient in enumerate(patients[1:7]):
            kind = video if index % 2 == 0 else follow_up
            practitioner = ["doctor", "doctor2", "doctor3", "doctor4"][index % 4]
            if kind is follow_up and practitioner in {"doctor3", "doctor4"}:
                kind = video
            plan.append((kind, practitioner, start + dt.timedelta(minutes=30 * (index // 2)), patient))
    demo_patient = Patient.objects.filter(user__username="patient").first()
    tomorrow = (now + dt.timedelta(days=1)).replace(hour=15, minute=0, second=0, microsecond=0)
    if demo_patient is not None and not Appointment.objects.filter(patient=demo_patient, start__gt=now).exists():
        plan.append((video, "doctor", tomorrow, demo_patient))
    for appointment_type, username, start, patient in plan:
        try:
            appointment_book(
                actor=scheduler,
                appointment_type_id=appointment_type.pk,
                patient_id=patient.pk,
                start=start,
                practitioner_id=User.objects.get(username=username).pk,
            )
            booked += 1
        except SchedulingError:
            continue  # outside the demo hours late in the evening, or taken: the demo simply has one fewer
    return booked
