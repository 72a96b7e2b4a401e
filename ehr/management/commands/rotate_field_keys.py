"""`python manage.py rotate_field_keys`: re-encrypt patient identifiers under the first FIELD_ENCRYPTION_KEYS key."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ehr.services.patients import ROTATION_BATCH, patient_identifiers_rotate_keys


class Command(BaseCommand):
    help = (
        "Re-encrypt every identifier token with the current (first) key of FIELD_ENCRYPTION_KEYS. Idempotent; "
        "run after prepending a new key, then remove the old key."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=ROTATION_BATCH)

    def handle(self, *args: Any, **options: Any) -> None:
        count = patient_identifiers_rotate_keys(batch_size=options["batch_size"])
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted identifiers of {count} patient record(s)."))
