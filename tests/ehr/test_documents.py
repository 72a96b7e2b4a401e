"""Documents over HTTP against real PostgreSQL, with the files in a temporary DOCUMENT_STORAGE_ROOT (a setting):
upload/download round trip, size and type limits (sniffed, not trusted), atomicity of file + row (no orphan file
after a failed upload, also when the failure comes after the file was placed), the download's headers, access for
every kind of user, audit rows, entered-in-error, and the PostgreSQL guards."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError, connection, transaction
from rest_framework.test import APIClient

from ehr.models import AuditEvent, DocumentReference, DocumentReferenceVersion
from tests.conftest import csrf_login
from tests.factories import EncounterFactory, PatientFactory, UserFactory, care_team_join

pytestmark = pytest.mark.django_db

API = "/api/v1/ehr/"
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(64))
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(64))
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + bytes(64)


@pytest.fixture(autouse=True)
def store(settings: Any, tmp_path: Path) -> Path:
    root = tmp_path / "documents"
    settings.DOCUMENT_STORAGE_ROOT = root
    return root


def stored_files(root: Path) -> list[Path]:
    """Every file under the store, the temp area included."""
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def signed_in(username: str) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    assert csrf_login(client, username).status_code == 200
    return client


def upload(client: APIClient, patient_id: int, data: bytes, name: str, content_type: str = "", **fields: Any) -> Any:
    body: dict[str, Any] = {"type": "lab-report", "title": "Blood panel", **fields}
    if name:
        body["file"] = SimpleUploadedFile(name, data, content_type=content_type or "application/octet-stream")
    body = {k: v for k, v in body.items() if v is not None}
    token = client.cookies["csrftoken"].value
    return client.post(f"{API}patients/{patient_id}/documents/", body, format="multipart", HTTP_X_CSRFTOKEN=token)


def send(client: APIClient, method: str, path: str, data: Any = None, **headers: str) -> Any:
    token = client.cookies["csrftoken"].value
    return getattr(client, method)(API + path, data, format="json", HTTP_X_CSRFTOKEN=token, **headers)


def content(response: Any) -> bytes:
    return b"".join(response.streaming_content)


class Audit:
    def __init__(self) -> None:
        self.start = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0

    def rows(self) -> list[tuple[str, str, str]]:
        return list(
            AuditEvent.objects.filter(id__gt=self.start).order_by("id").values_list("action", "entity_type", "outcome")
        )


@pytest.fixture
def portal_user() -> Any:
    return UserFactory(username="pt-docs", roles=["patient"])


@pytest.fixture
def chart(doctor: Any, portal_user: Any) -> Any:
    record = PatientFactory(user=portal_user)
    care_team_join(patient=record, member=doctor)
    return record


@pytest.fixture
def dr(doctor: Any) -> APIClient:
    return signed_in("dr-test")


def test_upload_and_download_round_trip_with_sha256_and_safe_headers(dr, chart, store) -> None:
    audit = Audit()
    response = upload(dr, chart.pk, PDF, "résultats (março).pdf", "application/pdf")
    assert response.status_code == 201, response.json()
    assert response["ETag"] == '"1"'
    body = response.json()
    assert body | {"id": 0, "created_at": "", "updated_at": "", "uploaded_by_display_name": ""} == {
        "id": 0, "patient_id": chart.pk, "encounter_id": None, "type": "lab-report", "title": "Blood panel",
        "content_type": "application/pdf", "size_bytes": len(PDF), "sha256": hashlib.sha256(PDF).hexdigest(),
        "original_filename": "résultats (março).pdf", "uploaded_by_id": body["uploaded_by_id"],
        "uploaded_by_display_name": "", "status": "current", "version": 1, "created_at": "", "updated_at": "",
    }  # fmt: skip
    row = DocumentReference.objects.get(pk=body["id"])
    # Stored outside the row, under a random key: nothing of the file name or the patient in the path.
    files = stored_files(store)
    assert files == [store / row.storage_key[:2] / row.storage_key]
    assert files[0].read_bytes() == PDF
    assert "storage_key" not in body

    download = dr.get(f"{API}documents/{body['id']}/content/", {"purpose": "treatment"})
    assert download.status_code == 200
    data = content(download)
    assert data == PDF
    assert hashlib.sha256(data).hexdigest() == body["sha256"]
    assert download["Content-Type"] == "application/pdf"
    assert download["Content-Disposition"] == "attachment; filename*=UTF-8''r%C3%A9sultats%20%28mar%C3%A7o%29.pdf"
    assert download["X-Content-Type-Options"] == "nosniff"
    assert download["Cache-Control"] == "no-store"
    assert download["Content-Security-Policy"] == "sandbox"
    assert download["Content-Length"] == str(len(PDF))

    listed = send(dr, "get", f"patients/{chart.pk}/documents/")
    assert [d["id"] for d in listed.json()["results"]] == [body["id"]]
    assert audit.rows() == [
        ("create", "DocumentReference", "success"),
        ("read", "DocumentReference", "success"),
        ("read", "DocumentReference", "success"),
    ]
    read = AuditEvent.objects.filter(entity_type="DocumentReference", action="read").order_by("id").first()
    assert read is not None
    assert (read.purpose, read.entity_id, read.patient_id) == ("treatment", str(body["id"]), chart.pk)


@pytest.mark.parametrize(
    ("data", "name", "declared", "sniffed"),
    [
        (PNG, "scan.png", "image/png", "image/png"),
        (JPEG, "photo.JPG", "image/jpeg", "image/jpeg"),
        ("Referral: please see Mrs. Ñ.\n".encode(), "letter.txt", "text/plain", "text/plain; charset=utf-8"),
        (PDF, "report.pdf", "application/octet-stream", "application/pdf"),  # "unknown" from the client is fine
    ],
)
def test_each_allowed_type_is_sniffed(dr, chart, data, name, declared, sniffed) -> None:
    response = upload(dr, chart.pk, data, name, declared)
    assert response.status_code == 201, response.json()
    assert response.json()["content_type"] == sniffed


@pytest.mark.parametrize(
    ("data", "name", "declared"),
    [
        (EXE, "results.pdf", "application/pdf"),  # a Windows executable renamed .pdf
        (EXE, "results.exe", "application/octet-stream"),
        (PDF, "results.png", "image/png"),  # extension says PNG, bytes say PDF
        (PDF, "results.pdf", "image/png"),  # declared type disagrees with the bytes
        (PNG, "scan", "image/png"),  # no extension to agree with
        (b"plain text\x00with a NUL", "notes.txt", "text/plain"),
        (b"\xc3\x28 not utf-8", "notes.txt", "text/plain"),
        (b"<html><script>alert(1)</script></html>", "page.html", "text/html"),
    ],
)
def test_unsupported_or_mismatched_types_are_415_and_leave_nothing(dr, chart, store, data, name, declared) -> None:
    audit = Audit()
    response = upload(dr, chart.pk, data, name, declared)
    assert response.status_code == 415, response.json()
    assert response.json()["code"] == "unsupported_file_type"
    assert not DocumentReference.objects.exists()
    assert stored_files(store) == []
    assert audit.rows() == []


def test_oversize_declared_length_is_413_before_parsing_and_writes_nothing(dr, chart, store, settings) -> None:
    audit = Audit()
    too_big = PDF + b"0" * (settings.DOCUMENT_MAX_BYTES + 1 - len(PDF))
    response = upload(dr, chart.pk, too_big, "big.pdf", "application/pdf")
    assert response.status_code == 413
    assert response.json()["code"] == "file_too_large"
    assert not DocumentReference.objects.exists()
    assert stored_files(store) == []
    assert audit.rows() == []


def test_oversize_is_stopped_while_streaming_and_writes_nothing(dr, chart, store, settings) -> None:
    settings.DOCUMENT_MAX_BYTES = 1000  # the body is within the Content-Length allowance; the stream check fires
    exactly = upload(dr, chart.pk, PDF + b"0" * (1000 - len(PDF)), "max.pdf", "application/pdf")
    assert exactly.status_code == 201, exactly.json()
    before = stored_files(store)
    response = upload(dr, chart.pk, PDF + b"0" * 1500, "big.pdf", "application/pdf")
    assert response.status_code == 413
    assert response.json()["code"] == "file_too_large"
    assert DocumentReference.objects.count() == 1
    assert stored_files(store) == before


def test_empty_file_and_missing_fields_are_400(dr, chart, store) -> None:
    audit = Audit()
    empty = upload(dr, chart.pk, b"", "empty.pdf", "application/pdf")
    assert (empty.status_code, empty.json()["code"]) == (400, "invalid")
    assert "file" in empty.json()["fields"]
    no_file = upload(dr, chart.pk, b"", "")
    assert (no_file.status_code, no_file.json()["fields"]) == (400, {"file": ["Attach the file."]})
    no_title = upload(dr, chart.pk, PDF, "a.pdf", title=None)
    assert (no_title.status_code, list(no_title.json()["fields"])) == (400, ["title"])
    bad_type = upload(dr, chart.pk, PDF, "a.pdf", type="x-ray")
    assert (bad_type.status_code, list(bad_type.json()["fields"])) == (400, ["type"])
    no_type = upload(dr, chart.pk, PDF, "a.pdf", type=None)
    assert (no_type.status_code, list(no_type.json()["fields"])) == (400, ["type"])
    assert not DocumentReference.objects.exists()
    assert stored_files(store) == []
    assert audit.rows() == []


def test_failure_after_the_file_was_placed_rolls_back_and_removes_it(dr, doctor, chart, store) -> None:
    """An encounter of another patient is refused by PostgreSQL at the insert, after the rename into place."""
    other = PatientFactory()
    care_team_join(patient=other, member=doctor)
    foreign = EncounterFactory(practitioner=doctor, patient=other)
    own = EncounterFactory(practitioner=doctor, patient=chart)
    audit = Audit()
    response = upload(dr, chart.pk, PDF, "a.pdf", "application/pdf", encounter_id=foreign.id)
    assert response.status_code == 400, response.json()
    assert response.json()["fields"] == {"encounter_id": ["No encounter of this patient with this id."]}
    missing = upload(dr, chart.pk, PDF, "a.pdf", "application/pdf", encounter_id=999999)
    assert missing.status_code == 400
    assert not DocumentReference.objects.exists()
    assert not DocumentReferenceVersion.objects.exists()
    assert stored_files(store) == []
    assert audit.rows() == []
    ok = upload(dr, chart.pk, PDF, "a.pdf", "application/pdf", encounter_id=own.id)
    assert (ok.status_code, ok.json()["encounter_id"]) == (201, own.id)


def test_denied_upload_keeps_no_file_and_is_audited(chart, store, organization, location) -> None:
    UserFactory(username="sched-docs", roles=["scheduler"], organization=organization, locations=[location])
    audit = Audit()
    response = upload(signed_in("sched-docs"), chart.pk, PDF, "a.pdf", "application/pdf")
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
    assert stored_files(store) == []
    assert audit.rows() == [("update", "Patient", "denied")]


def test_entered_in_error_keeps_file_and_row_and_hides_it_by_default(dr, chart, store) -> None:
    document = upload(dr, chart.pk, PDF, "a.pdf", "application/pdf").json()
    path = f"documents/{document['id']}/entered-in-error/"
    assert send(dr, "post", path, {"reason": "wrong patient"}).status_code == 428
    audit = Audit()
    marked = send(dr, "post", path, {"reason": "wrong patient"}, HTTP_IF_MATCH='"1"')
    assert (marked.status_code, marked["ETag"], marked.json()["status"]) == (200, '"2"', "entered-in-error")
    assert audit.rows() == [("entered_in_error", "DocumentReference", "success")]
    again = send(dr, "post", path, {"reason": "twice"}, HTTP_IF_MATCH='"2"')
    assert (again.status_code, again.json()["code"]) == (409, "invalid_transition")
    stale = send(dr, "post", path, {"reason": "stale"}, HTTP_IF_MATCH='"1"')
    assert (stale.status_code, stale.json()["current_version"]) == (412, 2)
    assert send(dr, "get", f"patients/{chart.pk}/documents/").json()["results"] == []
    everything = send(dr, "get", f"patients/{chart.pk}/documents/?include_entered_in_error=true").json()["results"]
    assert [(d["id"], d["status"]) for d in everything] == [(document["id"], "entered-in-error")]
    assert DocumentReference.objects.filter(pk=document["id"]).exists()
    assert len(stored_files(store)) == 1
    assert content(dr.get(f"{API}documents/{document['id']}/content/")) == PDF
    history = send(dr, "get", f"documents/{document['id']}/history/").json()["results"]
    assert [(h["version"], h["reason"]) for h in history] == [(1, "uploaded"), (2, "wrong patient")]
    assert {"field": "status", "from": "current", "to": "entered-in-error"} in history[1]["diff"]


def test_patient_lists_and_downloads_own_documents_but_not_identity_documents(dr, chart, portal_user) -> None:
    lab = upload(dr, chart.pk, PDF, "lab.pdf", "application/pdf").json()
    passport = upload(dr, chart.pk, PNG, "passport.png", "image/png", type="id-document", title="Passport").json()
    me = signed_in("pt-docs")
    listed = me.get(f"{API}patients/{chart.pk}/documents/")
    assert listed.status_code == 200
    assert {d["id"] for d in listed.json()["results"]} == {lab["id"], passport["id"]}
    audit = Audit()
    mine = me.get(f"{API}documents/{lab['id']}/content/")
    assert (mine.status_code, content(mine)) == (200, PDF)
    read = AuditEvent.objects.get(id__gt=audit.start)
    assert (read.actor_id, read.purpose) == (portal_user.pk, "patient_request")
    # Full identity numbers are not shown to patients (READ_IDENTIFIERS), so neither is a scan of the document.
    refused = me.get(f"{API}documents/{passport['id']}/content/")
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    assert audit.rows()[-1] == ("read", "Patient", "denied")
    upload_attempt = upload(me, chart.pk, PDF, "mine.pdf", "application/pdf")
    assert upload_attempt.status_code == 403


def test_identity_document_is_served_to_the_care_team(dr, chart) -> None:
    passport = upload(dr, chart.pk, PNG, "passport.png", "image/png", type="id-document", title="Passport").json()
    response = dr.get(f"{API}documents/{passport['id']}/content/", {"purpose": "registration"})
    assert (response.status_code, response["Content-Type"]) == (200, "image/png")
    assert content(response) == PNG


def test_other_patients_scheduler_billing_and_outsiders_are_refused(dr, chart, organization, location) -> None:
    document = upload(dr, chart.pk, PDF, "a.pdf", "application/pdf").json()
    UserFactory(username="pt-other", roles=["patient"])
    PatientFactory(user=UserFactory(username="pt-other-linked", roles=["patient"]))
    UserFactory(username="sched-x", roles=["scheduler"], organization=organization, locations=[location])
    UserFactory(username="bill-x", roles=["billing"], organization=organization, locations=[location])
    UserFactory(username="dr-outside", roles=["practitioner"], organization=organization)
    expected = {
        "pt-other-linked": "permission_denied",
        "sched-x": "permission_denied",
        "bill-x": "permission_denied",
        "dr-outside": "break_glass_required",
    }
    for username, code in expected.items():
        client = signed_in(username)
        audit = Audit()
        listed = client.get(f"{API}patients/{chart.pk}/documents/")  # the patient's route: break-the-glass offered
        assert (listed.status_code, listed.json()["code"]) == (403, code), username
        # The document's own route answers exactly as for an id that does not exist: its existence is not revealed.
        existing = client.get(f"{API}documents/{document['id']}/content/")
        missing = client.get(f"{API}documents/{document['id'] + 1000}/content/")
        assert (existing.status_code, existing.json()) == (missing.status_code, missing.json()), username
        assert (existing.status_code, existing.json()["code"]) == (404, "not_found"), username
        assert [row[2] for row in audit.rows()] == ["denied"] * 3, username


def test_tampered_or_missing_file_is_not_served(dr, chart, store) -> None:
    document = upload(dr, chart.pk, PDF, "a.pdf", "application/pdf").json()
    (path,) = stored_files(store)
    path.write_bytes(PDF.replace(b"Catalog", b"Catalof"))
    audit = Audit()
    tampered = dr.get(f"{API}documents/{document['id']}/content/")
    assert (tampered.status_code, tampered.json()["code"]) == (500, "document_content_unavailable")
    path.unlink()
    missing = dr.get(f"{API}documents/{document['id']}/content/")
    assert missing.status_code == 500
    assert audit.rows() == []


def test_postgresql_keeps_documents_and_their_files_fixed(dr, chart) -> None:
    document = upload(dr, chart.pk, PDF, "a.pdf", "application/pdf").json()
    for sql in (
        "DELETE FROM ehr_documentreference WHERE id = %s",
        "UPDATE ehr_documentreference SET storage_key = repeat('a', 64) WHERE id = %s",
        "UPDATE ehr_documentreference SET sha256 = repeat('b', 64) WHERE id = %s",
        "DELETE FROM ehr_documentreferenceversion WHERE record_id = %s",
        "UPDATE ehr_documentreferenceversion SET reason = 'x' WHERE record_id = %s",
    ):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [document["id"]])
    assert DocumentReference.objects.get(pk=document["id"]).sha256 == hashlib.sha256(PDF).hexdigest()


def test_file_names_are_stored_without_paths_and_never_used_for_storage(dr, chart, store) -> None:
    response = upload(dr, chart.pk, PDF, "..\\..\\etc/pass\x07wd.pdf", "application/pdf")
    assert response.status_code == 201, response.json()
    assert response.json()["original_filename"] == "passwd.pdf"
    (path,) = stored_files(store)
    assert "passwd" not in str(path)
    assert path.parent.parent == store


def test_list_is_a_fixed_number_of_queries(dr, chart) -> None:
    from django.test.utils import CaptureQueriesContext

    def measure() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert dr.get(f"{API}patients/{chart.pk}/documents/").status_code == 200
        return len(ctx.captured_queries)

    upload(dr, chart.pk, PDF, "a.pdf", "application/pdf")
    few = measure()
    for i in range(4):
        upload(dr, chart.pk, PDF, f"{i}.pdf", "application/pdf")
    assert measure() == few
