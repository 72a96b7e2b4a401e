"""Writing and sealing the audit log. Every PHI read and write in Consulta calls ``audit_record``."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest

from ehr.models import AuditAction, AuditEvent, AuditOutcome, User

SEAL_BATCH = 5000
GENESIS = "0" * 64


def _client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    # REMOTE_ADDR is the proxy's address behind one; the trusted hop count decides (same rule as django-axes).
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    hops = settings.AXES_IPWARE_PROXY_COUNT
    if hops and forwarded:
        parts = [p.strip() for p in forwarded.split(",") if p.strip()]
        if len(parts) >= hops:
            return str(parts[-hops])
    remote = request.META.get("REMOTE_ADDR")
    return str(remote) if remote else None


def audit_record(
    *,
    actor: User | None,
    action: str,
    entity_type: str,
    entity_id: object = "",
    patient_id: int | None = None,
    purpose: str = "",
    outcome: str = AuditOutcome.SUCCESS,
    request: HttpRequest | None = None,
    channel: str = "api",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one audit row in the caller's transaction (so it commits or rolls back with the access itself).

    Call it from every service or selector that reads or writes PHI, and for denied attempts. A failure to write
    raises, failing the request: an unaudited PHI access must not succeed. ``detail`` carries ids and field names
    only, never values.
    """
    if action not in AuditAction.values or outcome not in AuditOutcome.values:
        raise ValueError(f"unknown audit action/outcome {action!r}/{outcome!r}")
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_role=(actor.primary_role if actor is not None and actor.is_authenticated else "system"),
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        patient_id=patient_id,
        purpose=purpose,
        outcome=outcome,
        source_ip=_client_ip(request),
        channel=channel,
        detail=detail or {},
    )


def _chain_key() -> bytes:
    return str(settings.AUDIT_CHAIN_KEY).encode()


def audit_row_digest(row: AuditEvent, prev_hash: str) -> str:
    """HMAC-SHA256 over the previous hash and every recorded column of ``row`` (canonical JSON).

    Keyed, so someone who can write to the database but does not hold AUDIT_CHAIN_KEY cannot rebuild the chain
    after changing a row.
    """
    record = {
        "id": row.id,
        "occurred_at": row.occurred_at.isoformat(),
        "txid": row.txid,
        "actor_id": row.actor_id,
        "actor_role": row.actor_role,
        "patient_id": row.patient_id,
        "action": row.action,
        "entity_type": row.entity_type,
        "entity_id": row.entity_id,
        "purpose": row.purpose,
        "outcome": row.outcome,
        "source_ip": row.source_ip,
        "channel": row.channel,
        "detail": row.detail,
        "position": row.chain_position,
    }
    message = prev_hash.encode() + json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(_chain_key(), message, hashlib.sha256).hexdigest()


def audit_seal(*, batch: int = SEAL_BATCH) -> int:
    """Chain rows whose writing transactions have all finished, in (txid, id) order; returns how many.

    A row's transaction id is below the current snapshot's xmin only once no transaction that could still add
    an earlier row is running, so the order sealed is final. Sealers serialise on an advisory lock; writers never
    wait for it. Beat runs this every minute; ``audit_verify`` runs it first.
    """
    sealed = 0
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('ehr.audit_seal'))")
            cursor.execute("SELECT txid_snapshot_xmin(txid_current_snapshot())")
            horizon = int(cursor.fetchone()[0])
        last = AuditEvent.objects.filter(chain_position__isnull=False).order_by("-chain_position").first()
        position = last.chain_position if last and last.chain_position else 0
        prev_hash = last.hash if last else GENESIS
        rows = list(
            AuditEvent.objects.filter(chain_position__isnull=True, txid__lt=horizon).order_by("txid", "id")[:batch]
        )
        for row in rows:
            position += 1
            row.chain_position = position
            row.prev_hash = prev_hash
            row.hash = audit_row_digest(row, prev_hash)
            prev_hash = row.hash
        AuditEvent.objects.bulk_update(rows, ["chain_position", "prev_hash", "hash"], batch_size=1000)
        sealed = len(rows)
    return sealed


@dataclass(frozen=True)
class ChainReport:
    checked: int
    unsealed: int
    broken_at: int | None  # chain position of the first broken link
    broken_id: int | None
    reason: str

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def audit_verify_chain() -> ChainReport:
    """Recompute the chain from the start; report the first row whose hash, link or position does not match."""
    prev_hash = GENESIS
    expected_position = 1
    checked = 0
    rows = AuditEvent.objects.filter(chain_position__isnull=False).order_by("chain_position")
    for row in rows.iterator(chunk_size=2000):
        if row.chain_position != expected_position:
            return ChainReport(
                checked,
                0,
                expected_position,
                row.id,
                f"position {expected_position} is missing (next is {row.chain_position}): rows deleted",
            )
        if row.prev_hash != prev_hash:
            return ChainReport(checked, 0, row.chain_position, row.id, "link to the previous row does not match")
        if not hmac.compare_digest(row.hash, audit_row_digest(row, prev_hash)):
            return ChainReport(checked, 0, row.chain_position, row.id, "row content does not match its hash")
        prev_hash = row.hash
        expected_position += 1
        checked += 1
    unsealed = AuditEvent.objects.filter(chain_position__isnull=True).count()
    return ChainReport(checked, unsealed, None, None, "ok")
