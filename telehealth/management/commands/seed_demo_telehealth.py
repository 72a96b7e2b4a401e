"""`python manage.py seed_demo_telehealth`: video appointments the demo patients can check in to right away
(after `seed_demo` and `seed_demo_scheduling`)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from telehealth.errors import TelehealthError
from telehealth.services.demo import demo_seed_telehealth


class Command(BaseCommand):
    help = "Book video visits for the demo patients with the demo doctor, open for check-in now (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            summary = demo_seed_telehealth()
        except TelehealthError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Telehealth demo ready: {summary.kept} open video visits kept, {summary.booked} booked."
            )
        )
        if summary.guest_url:
            # One line scripts/run.sh picks up for its banner (a path; the banner adds the host).
            self.stdout.write(f"demo-guest-link: {summary.guest_url}")
