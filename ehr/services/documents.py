"""Documents of the clinical record: receiving an upload, storing it outside the database, marking it entered in error.

Storage (docs/documents.md): the bytes live under ``settings.DOCUMENT_STORAGE_ROOT`` at ``<key[:2]>/<key>``, where
``key`` is 32 random bytes in hex, never derived from the filename or any PHI. An upload is streamed by the API into
``IncomingDocument`` (a private temp file under ``<root>/.incoming/``, hashed, counted and sniffed as it arrives,
stopped as soon as it passes ``DOCUMENT_MAX_BYTES``). ``document_upload`` then checks access and the bytes, and in one
transaction renames the temp file into place (after fsync; same file system, so the rename is atomic), inserts the
row, its first version and its audit row. If anything in that transaction fails, the placed file is removed before
the error propagates, so no failed upload leaves a file behind and no committed row lacks its file.

Callers: clinicians (``WRITE_CLINICAL``). Call these functions outside your own ``transaction.atomic()``: a denial's
audit row must survive, and a rollback of an outer transaction after ``document_upload`` returned would leave an
unreferenced file (harmless, random name, no row points at it); ``document_orphans_sweep`` (hourly, from beat)
removes such files once they are older than an hour.
"""

from __future__ import annotations

import codecs
import datetime
import hashlib
import logging
import os
import re
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from ehr.access import PatientAction
from ehr.dto import to_dto
from ehr.errors import ClinicalRecordNotFound, DocumentTooLarge, InvalidClinicalData, UnsupportedDocumentType
from ehr.models import (
    AuditAction,
    DocumentContentType,
    DocumentReference,
    DocumentReferenceVersion,
    DocumentStatus,
    DocumentType,
    Encounter,
    EncounterStatus,
    User,
)
from ehr.services.clinical._common import (
    Cleaner,
    audit,
    authorise_patient,
    authorise_record,
    refuse_merged_patient,
    require_reason,
    transition,
)
from ehr.versioning import lock_at_version, record_first_version, save_new_version, snapshot

KIND = "DocumentReference"
TITLE_MAX = 200
FILENAME_MAX = 255
# The one state machine of a document: a mistake is marked, never deleted; entered-in-error is terminal.
DOCUMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    DocumentStatus.CURRENT: frozenset({DocumentStatus.ENTERED_IN_ERROR}),
    DocumentStatus.ENTERED_IN_ERROR: frozenset(),
}
VERSIONED_FIELDS = ("type", "title", "encounter_id", "status")

# Magic bytes -> content type. Text has no magic: it is whatever decodes as UTF-8 and holds no NUL byte.
_MAGIC: tuple[tuple[bytes, DocumentContentType], ...] = (
    (b"%PDF-", DocumentContentType.PDF),
    (b"\x89PNG\r\n\x1a\n", DocumentContentType.PNG),
    (b"\xff\xd8\xff", DocumentContentType.JPEG),
)
_HEAD_BYTES = 8
_EXTENSIONS: dict[str, frozenset[str]] = {
    DocumentContentType.PDF: frozenset({".pdf"}),
    DocumentContentType.PNG: frozenset({".png"}),
    DocumentContentType.JPEG: frozenset({".jpg", ".jpeg"}),
    DocumentContentType.TEXT: frozenset({".txt", ".text"}),
}
_DECLARED: dict[str, frozenset[str]] = {
    DocumentContentType.PDF: frozenset({"application/pdf"}),
    DocumentContentType.PNG: frozenset({"image/png"}),
    DocumentContentType.JPEG: frozenset({"image/jpeg", "image/pjpeg"}),
    DocumentContentType.TEXT: frozenset({"text/plain"}),
}
# What a client sends when it does not know; anything else must agree with the bytes.
_UNDECLARED = frozenset({"", "application/octet-stream"})
_ENCOUNTER_CONSTRAINT = "document_encounter_same_patient"
_STORED_NAME = re.compile(r"[0-9a-f]{64}")
_FAN_OUT = re.compile(r"[0-9a-f]{2}")
_INCOMING_NAME = re.compile(r"[0-9a-f]{32}\.part")
SWEEP_BATCH = 1000

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DocumentRef:
    """A document's metadata (never its storage key). ``content_type`` is the sniffed one."""

    id: int
    patient_id: int
    encounter_id: int | None
    type: str
    title: str
    content_type: str
    size_bytes: int
    sha256: str
    original_filename: str
    uploaded_by_id: int
    uploaded_by_display_name: str
    status: str
    version: int
    created_at: datetime.datetime
    updated_at: datetime.datetime


