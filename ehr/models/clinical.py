"""The clinical record: encounters, SOAP notes with addenda, conditions, allergies, medications and observations.

FHIR-aligned names and status codes. Writes go through ``ehr.services.clinical`` only. Every versioned row follows
the Patient pattern: the current row carries ``version`` (1, +1 per change) and each change appends a row to its
``*Version`` history table (snapshot, changed fields, actor, reason) in the same transaction. History tables,
addenda and signed notes are protected by PostgreSQL triggers (migration 0008); nothing here is ever deleted:
records made by mistake are marked ``entered-in-error``.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone as dj_timezone

from ehr.models.identity import Location
from ehr.models.patient import Patient


class ClinicalVersion(models.Model):
    """One version of a clinical record: the snapshot after the change, what changed, who, why and when.
    Append-only (PostgreSQL trigger). Concrete subclasses add ``record`` (the FK to the versioned row)."""

    version = models.PositiveIntegerField()
    data = models.JSONField()
    changed_fields = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField()
    recorded_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.pk} v{self.version}"


def _version_constraints(prefix: str) -> list[models.BaseConstraint]:
    return [
        models.UniqueConstraint(fields=["record", "version"], name=f"{prefix}_version_unique"),
        models.CheckConstraint(condition=models.Q(version__gte=1), name=f"{prefix}_version_positive"),
    ]


# --- Encounter ----------------------------------------------------------------------------------------------------


class EncounterModality(models.TextChoices):
    IN_PERSON = "in-person", "In person"
    VIRTUAL = "virtual", "Virtual"


class EncounterStatus(models.TextChoices):
    """FHIR encounter-status (subset). Changed only by the transition function in ``ehr.services.clinical``."""

    PLANNED = "planned", "Planned"
    IN_PROGRESS = "in-progress", "In progress"
    FINISHED = "finished", "Finished"
    CANCELLED = "cancelled", "Cancelled"
    ENTERED_IN_ERROR = "entered-in-error", "Entered in error"


class Encounter(models.Model):
    """An interaction between a patient and a practitioner at a location (a clinic, physical or virtual).

    A booked visit is a ``planned`` encounter with its ``planned_start``/``planned_end`` (set by scheduling through
    ``encounter_plan``); ``period_*`` is what actually happened. ``appointment_id`` (FHIR ``Encounter.appointment``)
    is the id of the scheduling appointment the visit was booked as: a plain id, not a foreign key (ehr depends on
    no other app), set once when the encounter is planned and never changed; at most one encounter per appointment.
    The appointment owns the booking: the chart cancels such a visit by cancelling the appointment.

    Invariants (CHECK): known status and modality; ``period_end >= period_start``; a finished encounter has its end
    and ``duration_seconds``; the planned period is both-or-neither with ``planned_end > planned_start``, and a
    planned encounter has one. Status changes only through ``encounter_transition``'s table.
    """

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="encounters")
    practitioner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="encounters")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="encounters")
    modality = models.CharField(max_length=10, choices=EncounterModality.choices)
    status = models.CharField(max_length=20, choices=EncounterStatus.choices, default=EncounterStatus.PLANNED)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True)
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    planned_start = models.DateTimeField(null=True, blank=True)
    planned_end = models.DateTimeField(null=True, blank=True)
    appointment_id = models.BigIntegerField(
        null=True, blank=True, help_text="The scheduling appointment this visit was booked as (FHIR appointment)"
    )
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=dj_timezone.now)
    updated_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["patient", "-period_start"], name="encounter_patient_start"),
            models.Index(fields=["location", "patient"], name="encounter_location_patient"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(version__gte=1), name="encounter_version_positive"),
            models.CheckConstraint(
                condition=models.Q(status__in=EncounterStatus.values), name="encounter_status_known"
            ),
            models.CheckConstraint(
                condition=models.Q(modality__in=EncounterModality.values), name="encounter_modality_known"
            ),
            models.CheckConstraint(
                condition=models.Q(period_end__isnull=True)
                | models.Q(period_start__isnull=False, period_end__gte=models.F("period_start")),
                name="encounter_end_after_start",
            ),
            models.CheckConstraint(
                condition=~models.Q(status=EncounterStatus.FINISHED)
                | models.Q(period_end__isnull=False, duration_seconds__isnull=False),
                name="encounter_finished_has_end",
            ),
            models.CheckConstraint(
                condition=models.Q(planned_start__isnull=True, planned_end__isnull=True)
                | models.Q(planned_start__isnull=False, planned_end__gt=models.F("planned_start")),
                name="encounter_planned_end_after_start",
            ),
            models.CheckConstraint(
                condition=~models.Q(status=EncounterStatus.PLANNED) | models.Q(planned_start__isnull=False),
                name="encounter_planned_has_period",
            ),
            models.UniqueConstraint(fields=["appointment_id"], name="encounter_one_per_appointment"),
            models.CheckConstraint(
                condition=models.Q(appointment_id__isnull=True) | models.Q(appointment_id__gte=1),
                name="encounter_appointment_id_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"encounter {self.pk}"


class EncounterVersion(ClinicalVersion):
    record = models.ForeignKey(Encounter, on_delete=models.PROTECT, related_name="versions")

    class Meta:
        constraints = _version_constraints("encounterversion")


# --- Clinical notes -------------------------------------------------------------------------------------------------


class NoteStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SIGNED = "signed", "Signed"
    AMENDED = "amended", "Amended (has addenda)"


NOTE_SECTIONS: tuple[str, ...] = ("subjective", "objective", "assessment", "plan")


class ClinicalNote(models.Model):
    """A SOAP note of an encounter. ``draft`` (autosaved, versioned, editable by its author only) -> ``signed``
    (by its author, a practitioner) -> ``amended`` (once it has an addendum).

    Once signed the content is immutable: a PostgreSQL trigger rejects any change to the sections, author, encounter
    or signature of a signed note, any return to draft, and every DELETE (migration 0008). Corrections are addenda.
    ``patient`` repeats ``encounter.patient`` so chart queries need no join; the service sets it from the encounter.
    """

    encounter = models.ForeignKey(Encounter, on_delete=models.PROTECT, related_name="notes")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="notes")
    subjective = models.TextField(blank=True)
    objective = models.TextField(blank=True)
    assessment = models.TextField(blank=True)
    plan = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=NoteStatus.choices, default=NoteStatus.DRAFT)
    signed_at = models.DateTimeField(null=True, blank=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=dj_timezone.now)
    updated_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        indexes = [models.Index(fields=["encounter", "created_at"], name="note_encounter_created")]
        constraints = [
            models.CheckConstraint(condition=models.Q(version__gte=1), name="note_version_positive"),
            models.CheckConstraint(condition=models.Q(status__in=NoteStatus.values), name="note_status_known"),
            models.CheckConstraint(
                condition=models.Q(status=NoteStatus.DRAFT, signed_at__isnull=True, signed_by__isnull=True)
                | (~models.Q(status=NoteStatus.DRAFT) & models.Q(signed_at__isnull=False, signed_by__isnull=False)),
                name="note_signature_iff_signed",
            ),
        ]

    def __str__(self) -> str:
        return f"note {self.pk}"  # never the content


class ClinicalNoteVersion(ClinicalVersion):
    record = models.ForeignKey(ClinicalNote, on_delete=models.PROTECT, related_name="versions")

    class Meta:
        constraints = _version_constraints("clinicalnoteversion")


class NoteAddendum(models.Model):
    """A correction or addition to a signed note, by any clinician who may write the record. Append-only
    (PostgreSQL trigger rejects UPDATE and DELETE)."""

    note = models.ForeignKey(ClinicalNote, on_delete=models.PROTECT, related_name="addenda")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.TextField()
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~models.Q(text=""), name="addendum_text_not_empty"),
        ]

    def __str__(self) -> str:
        return f"addendum {self.pk}"


# --- Conditions (problem list) ----------------------------------------------------------------------------------


class ConditionClinicalStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    INACTIVE = "inactive", "Inactive"
    RESOLVED = "resolved", "Resolved"


class VerificationStatus(models.TextChoices):
    """FHIR condition/allergy verification status (subset); ``entered-in-error`` replaces deletion."""

    CONFIRMED = "confirmed", "Confirmed"
    PROVISIONAL = "provisional", "Provisional"
    REFUTED = "refuted", "Refuted"
    ENTERED_IN_ERROR = "entered-in-error", "Entered in error"


class Condition(models.Model):
    """A problem on the patient's problem list, coded in ICD-10-CM (validated by ``ehr.codes``; ``code_display`` is
    the library's description). Versioned (``ConditionVersion``)."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="conditions")
    encounter = models.ForeignKey(Encounter, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    code = models.CharField(max_length=10, help_text="ICD-10-CM, with its dot (E11.9)")
    code_display = models.CharField(max_length=300)
    clinical_status = models.CharField(
        max_length=10, choices=ConditionClinicalStatus.choices, default=ConditionClinicalStatus.ACTIVE
    )
    verification_status = models.CharField(
        max_length=20, choices=VerificationStatus.choices, default=VerificationStatus.CONFIRMED
    )
    onset_date = models.DateField(null=True, blank=True)
    abatement_date = models.DateField(null=True, blank=True)
    note = models.TextField(blank=True)
    recorder = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=dj_timezone.now)
    updated_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        indexes = [models.Index(fields=["patient", "clinical_status"], name="condition_patient_status")]
        constraints = [
            models.CheckConstraint(condition=models.Q(version__gte=1), name="condition_version_positive"),
            models.CheckConstraint(
                condition=models.Q(clinical_status__in=ConditionClinicalStatus.values),
                name="condition_clinical_status_known",
            ),
            models.CheckConstraint(
                condition=models.Q(verification_status__in=VerificationStatus.values),
                name="condition_verification_known",
            ),
            models.CheckConstraint(
                condition=models.Q(abatement_date__isnull=True)
                | models.Q(onset_date__isnull=True)
                | models.Q(abatement_date__gte=models.F("onset_date")),
                name="condition_abatement_after_onset",
            ),
        ]

    def __str__(self) -> str:
        return f"condition {self.pk}"


