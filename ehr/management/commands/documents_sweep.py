"""`python manage.py documents_sweep`: remove document files that no row points at (docs/documents.md)."""

import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ehr.services.documents import document_orphans_sweep


class Command(BaseCommand):
    help = (
        "Remove files in the document store that no DocumentReference row points at, and abandoned upload temp "
        "files, last touched more than --older-than-minutes ago (default 60). Never touches younger files."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than-minutes", type=int, default=60)

    def handle(self, *args: Any, **options: Any) -> None:
        minutes = options["older_than_minutes"]
        if minutes < 0:
            raise CommandError("--older-than-minutes must be 0 or more")
        count = document_orphans_sweep(older_than=datetime.timedelta(minutes=minutes))
        self.stdout.write(self.style.SUCCESS(f"Removed {count} unreferenced document file(s)."))
