"""`python manage.py seed_demo`: idempotent synthetic demo data (password from DEMO_PASSWORD)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ehr.services.demo import DEMO_STAFF, DemoRefused, demo_seed


class Command(BaseCommand):
    help = "Load the demo organization, clinics, staff and 50 synthetic patients (idempotent; not in production)."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            summary = demo_seed()
        except DemoRefused as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready: {summary.locations} clinics, {summary.staff} staff, {summary.patients} patients."
            )
        )
        logins = ", ".join(
            [u for u, *_ in DEMO_STAFF if u in {"admin", "doctor", "doctor2", "nurse", "scheduler", "billing"}]
            + ["patient", "patient2"]
        )
        self.stdout.write(f"Demo logins: {logins} (password: $DEMO_PASSWORD, default consulta-demo)")
