"""factory_boy factories for scheduling: schedules with weekly hours, appointment types with their resources.

Rows are plain model rows (schedules and types are configuration, not service-managed records); bookings are made
through the real services in the tests themselves.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import factory

from scheduling.models import AppointmentType, AvailabilityRule, ResourceRequirement, Schedule
from tests.factories import LocationFactory

WEEKDAYS = (0, 1, 2, 3, 4)


class ScheduleFactory(factory.django.DjangoModelFactory):
    """A resource schedule. ``ScheduleFactory(practitioner=doctor)`` makes the doctor's schedule at their first
    location; ``hours=("09:00", "17:00")`` (default) adds Monday-Friday weekly rules from 2020 on; ``hours=()`` adds
    none."""

    class Meta:
        model = Schedule
        skip_postgeneration_save = True

    kind = factory.LazyAttribute(lambda o: "practitioner" if o.practitioner is not None else "room")
    name = factory.LazyAttribute(
        lambda o: o.practitioner.display_name if o.practitioner is not None else f"{o.kind.title()} {o.category}"
    )
    category = ""
    practitioner = None
    location = factory.LazyAttribute(
        lambda o: (o.practitioner.locations.first() if o.practitioner is not None else None) or LocationFactory()
    )
    time_zone = factory.LazyAttribute(lambda o: o.location.timezone)

    @factory.post_generation
    def hours(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if not create or extracted == ():
            return
        start, end = extracted or ("09:00", "17:00")
        weekly_hours(self, WEEKDAYS, start, end)


def weekly_hours(
    schedule: Schedule, weekdays: tuple[int, ...], start: str, end: str, since: str = "2020-01-01"
) -> None:
    AvailabilityRule.objects.bulk_create(
        [
            AvailabilityRule(
                schedule=schedule,
                weekday=day,
                start_time=dt.time.fromisoformat(start),
                end_time=dt.time.fromisoformat(end),
                effective_from=dt.date.fromisoformat(since),
            )
            for day in weekdays
        ]
    )


class AppointmentTypeFactory(factory.django.DjangoModelFactory):
    """An appointment type needing a practitioner; ``needs=[("room", "exam"), ("equipment", "ecg")]`` adds more."""

    class Meta:
        model = AppointmentType
        django_get_or_create = ("code",)
        skip_postgeneration_save = True

    code = factory.Sequence(lambda n: f"type-{n}")
    name = factory.Sequence(lambda n: f"Visit type {n}")
    modality = "video"
    duration_minutes = 30
    slot_interval_minutes = 15
    min_notice_minutes = 60
    horizon_days = 90
    cancellation_window_minutes = 24 * 60
    patient_bookable = True

    @factory.post_generation
    def needs(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if not create:
            return
        ResourceRequirement.objects.get_or_create(appointment_type=self, kind="practitioner", category="")
        for item in extracted or ():
            kind, category, *rest = (*item, False) if len(item) == 2 else item
            ResourceRequirement.objects.get_or_create(
                appointment_type=self, kind=kind, category=category, defaults={"optional": bool(rest and rest[0])}
            )
