"""`python manage.py audit_verify`: seal pending audit rows, then check the whole hash chain."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ehr.services.audit import audit_seal, audit_verify_chain


class Command(BaseCommand):
    help = "Verify the audit log's hash chain and report the first broken link (exit status 1 if broken)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-seal", action="store_true", help="Check only; do not seal pending rows first.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["no_seal"]:
            while audit_seal():
                pass
        report = audit_verify_chain()
        if not report.ok:
            raise CommandError(
                f"audit chain broken at position {report.broken_at} (row id {report.broken_id}): {report.reason}; "
                f"{report.checked} rows verified before it"
            )
        self.stdout.write(
            self.style.SUCCESS(f"audit chain ok: {report.checked} rows verified, {report.unsealed} not yet sealed")
        )
