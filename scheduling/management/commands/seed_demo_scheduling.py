"""`python manage.py seed_demo_scheduling`: idempotent demo schedules, appointment types and bookings (after
`seed_demo`)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from scheduling.errors import SchedulingError
from scheduling.services.demo import demo_seed_scheduling


class Command(BaseCommand):
    help = "Load demo schedules, appointment types and a few bookings (idempotent; run after seed_demo)."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            summary = demo_seed_scheduling()
        except SchedulingError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Scheduling demo ready: {summary.schedules} schedules, {summary.appointment_types} appointment types,"
                f" {summary.appointments_booked} new bookings."
            )
        )
