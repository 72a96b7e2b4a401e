"""Integrity of the clinical record in PostgreSQL, also against raw SQL:

- version histories and note addenda are append-only (UPDATE and DELETE rejected);
- clinical rows are never deleted (entered-in-error instead);
- a signed note's content, author, encounter and signature never change, and it never returns to draft (only its
  status may move on to ``amended``, with its version).
"""

from django.db import migrations

APPEND_ONLY = [
    "ehr_encounterversion",
    "ehr_clinicalnoteversion",
    "ehr_noteaddendum",
    "ehr_conditionversion",
    "ehr_allergyintoleranceversion",
    "ehr_medicationstatementversion",
    "ehr_observationversion",
]
NO_DELETE = [
    "ehr_encounter",
    "ehr_clinicalnote",
    "ehr_condition",
    "ehr_allergyintolerance",
    "ehr_medicationstatement",
    "ehr_observation",
]

FUNCTIONS = """
CREATE OR REPLACE FUNCTION ehr_clinical_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'clinical history is append-only: % on % rejected', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE OR REPLACE FUNCTION ehr_clinical_no_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'clinical records are never deleted (mark them entered-in-error): DELETE on % rejected',
        TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END;
$$;

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
        OR NEW.patient_id IS DISTINCT FROM OLD.patient_id
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

TRIGGERS = "\n".join(
    [
        *(
            f"CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} "
            "FOR EACH ROW EXECUTE FUNCTION ehr_clinical_append_only();"
            for t in APPEND_ONLY
        ),
        *(
            f"CREATE TRIGGER {t}_no_delete BEFORE DELETE ON {t} FOR EACH ROW EXECUTE FUNCTION ehr_clinical_no_delete();"
            for t in NO_DELETE
        ),
        "CREATE TRIGGER ehr_clinicalnote_signed_immutable BEFORE UPDATE ON ehr_clinicalnote "
        "FOR EACH ROW EXECUTE FUNCTION ehr_signed_note_guard();",
    ]
)

DROP = "\n".join(
    [
        *(f"DROP TRIGGER IF EXISTS {t}_append_only ON {t};" for t in APPEND_ONLY),
        *(f"DROP TRIGGER IF EXISTS {t}_no_delete ON {t};" for t in NO_DELETE),
        "DROP TRIGGER IF EXISTS ehr_clinicalnote_signed_immutable ON ehr_clinicalnote;",
        "DROP FUNCTION IF EXISTS ehr_clinical_append_only();",
        "DROP FUNCTION IF EXISTS ehr_clinical_no_delete();",
        "DROP FUNCTION IF EXISTS ehr_signed_note_guard();",
    ]
)


class Migration(migrations.Migration):
    dependencies = [("ehr", "0007_clinical_record")]
    operations = [migrations.RunSQL(FUNCTIONS + TRIGGERS, DROP)]
