"""The Patient record and its append-only version history.

Writes go through ``ehr.services.patients`` only: it assigns the MRN, encrypts identifiers, bumps ``version`` under
a row lock and appends a ``PatientVersion`` in the same transaction. Nothing here is ever deleted; a record
registered by mistake is marked ``entered-in-error``, a duplicate is ``merged`` into the surviving record.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models.functions import Cast, Upper
from django.utils import timezone as dj_timezone

# Created by migration 0004; the service draws MRNs from it so they never repeat, even across rolled-back inserts.
MRN_SEQUENCE = "ehr_patient_mrn_seq"
MRN_PATTERN = r"^MRN[0-9]{8}$"


class AdministrativeGender(models.TextChoices):
    """FHIR administrative-gender (http://hl7.org/fhir/administrative-gender)."""

    MALE = "male", "Male"
    FEMALE = "female", "Female"
    OTHER = "other", "Other"
    UNKNOWN = "unknown", "Unknown"


class PatientStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    ENTERED_IN_ERROR = "entered-in-error", "Entered in error"
    # A duplicate folded into another record (FHIR Patient.link "replaced-by" -> ``merged_into``); terminal.
    MERGED = "merged", "Merged into another record"


# The demographic fields a version snapshot records and an update may change (identifiers are handled apart).
DEMOGRAPHIC_FIELDS: tuple[str, ...] = (
    "given_name",
    "family_name",
    "birth_date",
    "sex",
    "gender_identity",
    "phone",
    "email",
    "address_line",
    "city",
    "postal_code",
    "country",
    "preferred_language",
    "emergency_contact_name",
    "emergency_contact_phone",
)
IDENTIFIER_FIELDS: tuple[str, ...] = ("national_id", "insurance_member_id")


class Patient(models.Model):
    """A person receiving care. ``user`` is their portal login, when they have one.

    Invariants: ``version`` starts at 1 and grows by one per change (each change has a ``PatientVersion`` row);
    ``status`` and ``sex`` hold known codes and the MRN its format (CHECK constraints); a ``merged`` record names
    the record it was merged into (``merged_into``, never itself) and no other record does (CHECK); once merged,
    PostgreSQL refuses new clinical rows for it (migration 0014, ``patient_merge``). National and insurance
    identifiers are stored only as Fernet tokens (``*_encrypted``, see ``ehr.crypto``) plus a keyed hash of the
    normalised value for exact search; the plaintext never reaches the database.
    """

    mrn = models.CharField("MRN", max_length=11, unique=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="patient_record"
    )
    given_name = models.CharField(max_length=100)
    family_name = models.CharField(max_length=100)
    birth_date = models.DateField()
    sex = models.CharField(max_length=10, choices=AdministrativeGender.choices)
    gender_identity = models.CharField(max_length=100, blank=True)
    phone = models.CharField(max_length=20, blank=True, help_text="Normalised: digits with an optional leading +.")
    email = models.EmailField(max_length=254, blank=True)
    address_line = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2")
    preferred_language = models.CharField(max_length=35, default="en", help_text="BCP 47 language tag")
    emergency_contact_name = models.CharField(max_length=200, blank=True)
    emergency_contact_phone = models.CharField(max_length=20, blank=True)
    national_id_encrypted = models.TextField(blank=True)
    national_id_hash = models.CharField(max_length=64, blank=True, db_index=True)
    insurance_member_id_encrypted = models.TextField(blank=True)
    insurance_member_id_hash = models.CharField(max_length=64, blank=True, db_index=True)
    status = models.CharField(max_length=20, choices=PatientStatus.choices, default=PatientStatus.ACTIVE)
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="merged_from",
        help_text="The surviving record this duplicate was merged into (FHIR Patient.link replaced-by).",
    )
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=dj_timezone.now)
    updated_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        indexes = [
            GinIndex(fields=["family_name"], opclasses=["gin_trgm_ops"], name="patient_family_trgm"),
            GinIndex(fields=["given_name"], opclasses=["gin_trgm_ops"], name="patient_given_trgm"),
            # Case-insensitive substring search (`icontains` is UPPER(col::text) LIKE ...): without these the name
            # search scanned every patient (p50 98 ms at 100k patients, docs/benchmarks.md).
            GinIndex(
                OpClass(Upper(Cast("family_name", models.TextField())), name="gin_trgm_ops"),
                name="patient_family_upper_trgm",
            ),
            GinIndex(
                OpClass(Upper(Cast("given_name", models.TextField())), name="gin_trgm_ops"),
                name="patient_given_upper_trgm",
            ),
            models.Index(fields=["birth_date"], name="patient_birth_date"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(version__gte=1), name="patient_version_positive"),
            models.CheckConstraint(condition=models.Q(status__in=PatientStatus.values), name="patient_status_known"),
            models.CheckConstraint(condition=models.Q(sex__in=AdministrativeGender.values), name="patient_sex_known"),
            models.CheckConstraint(condition=models.Q(mrn__regex=MRN_PATTERN), name="patient_mrn_format"),
            # merged <=> merged_into set; never into itself.
            models.CheckConstraint(
                condition=models.Q(status=PatientStatus.MERGED, merged_into__isnull=False)
                | (~models.Q(status=PatientStatus.MERGED) & models.Q(merged_into__isnull=True)),
                name="patient_merged_iff_merged_into",
            ),
            models.CheckConstraint(
                condition=~models.Q(merged_into=models.F("id")), name="patient_not_merged_into_itself"
            ),
        ]

    def __str__(self) -> str:
        return self.mrn  # never the name: str() ends up in logs and admin messages

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.family_name}".strip()


class PatientVersion(models.Model):
    """One row per version of a Patient: who changed what, when and why. Append-only (a PostgreSQL trigger rejects
    UPDATE and DELETE, migration 0005).

    ``data`` is the demographic snapshot after the change; identifiers appear only as their keyed hash and masked
    last four characters, never as plaintext or ciphertext.
    """

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    data = models.JSONField()
    changed_fields = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    recorded_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["patient", "version"], name="patient_version_unique"),
            models.CheckConstraint(condition=models.Q(version__gte=1), name="patientversion_version_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.patient_id} v{self.version}"
