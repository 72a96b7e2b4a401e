"""Integrity of documents in PostgreSQL, also against raw SQL:

- documents are never deleted (entered-in-error instead) and their history is append-only (reusing 0008's
  functions);
- the columns that tie a row to its stored file and its owner (storage key, SHA-256, size, content type, patient,
  uploader, creation time) never change;
- a document's encounter, when given, belongs to the same patient (raised as foreign_key_violation, so the
  service turns it into a 400 and removes the file it had already placed).
"""

from django.db import migrations

FUNCTIONS = """
CREATE OR REPLACE FUNCTION ehr_document_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (
        NEW.storage_key IS DISTINCT FROM OLD.storage_key
        OR NEW.sha256 IS DISTINCT FROM OLD.sha256
        OR NEW.size_bytes IS DISTINCT FROM OLD.size_bytes
        OR NEW.content_type IS DISTINCT FROM OLD.content_type
        OR NEW.patient_id IS DISTINCT FROM OLD.patient_id
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

TRIGGERS = """
CREATE TRIGGER ehr_documentreference_no_delete BEFORE DELETE ON ehr_documentreference
    FOR EACH ROW EXECUTE FUNCTION ehr_clinical_no_delete();
CREATE TRIGGER ehr_documentreference_guard BEFORE INSERT OR UPDATE ON ehr_documentreference
    FOR EACH ROW EXECUTE FUNCTION ehr_document_guard();
CREATE TRIGGER ehr_documentreferenceversion_append_only BEFORE UPDATE OR DELETE ON ehr_documentreferenceversion
    FOR EACH ROW EXECUTE FUNCTION ehr_clinical_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS ehr_documentreferenceversion_append_only ON ehr_documentreferenceversion;
DROP TRIGGER IF EXISTS ehr_documentreference_guard ON ehr_documentreference;
DROP TRIGGER IF EXISTS ehr_documentreference_no_delete ON ehr_documentreference;
DROP FUNCTION IF EXISTS ehr_document_guard();
"""


class Migration(migrations.Migration):
    dependencies = [("ehr", "0009_documents")]
    operations = [migrations.RunSQL(FUNCTIONS + TRIGGERS, DROP)]