class ConditionVersion(ClinicalVersion):
    record = models.ForeignKey(Condition, on_delete=models.PROTECT, related_name="versions")

    class Meta:
        constraints = _version_constraints("conditionversion")


# --- Allergies and intolerances -------------------------------------------------------------------------------------


class AllergyCriticality(models.TextChoices):
    LOW = "low", "Low risk"
    HIGH = "high", "High risk"
    UNABLE_TO_ASSESS = "unable-to-assess", "Unable to assess"


class AllergyIntolerance(models.Model):
    """A substance the patient reacts to, with criticality and reaction. Versioned (``AllergyIntoleranceVersion``).
    ``substance_code`` is optional (e.g. an RxNorm or SNOMED CT code as text; ``substance_system`` names it)."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="allergies")
    substance_text = models.CharField(max_length=200)
    substance_code = models.CharField(max_length=40, blank=True)
    substance_system = models.CharField(max_length=100, blank=True)
    criticality = models.CharField(max_length=20, choices=AllergyCriticality.choices)
    reaction = models.TextField(blank=True)
    clinical_status = models.CharField(
        max_length=10, choices=ConditionClinicalStatus.choices, default=ConditionClinicalStatus.ACTIVE
    )
    verification_status = models.CharField(
        max_length=20, choices=VerificationStatus.choices, default=VerificationStatus.CONFIRMED
    )
    recorder = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=dj_timezone.now)
    updated_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        indexes = [models.Index(fields=["patient", "clinical_status"], name="allergy_patient_status")]
        constraints = [
            models.CheckConstraint(condition=models.Q(version__gte=1), name="allergy_version_positive"),
            models.CheckConstraint(
                condition=models.Q(criticality__in=AllergyCriticality.values), name="allergy_criticality_known"
            ),
            models.CheckConstraint(
                condition=models.Q(clinical_status__in=ConditionClinicalStatus.values),
                name="allergy_clinical_status_known",
            ),
            models.CheckConstraint(
                condition=models.Q(verification_status__in=VerificationStatus.values),
                name="allergy_verification_known",
            ),
        ]

    def __str__(self) -> str:
        return f"allergy {self.pk}"


class AllergyIntoleranceVersion(ClinicalVersion):
    record = models.ForeignKey(AllergyIntolerance, on_delete=models.PROTECT, related_name="versions")

    class Meta:
        constraints = _version_constraints("allergyversion")


# --- Medications ------------------------------------------------------------------------------------------------


class MedicationStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    STOPPED = "stopped", "Stopped"
    ENTERED_IN_ERROR = "entered-in-error", "Entered in error"


class MedicationStatement(models.Model):
    """A medication the patient takes or was prescribed (``prescriber``), with dose, route and frequency as text and
    an optional RxNorm concept id. Versioned (``MedicationStatementVersion``)."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="medications")
    encounter = models.ForeignKey(Encounter, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    medication_text = models.CharField(max_length=200)
    rxnorm_code = models.CharField(max_length=10, blank=True)
    dose = models.CharField(max_length=100, blank=True)
    route = models.CharField(max_length=50, blank=True)
    frequency = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=20, choices=MedicationStatus.choices, default=MedicationStatus.ACTIVE)
    prescriber = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=dj_timezone.now)
    updated_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        indexes = [models.Index(fields=["patient", "status"], name="medication_patient_status")]
        constraints = [
            models.CheckConstraint(condition=models.Q(version__gte=1), name="medication_version_positive"),
            models.CheckConstraint(
                condition=models.Q(status__in=MedicationStatus.values), name="medication_status_known"
            ),
            models.CheckConstraint(
                condition=models.Q(rxnorm_code="") | models.Q(rxnorm_code__regex=r"^[0-9]{1,10}$"),
                name="medication_rxnorm_format",
            ),
        ]

    def __str__(self) -> str:
        return f"medication {self.pk}"


