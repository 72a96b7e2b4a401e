"""Make the patient version history append-only in PostgreSQL: UPDATE and DELETE are rejected, even in raw SQL."""

from django.db import migrations

GUARD = """
CREATE OR REPLACE FUNCTION ehr_patientversion_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'patient history is append-only: % rejected', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER ehr_patientversion_append_only
    BEFORE UPDATE OR DELETE ON ehr_patientversion
    FOR EACH ROW EXECUTE FUNCTION ehr_patientversion_guard();
"""

UNGUARD = """
DROP TRIGGER IF EXISTS ehr_patientversion_append_only ON ehr_patientversion;
DROP FUNCTION IF EXISTS ehr_patientversion_guard();
"""


class Migration(migrations.Migration):
    dependencies = [("ehr", "0004_patient")]
    operations = [migrations.RunSQL(GUARD, UNGUARD)]
