"""`python manage.py seed_demo_notifications`: reminders of the demo appointments due now, so `make run` (demo
mode) really sends an SMS and an email to the local fake providers (after the ehr, scheduling and telehealth
demos)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from notifications.errors import NotificationsError
from notifications.services.demo import demo_seed_notifications


class Command(BaseCommand):
    help = "Demo contact preferences, staff alert numbers, and a reminder due now per demo patient (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            summary = demo_seed_notifications()
        except NotificationsError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Notifications demo ready: {summary.patients_due_now} demo patients with a reminder due now "
                f"({summary.reminders_queued} queued now), {summary.preferences_set} channel orders set, "
                f"{summary.staff_contacts_created} staff numbers created."
            )
        )
