"""Thin Celery tasks of the ehr app."""

from celery import shared_task

from ehr.services.audit import audit_seal as _seal


@shared_task(name="ehr.tasks.audit_seal")
def audit_seal() -> int:
    """Chain newly committed audit rows (every minute, from beat)."""
    return _seal()