def document_dto(row: DocumentReference) -> DocumentRef:
    return to_dto(DocumentRef, row)


# --- Storage -------------------------------------------------------------------------------------------------------


def storage_root() -> Path:
    return Path(settings.DOCUMENT_STORAGE_ROOT)


def stored_path(storage_key: str) -> Path:
    """Where a document's bytes live: derived from the random key only (two-character fan-out directory)."""
    if not re.fullmatch(r"[0-9a-f]{64}", storage_key):
        raise ValueError("not a storage key")
    return storage_root() / storage_key[:2] / storage_key


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def safe_filename(raw: str) -> str:
    """The client's file name without any directory part or control characters, at most 255 characters (keeping
    the extension). Stored and shown only through the API; never used to build a path."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in unicodedata.normalize("NFC", name) if unicodedata.category(ch)[0] != "C").strip()
    if name in (".", ".."):
        name = ""
    if len(name) > FILENAME_MAX:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: FILENAME_MAX - len(ext) - 1] + dot + ext) if dot and len(ext) < 16 else name[:FILENAME_MAX]
    return name


class IncomingDocument:
    """The bytes of one upload as they arrive: written to a private temp file under ``<root>/.incoming/`` (same file
    system as the store, so placing it is an atomic rename), hashed (SHA-256), counted and sniffed on the way.

    ``write`` raises ``DocumentTooLarge`` as soon as the total passes ``max_bytes`` (and discards what it had).
    ``discard()`` removes the temp file; it is safe to call more than once and after the file was placed.
    """

    def __init__(self, *, filename: str, declared_type: str, max_bytes: int | None = None) -> None:
        self.filename = safe_filename(filename)
        self.declared_type = declared_type.split(";", 1)[0].strip().lower()
        self.max_bytes = settings.DOCUMENT_MAX_BYTES if max_bytes is None else max_bytes
        self.size = 0
        self.head = b""
        self._sha = hashlib.sha256()
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._text = True
        incoming = storage_root() / ".incoming"
        incoming.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path: Path | None = incoming / f"{secrets.token_hex(16)}.part"
        self._file: IO[bytes] | None = open(  # noqa: SIM115 -- closed by finish()/discard(); spans many calls
            os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb"
        )

    def write(self, chunk: bytes) -> None:
        if self._file is None:
            raise ValueError("upload already finished")
        self.size += len(chunk)
        if self.size > self.max_bytes:
            self.discard()
            raise DocumentTooLarge(self.max_bytes)
        if len(self.head) < _HEAD_BYTES:
            self.head += chunk[: _HEAD_BYTES - len(self.head)]
        self._sha.update(chunk)
        if self._text:
            self._text = b"\x00" not in chunk and self._decodes(chunk, final=False)
        self._file.write(chunk)

    def _decodes(self, chunk: bytes, *, final: bool) -> bool:
        try:
            self._utf8.decode(chunk, final=final)
        except UnicodeDecodeError:
            return False
        return True

    def finish(self) -> None:
        """All bytes received: flush and fsync the temp file (so a crash after the rename cannot lose them)."""
        if self._file is None:
            return
        if self._text:
            self._text = self._decodes(b"", final=True)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    def sniffed_type(self) -> DocumentContentType | None:
        for magic, content_type in _MAGIC:
            if self.head.startswith(magic):
                return content_type
        return DocumentContentType.TEXT if self._text else None

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None


def _content_type(incoming: IncomingDocument) -> DocumentContentType:
    """The sniffed type, if the extension and the declared type agree with it; else ``UnsupportedDocumentType``."""
    if incoming.size == 0:
        raise InvalidClinicalData({"file": ["The file is empty."]})
    sniffed = incoming.sniffed_type()
    if sniffed is None:
        raise UnsupportedDocumentType("Only PDF, PNG, JPEG and plain UTF-8 text files can be uploaded.")
    extension = os.path.splitext(incoming.filename)[1].lower()
    if extension not in _EXTENSIONS[sniffed]:
        raise UnsupportedDocumentType(
            f"The file's name must end in {' or '.join(sorted(_EXTENSIONS[sniffed]))}: its content is {sniffed.label}."
        )
    if incoming.declared_type not in _UNDECLARED and incoming.declared_type not in _DECLARED[sniffed]:
        raise UnsupportedDocumentType(
            f"The file was sent as {incoming.declared_type}, but its content is {sniffed.label}."
        )
    return sniffed


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    clean = Cleaner()
    out = {
        "type": clean.choice("type", values.get("type"), [str(v) for v in DocumentType.values]),
        "title": clean.text("title", values.get("title"), max_length=TITLE_MAX, required=True),
        "encounter_id": clean.optional_id("encounter_id", values.get("encounter_id")),
    }
    clean.done()
    return out


def _check_encounter_status(patient_id: int, encounter_id: int | None) -> None:
    """A cancelled or entered-in-error encounter of this patient cannot carry documents. Whether the encounter is
    this patient's at all is decided by PostgreSQL (trigger ``document_encounter_same_patient``) at the insert."""
    if encounter_id is None:
        return
    status = Encounter.objects.filter(pk=encounter_id, patient_id=patient_id).values_list("status", flat=True).first()
    if status in (EncounterStatus.CANCELLED, EncounterStatus.ENTERED_IN_ERROR):
        raise InvalidClinicalData({"encounter_id": [f"The encounter is {status}."]})


