"""The audit log: one row per access to or change of protected health information (PHI).

Append-only in PostgreSQL (a trigger rejects DELETE, and every UPDATE except the one-time sealing of a row), and
hash-chained so tampering is detectable (``python manage.py audit_verify``). Rows are written in the same
transaction as the access they record; they are chained afterwards by ``audit_seal`` in commit order, so the hot
path takes no global lock (docs/audit.md).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Now


class AuditAction(models.TextChoices):
    READ = "read", "Read"
    CREATE = "create", "Create"
    UPDATE = "update", "Update"
    ENTERED_IN_ERROR = "entered_in_error", "Marked entered in error"
    EXPORT = "export", "Export"
    BREAK_GLASS = "break_glass", "Break-the-glass access"


class AuditOutcome(models.TextChoices):
    SUCCESS = "success", "Success"
    DENIED = "denied", "Denied"
    FAILED = "failed", "Failed"


class AuditEvent(models.Model):
    """Who (user and role) did what (action on entity) to whose record (patient), when, from where, why, and
    with what outcome. ``detail`` holds ids and field names only, never values.

    ``txid`` is the writing transaction's id (set by PostgreSQL). Sealing orders rows by (txid, id) and only
    seals rows whose transaction can no longer be running, which makes the chain order final.
    """

    occurred_at = models.DateTimeField(db_default=Now())
    txid = models.BigIntegerField(
        db_default=models.Func(function="txid_current", output_field=models.BigIntegerField())
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_role = models.CharField(max_length=20, blank=True)
    patient_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    action = models.CharField(max_length=20, choices=AuditAction.choices)
    entity_type = models.CharField(max_length=40)
    entity_id = models.CharField(max_length=64, blank=True)
    purpose = models.CharField(max_length=40, blank=True)
    outcome = models.CharField(max_length=10, choices=AuditOutcome.choices, default=AuditOutcome.SUCCESS)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    channel = models.CharField(max_length=20, blank=True, help_text="api, admin, export, system")
    detail = models.JSONField(default=dict, blank=True)
    chain_position = models.BigIntegerField(null=True, blank=True, unique=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["patient_id", "occurred_at"], name="audit_patient_time"),
            models.Index(fields=["actor", "occurred_at"], name="audit_actor_time"),
            models.Index(fields=["txid", "id"], name="audit_unsealed", condition=models.Q(chain_position__isnull=True)),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(chain_position__isnull=True, hash="", prev_hash="")
                    | (models.Q(chain_position__isnull=False) & ~models.Q(hash=""))
                ),
                name="audit_sealed_fields_together",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.entity_type}:{self.entity_id} by {self.actor_id} ({self.outcome})"