class MedicationStatementVersion(ClinicalVersion):
    record = models.ForeignKey(MedicationStatement, on_delete=models.PROTECT, related_name="versions")

    class Meta:
        constraints = _version_constraints("medicationversion")


# --- Observations -------------------------------------------------------------------------------------------------


class ObservationStatus(models.TextChoices):
    FINAL = "final", "Final"
    AMENDED = "amended", "Amended"
    ENTERED_IN_ERROR = "entered-in-error", "Entered in error"


class Observation(models.Model):
    """A vital sign or lab result: a LOINC code from the curated table in ``ehr.codes``, a value within that code's
    physiological bounds, in the code's UCUM unit. Append-mostly: a correction is a new version (status
    ``amended``), a mistake is ``entered-in-error``; history in ``ObservationVersion``."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="observations")
    encounter = models.ForeignKey(Encounter, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    code = models.CharField(max_length=10, help_text="LOINC")
    code_display = models.CharField(max_length=200)
    category = models.CharField(max_length=20)
    value = models.DecimalField(max_digits=10, decimal_places=3)
    unit = models.CharField(max_length=20, help_text="UCUM")
    effective_at = models.DateTimeField()
    status = models.CharField(max_length=20, choices=ObservationStatus.choices, default=ObservationStatus.FINAL)
    performer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=dj_timezone.now)
    updated_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["patient", "code", "-effective_at"], name="observation_patient_code_time"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(version__gte=1), name="observation_version_positive"),
            models.CheckConstraint(
                condition=models.Q(status__in=ObservationStatus.values), name="observation_status_known"
            ),
        ]

    def __str__(self) -> str:
        return f"observation {self.pk}"


class ObservationVersion(ClinicalVersion):
    record = models.ForeignKey(Observation, on_delete=models.PROTECT, related_name="versions")

    class Meta:
        constraints = _version_constraints("observationversion")
