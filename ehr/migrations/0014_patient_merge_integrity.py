"""Integrity of patient merges in PostgreSQL, also against raw SQL:

- a row of a patient's compartment (encounters, notes, conditions, allergies, medications, observations, documents,
  care-team memberships) changes patient only by following a merge: its old patient is ``merged`` into the new one;
- nothing new is attached to a ``merged`` patient (INSERT, or a move onto one). The check locks the patient row
  ``FOR KEY SHARE`` (as a foreign-key check does), so a write racing a merge either finishes before the merge takes
  its ``FOR UPDATE`` lock — and is moved by it — or waits for the merge and then sees the record merged and fails.

The signed-note guard (0008) and the document guard (0010) used to reject every change of ``patient_id``; that rule
now lives in the compartment guard above, with the one exception a merge needs. Everything else they protect is
unchanged.
"""

from django.db import migrations

COMPARTMENT = [
    "ehr_encounter",
    "ehr_clinicalnote",
    "ehr_condition",
    "ehr_allergyintolerance",
    "ehr_medicationstatement",
    "ehr_observation",
    "ehr_documentreference",
    "ehr_careteammember",
]

COMPARTMENT_GUARD = """
CREATE OR REPLACE FUNCTION ehr_patient_compartment_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    new_status text;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.patient_id IS NOT DISTINCT FROM OLD.patient_id THEN
        RETURN NEW;
    END IF;
    SELECT status INTO new_status FROM ehr_patient WHERE id = NEW.patient_id FOR KEY SHARE;
    IF new_status = 'merged' THEN
        RAISE EXCEPTION '%: patient % was merged into another record', TG_TABLE_NAME, NEW.patient_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'patient_not_merged';
    END IF;
    IF TG_OP = 'UPDATE' AND NOT EXISTS (
        SELECT 1 FROM ehr_patient p
        WHERE p.id = OLD.patient_id AND p.status = 'merged' AND p.merged_into_id = NEW.patient_id
    ) THEN
        RAISE EXCEPTION '% %: a row changes patient only when its patient is merged into the new one',
            TG_TABLE_NAME, OLD.id USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
"""

# 0008's function without the patient_id clause (now the compartment guard's).
SIGNED_NOTE_GUARD = """
CREATE OR REPLACE FUNCTION ehr_signed_note_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> 'draft' AND (
        NEW.status = 'draft'
        OR NEW.subjective IS DISTINCT FROM OLD.subjective
        OR NEW.objective IS DISTINCT FROM OLD.objective
        OR NEW.assessment IS DISTINCT FROM OLD.assessment
        OR NEW.plan IS DISTINCT FROM OLD.plan
        OR NEW.author_id IS DISTINCT FROM OLD.author_id
        OR NEW.encounter_id IS DISTINCT FROM OLD.encounter_id
        OR NEW.signed_at IS DISTINCT FROM OLD.signed_at
        OR NEW.signed_by_id IS DISTINCT FROM OLD.signed_by_id
        OR NEW.created_at IS DISTINCT FROM OLD.created_at
    ) THEN
        RAISE EXCEPTION 'note % is signed and immutable: add an addendum instead', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
"""

# 0010's function without the patient_id clause (now the compartment guard's).
DOCUMENT_GUARD = """
CREATE OR REPLACE FUNCTION ehr_document_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (
        NEW.storage_key IS DISTINCT FROM OLD.storage_key
        OR NEW.sha256 IS DISTINCT FROM OLD.sha256
        OR NEW.size_bytes IS DISTINCT FROM OLD.size_bytes
        OR NEW.content_type IS DISTINCT FROM OLD.content_type
        OR NEW.uploaded_by_id IS DISTINCT FROM OLD.uploaded_by_id
        OR NEW.created_at IS DISTINCT FROM OLD.created_at
    ) THEN
        RAISE EXCEPTION 'document %: the stored file and its owner never change', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.encounter_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM ehr_encounter e WHERE e.id = NEW.encounter_id AND e.patient_id = NEW.patient_id
    ) THEN
        RAISE EXCEPTION 'document encounter % is not an encounter of the same patient', NEW.encounter_id
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'document_encounter_same_patient';
    END IF;
    RETURN NEW;
END;
$$;
"""

# The functions as 0008 and 0010 left them, for reversing.
OLD_SIGNED_NOTE_GUARD = SIGNED_NOTE_GUARD.replace(
    "OR NEW.encounter_id IS DISTINCT FROM OLD.encounter_id\n",
    "OR NEW.encounter_id IS DISTINCT FROM OLD.encounter_id\n        OR NEW.patient_id IS DISTINCT FROM OLD.patient_id\n",
)
OLD_DOCUMENT_GUARD = DOCUMENT_GUARD.replace(
    "OR NEW.content_type IS DISTINCT FROM OLD.content_type\n",
    "OR NEW.content_type IS DISTINCT FROM OLD.content_type\n        OR NEW.patient_id IS DISTINCT FROM OLD.patient_id\n",
)
assert OLD_SIGNED_NOTE_GUARD != SIGNED_NOTE_GUARD
assert OLD_DOCUMENT_GUARD != DOCUMENT_GUARD

TRIGGERS = "\n".join(
    f"CREATE TRIGGER {t}_patient_guard BEFORE INSERT OR UPDATE OF patient_id ON {t} "
    "FOR EACH ROW EXECUTE FUNCTION ehr_patient_compartment_guard();"
    for t in COMPARTMENT
)
DROP = "\n".join(
    [
        *(f"DROP TRIGGER IF EXISTS {t}_patient_guard ON {t};" for t in COMPARTMENT),
        "DROP FUNCTION IF EXISTS ehr_patient_compartment_guard();",
    ]
)


class Migration(migrations.Migration):
    dependencies = [("ehr", "0013_patient_merged_status")]
    operations = [
        migrations.RunSQL(
            COMPARTMENT_GUARD + TRIGGERS + SIGNED_NOTE_GUARD + DOCUMENT_GUARD,
            DROP + OLD_SIGNED_NOTE_GUARD + OLD_DOCUMENT_GUARD,
        )
    ]
