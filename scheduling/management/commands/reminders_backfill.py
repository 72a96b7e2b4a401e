"""`python manage.py reminders_backfill`: plan the reminders of upcoming appointments that have none (idempotent)."""

from typing import Any

from django.core.management.base import BaseCommand

from scheduling.reminders import reminders_backfill


class Command(BaseCommand):
    help = (
        "Queue the reminders of every upcoming active appointment per its type's plan; reminders already queued or"
        " sent are left alone, so it is safe to run again (after an upgrade, or after switching a plan on)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        planned = reminders_backfill()
        self.stdout.write(
            self.style.SUCCESS(
                f"Reminders in place for {planned} upcoming appointments (missing ones queued, existing ones kept)."
            )
        )