def _is_encounter_violation(exc: IntegrityError) -> bool:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) == _ENCOUNTER_CONSTRAINT


# --- Services ------------------------------------------------------------------------------------------------------


def document_upload(
    *,
    actor: User,
    patient_id: int,
    incoming: IncomingDocument,
    type: str,
    title: str,
    encounter_id: int | None = None,
    request: HttpRequest | None = None,
) -> DocumentRef:
    """Store an uploaded document of a patient: the bytes under a random key, the row, version 1 and one audit row
    (``create`` ``DocumentReference``; detail: content type, size, version — never the title or file name).

    Raises ``AccessDenied``/``BreakGlassRequired`` (audited), ``PatientNotFound``, ``InvalidClinicalData`` (missing or
    bad fields, empty file, an encounter that is not this patient's or is cancelled), ``UnsupportedDocumentType``,
    ``PatientMerged`` (a merge of the patient committed between the access check and the insert). Whatever happens,
    the temp file is gone afterwards and a failed upload leaves no stored file.
    Callers: clinicians (``WRITE_CLINICAL``).
    """
    placed: Path | None = None
    try:
        authorise_patient(
            actor=actor, patient_id=patient_id, action=PatientAction.WRITE_CLINICAL, request=request, writing=True
        )
        cleaned = _clean({"type": type, "title": title, "encounter_id": encounter_id})
        incoming.finish()
        content_type = _content_type(incoming)
        _check_encounter_status(patient_id, cleaned["encounter_id"])
        if incoming.path is None:
            raise ValueError("upload already discarded")
        storage_key = secrets.token_hex(32)
        target = stored_path(storage_key)
        with refuse_merged_patient(patient_id), transaction.atomic():
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.replace(incoming.path, target)
            placed, incoming.path = target, None
            _fsync_dir(target.parent)
            now = timezone.now()
            row = DocumentReference(
                patient_id=patient_id,
                content_type=content_type,
                size_bytes=incoming.size,
                sha256=incoming.sha256,
                storage_key=storage_key,
                original_filename=incoming.filename,
                uploaded_by=actor,
                status=DocumentStatus.CURRENT,
                version=1,
                created_at=now,
                updated_at=now,
                **cleaned,
            )
            try:
                with transaction.atomic():
                    row.save(force_insert=True)
            except IntegrityError as exc:
                if _is_encounter_violation(exc):
                    message = "No encounter of this patient with this id."
                    raise InvalidClinicalData({"encounter_id": [message]}) from None
                raise
            record_first_version(DocumentReferenceVersion, row, fields=VERSIONED_FIELDS, actor=actor, reason="uploaded")
            audit(
                actor=actor,
                action=AuditAction.CREATE,
                entity_type=KIND,
                entity_id=row.pk,
                patient_id=patient_id,
                request=request,
                detail={
                    "fields": sorted(k for k, v in cleaned.items() if v not in (None, "")),
                    "content_type": content_type.value,
                    "size_bytes": incoming.size,
                    "version": 1,
                },
            )
    except BaseException:
        if placed is not None:
            placed.unlink(missing_ok=True)
        raise
    finally:
        incoming.discard()
    return document_dto(row)


