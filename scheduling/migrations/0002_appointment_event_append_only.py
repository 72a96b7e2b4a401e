"""The appointment event log is append-only in PostgreSQL: UPDATE and DELETE are rejected by a trigger."""

from django.db import migrations

GUARD = """
CREATE OR REPLACE FUNCTION scheduling_appointmentevent_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the appointment event log is append-only: % rejected', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER scheduling_appointmentevent_append_only
    BEFORE UPDATE OR DELETE ON scheduling_appointmentevent
    FOR EACH ROW EXECUTE FUNCTION scheduling_appointmentevent_guard();
"""

UNGUARD = """
DROP TRIGGER IF EXISTS scheduling_appointmentevent_append_only ON scheduling_appointmentevent;
DROP FUNCTION IF EXISTS scheduling_appointmentevent_guard();
"""


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0001_initial")]
    operations = [migrations.RunSQL(GUARD, UNGUARD)]
