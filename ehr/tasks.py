"""Thin Celery tasks of the ehr app."""

from celery import shared_task

from ehr.services.audit import audit_seal as _seal
from ehr.services.documents import document_orphans_sweep


@shared_task(name="ehr.tasks.audit_seal")
def audit_seal() -> int:
    """Chain newly committed audit rows (every minute, from beat)."""
    return _seal()


@shared_task(name="ehr.tasks.documents_sweep")
def documents_sweep() -> int:
    """Remove document files no row points at, older than an hour (hourly, from beat)."""
    return document_orphans_sweep()