def document_mark_entered_in_error(
    *, actor: User, document_id: int, expected_version: int, reason: str, request: HttpRequest | None = None
) -> DocumentRef:
    """Mark a document uploaded by mistake: a new version with status ``entered-in-error`` (row and file are kept;
    the default list hides it). ``VersionConflict`` when ``expected_version`` is stale; ``InvalidTransition`` when
    it already is. One audit row (``entered_in_error`` ``DocumentReference``). Callers: clinicians."""
    patient_id = authorise_record(
        actor=actor,
        model=DocumentReference,
        kind=KIND,
        record_id=document_id,
        action=PatientAction.WRITE_CLINICAL,
        request=request,
    )
    reason = require_reason(reason)
    with transaction.atomic():
        row = lock_at_version(
            DocumentReference.objects.select_related("uploaded_by"),
            document_id,
            expected_version,
            not_found=lambda: ClinicalRecordNotFound(KIND, document_id),
        )
        before = snapshot(row, VERSIONED_FIELDS)
        row.status = transition(KIND, DOCUMENT_TRANSITIONS, row.status, DocumentStatus.ENTERED_IN_ERROR)
        changed = save_new_version(
            DocumentReferenceVersion, row, fields=VERSIONED_FIELDS, before=before, actor=actor, reason=reason
        )
        audit(
            actor=actor,
            action=AuditAction.ENTERED_IN_ERROR,
            entity_type=KIND,
            entity_id=row.pk,
            patient_id=patient_id,
            request=request,
            detail={"fields": changed, "version": row.version},
        )
    return document_dto(row)


def _last_touched(entry: os.DirEntry[str]) -> datetime.datetime:
    """When the file was last written or renamed (the later of mtime and ctime: the rename that places an upload
    keeps the temp file's mtime but sets ctime), as an aware UTC instant."""
    info = entry.stat(follow_symlinks=False)
    return datetime.datetime.fromtimestamp(max(info.st_mtime, info.st_ctime), tz=datetime.UTC)


def _old_files(directory: Path, name: re.Pattern[str], cutoff: datetime.datetime) -> list[os.DirEntry[str]]:
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    return [
        e for e in entries if name.fullmatch(e.name) and e.is_file(follow_symlinks=False) and _last_touched(e) < cutoff
    ]


def _unlink(entry: os.DirEntry[str]) -> int:
    try:
        os.unlink(entry.path)
    except FileNotFoundError:
        return 0  # another sweeper got there first
    return 1


def document_orphans_sweep(*, older_than: datetime.timedelta = datetime.timedelta(hours=1)) -> int:
    """Remove stored files that no ``DocumentReference`` row points at, and abandoned upload temp files
    (``.incoming/*.part``), last touched more than ``older_than`` ago; returns how many files were removed.

    Such files are left by a process that died between placing an upload and committing its row (or by a caller
    whose outer transaction rolled back). A file younger than the cutoff is never touched, whether or not it has a
    row: its upload may still be in flight (placed, not yet committed). Only names the store itself makes are
    considered (``<2 hex>/<64 hex>``, ``.incoming/<32 hex>.part``); anything else under the root is left alone.
    Idempotent and safe to run concurrently with uploads and with itself. Nothing is audited: no row, so no record
    of a patient, is touched. Callers: ``ehr.tasks.documents_sweep`` (hourly, from beat), ``manage.py
    documents_sweep``.
    """
    if older_than < datetime.timedelta(0):
        raise ValueError("older_than must not be negative")
    cutoff = timezone.now() - older_than
    root = storage_root()
    removed = sum(_unlink(e) for e in _old_files(root / ".incoming", _INCOMING_NAME, cutoff))
    try:
        fan_out = sorted(e.path for e in os.scandir(root) if _FAN_OUT.fullmatch(e.name) and e.is_dir())
    except FileNotFoundError:
        fan_out = []
    for directory in fan_out:
        candidates = {e.name: e for e in _old_files(Path(directory), _STORED_NAME, cutoff)}
        keys = sorted(candidates)
        for start in range(0, len(keys), SWEEP_BATCH):
            batch = keys[start : start + SWEEP_BATCH]
            rows = DocumentReference.objects.filter(storage_key__in=batch)
            referenced = set(rows.values_list("storage_key", flat=True))
            removed += sum(_unlink(candidates[key]) for key in batch if key not in referenced)
    if removed:
        logger.info("document sweep removed %d unreferenced file(s)", removed)
    return removed
