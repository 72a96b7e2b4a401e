"""Documents of the clinical record (FHIR DocumentReference): uploaded files with their metadata.

The bytes live outside the database, under ``settings.DOCUMENT_STORAGE_ROOT``, at a path derived only from
``storage_key`` (random, never from the filename or any PHI); the row holds what is needed to serve and verify them
(sniffed content type, size, SHA-256). Writes go through ``ehr.services.documents`` only; the bytes are served only
by the access-checked, audited content endpoint, never as static or media files. Nothing is deleted: a document
uploaded by mistake is marked ``entered-in-error`` (file and row kept). Versioned like the rest of the clinical
record (``DocumentReferenceVersion``); PostgreSQL triggers (migration 0010) reject DELETE on documents, any
change to the stored-file columns, UPDATE/DELETE of the history, and an encounter of another patient.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone as dj_timezone

from ehr.models.clinical import ClinicalVersion, Encounter, _version_constraints
from ehr.models.patient import Patient


class DocumentType(models.TextChoices):
    """What the document is (a FHIR-ish DocumentReference category)."""

    CLINICAL_NOTE = "clinical-note", "Clinical note"
    LAB_REPORT = "lab-report", "Lab report"
    IMAGING = "imaging", "Imaging"
    REFERRAL = "referral", "Referral"
    CONSENT = "consent", "Consent"
    ID_DOCUMENT = "id-document", "Identity document"
    OTHER = "other", "Other"


class DocumentStatus(models.TextChoices):
    """FHIR document-reference-status (subset). Changed only by the transition table in ``ehr.services.documents``."""

    CURRENT = "current", "Current"
    ENTERED_IN_ERROR = "entered-in-error", "Entered in error"


class DocumentContentType(models.TextChoices):
    """The content types we accept, as decided by sniffing the bytes (never taken from the client)."""

    PDF = "application/pdf", "PDF"
    PNG = "image/png", "PNG image"
    JPEG = "image/jpeg", "JPEG image"
    TEXT = "text/plain; charset=utf-8", "Plain text (UTF-8)"


class DocumentReference(models.Model):
    """One uploaded file of a patient's record, with the metadata to serve and verify it.

    Invariants (CHECK): known type, status and content type; ``size_bytes > 0``; ``sha256`` is 64 lower-case hex
    digits; ``storage_key`` is 64 lower-case hex digits (random) and unique; ``version >= 1``. Triggers: no DELETE;
    ``storage_key``, ``sha256``, ``size_bytes``, ``content_type`` and ``uploaded_by`` never change, ``patient`` only
    by a merge (0014); the encounter, when given, is the same patient's.
    """

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="documents")
    encounter = models.ForeignKey(Encounter, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    type = models.CharField(max_length=20, choices=DocumentType.choices)
    title = models.CharField(max_length=200)
    content_type = models.CharField(max_length=40, choices=DocumentContentType.choices)
    size_bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    storage_key = models.CharField(max_length=64, unique=True)
    original_filename = models.CharField(max_length=255)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=20, choices=DocumentStatus.choices, default=DocumentStatus.CURRENT)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=dj_timezone.now)
    updated_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        indexes = [models.Index(fields=["patient", "-created_at"], name="document_patient_created")]
        constraints = [
            models.CheckConstraint(condition=models.Q(version__gte=1), name="document_version_positive"),
            models.CheckConstraint(condition=models.Q(type__in=DocumentType.values), name="document_type_known"),
            models.CheckConstraint(condition=models.Q(status__in=DocumentStatus.values), name="document_status_known"),
            models.CheckConstraint(
                condition=models.Q(content_type__in=DocumentContentType.values), name="document_content_type_known"
            ),
            models.CheckConstraint(condition=models.Q(size_bytes__gt=0), name="document_not_empty"),
            models.CheckConstraint(condition=models.Q(sha256__regex=r"^[0-9a-f]{64}$"), name="document_sha256_hex"),
            models.CheckConstraint(
                condition=models.Q(storage_key__regex=r"^[0-9a-f]{64}$"), name="document_storage_key_random_hex"
            ),
            models.CheckConstraint(condition=~models.Q(title=""), name="document_title_not_empty"),
        ]

    def __str__(self) -> str:
        return f"document {self.pk}"  # never the title or file name


class DocumentReferenceVersion(ClinicalVersion):
    record = models.ForeignKey(DocumentReference, on_delete=models.PROTECT, related_name="versions")

    class Meta:
        constraints = _version_constraints("documentversion")
