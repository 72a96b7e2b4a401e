"""Make the audit log append-only in PostgreSQL: DELETE is always rejected; UPDATE only for the one-time sealing
of a row (setting its chain position and hashes) with every recorded column unchanged."""

from django.db import migrations

GUARD = """
CREATE OR REPLACE FUNCTION ehr_auditevent_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'the audit log is append-only: DELETE rejected' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.chain_position IS NULL AND NEW.chain_position IS NOT NULL
       AND (NEW.id, NEW.occurred_at, NEW.txid, NEW.actor_id, NEW.actor_role, NEW.patient_id, NEW.action,
            NEW.entity_type, NEW.entity_id, NEW.purpose, NEW.outcome, NEW.source_ip, NEW.channel, NEW.detail::text)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.occurred_at, OLD.txid, OLD.actor_id, OLD.actor_role, OLD.patient_id, OLD.action,
            OLD.entity_type, OLD.entity_id, OLD.purpose, OLD.outcome, OLD.source_ip, OLD.channel, OLD.detail::text)
    THEN
        RETURN NEW;  -- sealing: the only update ever allowed
    END IF;
    RAISE EXCEPTION 'the audit log is append-only: UPDATE rejected' USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER ehr_auditevent_append_only
    BEFORE UPDATE OR DELETE ON ehr_auditevent
    FOR EACH ROW EXECUTE FUNCTION ehr_auditevent_guard();
"""

UNGUARD = """
DROP TRIGGER IF EXISTS ehr_auditevent_append_only ON ehr_auditevent;
DROP FUNCTION IF EXISTS ehr_auditevent_guard();
"""


class Migration(migrations.Migration):
    dependencies = [("ehr", "0002_audit_event")]
    operations = [migrations.RunSQL(GUARD, UNGUARD)]
