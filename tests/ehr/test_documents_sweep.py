"""The document store's orphan sweep, with real files in a temporary DOCUMENT_STORAGE_ROOT and real PostgreSQL.

A file that no DocumentReference row points at (left by a crash between placing an upload and committing its
row) is removed once it is older than the cutoff; a file with a row, a file younger than the cutoff, and anything
whose name the store did not make are never touched. Time is moved forward with time-machine (file ages are the
file system's own, so "older" means the clock has moved on since the file was written)."""

from __future__ import annotations

import datetime
import secrets
from pathlib import Path
from typing import Any

import pytest
import time_machine
from celery import current_app
from django.conf import settings
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from ehr.models import DocumentReference
from ehr.services.documents import IncomingDocument, document_orphans_sweep, document_upload, stored_path
from ehr.tasks import documents_sweep
from tests.factories import PatientFactory, care_team_join

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n%%EOF\n"


@pytest.fixture(autouse=True)
def store(settings: Any, tmp_path: Path) -> Path:
    root = tmp_path / "documents"
    settings.DOCUMENT_STORAGE_ROOT = root
    return root


@pytest.fixture
def chart(doctor: Any) -> Any:
    record = PatientFactory()
    care_team_join(patient=record, member=doctor)
    return record


def upload(doctor: Any, chart: Any) -> DocumentReference:
    incoming = IncomingDocument(filename="lab.pdf", declared_type="application/pdf")
    incoming.write(PDF)
    ref = document_upload(actor=doctor, patient_id=chart.pk, incoming=incoming, type="lab-report", title="Panel")
    return DocumentReference.objects.get(pk=ref.id)


def orphan_from_a_crash(doctor: Any, chart: Any) -> Path:
    """An upload whose file was placed but whose transaction never committed (the outer transaction rolls back,
    as it would when the process dies before COMMIT)."""

    class Crash(Exception):
        pass

    def upload_then_crash() -> None:
        with transaction.atomic():
            upload(doctor, chart)
            raise Crash

    before = set(files_under(settings.DOCUMENT_STORAGE_ROOT))
    with pytest.raises(Crash):
        upload_then_crash()
    (left,) = set(files_under(settings.DOCUMENT_STORAGE_ROOT)) - before
    return left


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.is_file()) if Path(root).exists() else []


def later(hours: float) -> time_machine.travel:
    return time_machine.travel(timezone.now() + datetime.timedelta(hours=hours), tick=False)


def test_a_crash_between_placing_and_committing_leaves_an_orphan_that_the_sweep_removes(doctor, chart) -> None:
    orphan = orphan_from_a_crash(doctor, chart)
    assert not DocumentReference.objects.exists()
    assert orphan.read_bytes() == PDF
    with later(2):
        assert document_orphans_sweep() == 1
    assert not orphan.exists()


def test_files_with_a_row_are_never_removed(doctor, chart) -> None:
    kept = upload(doctor, chart)
    with later(24 * 365):
        assert document_orphans_sweep() == 0
    assert stored_path(kept.storage_key).read_bytes() == PDF


def test_a_file_younger_than_the_cutoff_is_kept_even_without_a_row(doctor, chart) -> None:
    orphan = orphan_from_a_crash(doctor, chart)
    assert document_orphans_sweep() == 0  # it may be an upload still in flight
    with later(0.5):
        assert document_orphans_sweep() == 0
        assert document_orphans_sweep(older_than=datetime.timedelta(minutes=20)) == 1
    assert not orphan.exists()


def test_abandoned_upload_temp_files_are_removed_when_old_and_kept_when_young(store) -> None:
    abandoned = IncomingDocument(filename="half.pdf", declared_type="application/pdf")
    abandoned.write(PDF[:5])  # a request that died mid-stream
    assert abandoned.path is not None
    part = abandoned.path
    assert document_orphans_sweep() == 0
    assert part.exists()
    with later(2):
        assert document_orphans_sweep() == 1
    assert not part.exists()
    abandoned.discard()


def test_names_the_store_did_not_make_are_left_alone(store, doctor, chart) -> None:
    orphan_from_a_crash(doctor, chart)
    foreign = [
        store / "README",
        store / "ab" / "not-a-key.pdf",
        store / "zz" / secrets.token_hex(32),  # not a fan-out directory the store makes
        store / ".incoming" / "notes.txt",
    ]
    for path in foreign:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    with later(2):
        assert document_orphans_sweep() == 1
    assert all(path.exists() for path in foreign)


def test_many_orphans_and_rows_in_one_fan_out_directory(doctor, chart, store) -> None:
    kept = [upload(doctor, chart) for _ in range(3)]
    orphans = []
    for key in (secrets.token_hex(32) for _ in range(5)):
        path = stored_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(PDF)
        orphans.append(path)
    with later(2):
        assert document_orphans_sweep() == 5
        assert document_orphans_sweep() == 0  # idempotent
    assert not any(p.exists() for p in orphans)
    assert all(stored_path(row.storage_key).exists() for row in kept)


def test_an_empty_or_missing_store_sweeps_nothing(store) -> None:
    assert not store.exists()
    assert document_orphans_sweep() == 0


def test_negative_cutoff_is_refused() -> None:
    with pytest.raises(ValueError, match="older_than"):
        document_orphans_sweep(older_than=datetime.timedelta(seconds=-1))


def test_management_command_sweeps_and_reports_the_count(doctor, chart, capsys) -> None:
    orphan = orphan_from_a_crash(doctor, chart)
    call_command("documents_sweep")
    assert "Removed 0 unreferenced document file(s)." in capsys.readouterr().out
    with later(2):
        call_command("documents_sweep", "--older-than-minutes", "90")
    assert "Removed 1 unreferenced document file(s)." in capsys.readouterr().out
    assert not orphan.exists()


def test_beat_runs_the_sweep_task_hourly(doctor, chart) -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["documents-sweep"]
    assert entry == {"task": "ehr.tasks.documents_sweep", "schedule": 3600.0}
    task = current_app.tasks[entry["task"]]  # registered under the name beat sends
    assert task.name == documents_sweep.name
    orphan = orphan_from_a_crash(doctor, chart)
    with later(2):
        assert task() == 1
    assert not orphan.exists()
