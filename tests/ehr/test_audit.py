"""The audit log: written in the caller's transaction, append-only in PostgreSQL, hash-chained in commit order."""

from __future__ import annotations

import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from ehr.models import AuditEvent
from ehr.services.audit import audit_record, audit_seal, audit_verify_chain


def record(actor=None, **extra) -> AuditEvent:  # type: ignore[no-untyped-def]
    fields = {"action": "read", "entity_type": "Patient", "entity_id": 1, "patient_id": 1, **extra}
    return audit_record(actor=actor, **fields)


@pytest.mark.django_db
def test_audit_row_commits_and_rolls_back_with_the_callers_transaction(doctor) -> None:
    record(doctor)

    def access_then_fail() -> None:
        with transaction.atomic():
            record(doctor, entity_id=2)
            raise RuntimeError("the access itself failed")

    with pytest.raises(RuntimeError):
        access_then_fail()
    rows = list(AuditEvent.objects.values_list("entity_id", "actor_role", "outcome"))
    assert rows == [("1", "practitioner", "success")]


@pytest.mark.django_db
def test_unknown_action_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown audit action"):
        record(action="peek")
    assert AuditEvent.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE ehr_auditevent SET outcome = 'denied'",
        "UPDATE ehr_auditevent SET detail = '{\"x\": 1}'::jsonb",
        "DELETE FROM ehr_auditevent",
    ],
)
def test_raw_sql_update_and_delete_are_rejected_by_the_database(sql: str) -> None:
    row = record()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    assert AuditEvent.objects.get(pk=row.pk).outcome == "success"


@pytest.mark.django_db
def test_rows_of_the_sealers_own_open_transaction_are_not_sealed() -> None:
    record()  # pytest-django keeps this test inside one transaction, which is still open while sealing
    assert audit_seal() == 0
    assert AuditEvent.objects.get().chain_position is None


@pytest.mark.django_db(transaction=True)
def test_a_sealed_row_cannot_be_resealed_or_altered() -> None:
    record()
    assert audit_seal() == 1
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE ehr_auditevent SET hash = repeat('0', 64), prev_hash = repeat('0', 64)")


@pytest.mark.django_db(transaction=True)
def test_sealing_chains_every_committed_row_and_verify_passes() -> None:
    for i in range(5):
        record(entity_id=i)
    assert audit_seal() == 5
    positions = list(AuditEvent.objects.order_by("chain_position").values_list("chain_position", flat=True))
    assert positions == [1, 2, 3, 4, 5]
    report = audit_verify_chain()
    assert (report.ok, report.checked, report.unsealed) == (True, 5, 0)
    call_command("audit_verify")


@pytest.mark.django_db(transaction=True)
def test_rows_of_a_still_running_transaction_hold_back_later_rows_until_it_ends() -> None:
    inserted, release = threading.Event(), threading.Event()

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                record(entity_id="slow")
                inserted.set()
                assert release.wait(timeout=30)
        finally:
            connection.close()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    assert inserted.wait(timeout=30)
    record(entity_id="fast")  # commits now, but its transaction started after the slow one
    try:
        assert audit_seal() == 0  # sealing "fast" now would fix an order the slow row could still precede
    finally:
        release.set()
        writer.join()
    assert audit_seal() == 2
    order = list(AuditEvent.objects.order_by("chain_position").values_list("entity_id", flat=True))
    assert order == ["slow", "fast"]
    assert audit_verify_chain().ok


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_all_end_up_in_one_valid_chain() -> None:
    barrier = threading.Barrier(6)

    def writer(n: int) -> None:
        try:
            barrier.wait()
            for i in range(20):
                record(entity_id=f"{n}-{i}")
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    while audit_seal(batch=37):
        pass
    report = audit_verify_chain()
    assert (report.ok, report.checked, report.unsealed) == (True, 120, 0)


def _tamper(sql: str) -> None:
    """Change the table behind the trigger's back, as a database superuser could."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE ehr_auditevent DISABLE TRIGGER ehr_auditevent_append_only")
        cursor.execute(sql)
        cursor.execute("ALTER TABLE ehr_auditevent ENABLE TRIGGER ehr_auditevent_append_only")


@pytest.mark.django_db(transaction=True)
def test_audit_verify_reports_the_first_modified_row() -> None:
    for i in range(6):
        record(entity_id=i)
    audit_seal()
    _tamper("UPDATE ehr_auditevent SET outcome = 'denied' WHERE chain_position = 4")
    report = audit_verify_chain()
    assert (report.broken_at, report.checked) == (4, 3)
    assert "content" in report.reason
    with pytest.raises(CommandError, match="broken at position 4"):
        call_command("audit_verify")


@pytest.mark.django_db(transaction=True)
def test_audit_verify_reports_a_deleted_row() -> None:
    for i in range(6):
        record(entity_id=i)
    audit_seal()
    _tamper("DELETE FROM ehr_auditevent WHERE chain_position = 2")
    report = audit_verify_chain()
    assert report.broken_at == 2
    assert "deleted" in report.reason


@pytest.mark.django_db(transaction=True)
def test_audit_verify_detects_a_rebuilt_chain_without_the_key(settings) -> None:  # type: ignore[no-untyped-def]
    for i in range(3):
        record(entity_id=i)
    audit_seal()
    settings.AUDIT_CHAIN_KEY = "a different key an intruder would have to guess"
    assert audit_verify_chain().broken_at == 1
