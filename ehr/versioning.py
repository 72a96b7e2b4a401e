"""The one versioning helper of the clinical record (the Patient pattern, made generic).

A versioned row carries ``version`` (1, +1 per change); its history model (a ``ClinicalVersion`` subclass with a
``record`` foreign key) gets one append-only row per version holding the JSON snapshot of the versioned fields after
the change, the names of the fields that changed, the actor and the reason. Services call, inside their transaction:
``lock_at_version`` (row lock + optimistic-concurrency check), apply their change, then ``save_new_version`` (or
``record_first_version`` after an insert). Selectors call ``history_entries``.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, TypeVar

from django.db import models
from django.utils import timezone

from ehr.dto import FieldChange, RecordHistoryEntry
from ehr.errors import VersionConflict
from ehr.models import User
from ehr.models.clinical import ClinicalVersion

M = TypeVar("M", bound=models.Model)


def _json(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")  # 72.000 and 72 are the same reading
    return value


def snapshot(instance: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    """JSON snapshot of ``fields`` (attribute names: ``encounter_id`` for a foreign key) of ``instance``."""
    return {name: _json(getattr(instance, name)) for name in fields}


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Names whose value differs, in the order of ``after``."""
    return [name for name in after if before.get(name) != after[name]]


def diff(before: dict[str, Any] | None, after: dict[str, Any]) -> list[FieldChange]:
    """Field-level differences between two snapshots; for the first version, the fields that were filled in."""
    if before is None:
        return [FieldChange(field=k, before=None, after=v) for k, v in after.items() if v not in (None, "", [])]
    keys = list(after) + [k for k in before if k not in after]
    return [
        FieldChange(field=k, before=before.get(k), after=after.get(k)) for k in keys if before.get(k) != after.get(k)
    ]


def lock_at_version(
    queryset: models.QuerySet[M],
    record_id: int,
    expected_version: int,
    *,
    not_found: Callable[[], Exception],
    conflict: Callable[[M], Exception] | None = None,
) -> M:
    """The row, locked (``SELECT … FOR UPDATE``), after checking it is still at ``expected_version``.

    Of two changes based on the same version, the second waits for the first's lock and then fails the check, so
    exactly one wins. ``conflict`` builds the error for a stale version (default ``VersionConflict``).
    """
    row = queryset.select_for_update().filter(pk=record_id).first()
    if row is None:
        raise not_found()
    current = int(row.version)  # type: ignore[attr-defined]
    if current != expected_version:
        raise conflict(row) if conflict is not None else VersionConflict(current)
    return row


def _append(
    history: type[ClinicalVersion],
    instance: models.Model,
    *,
    fields: Iterable[str],
    changed: list[str],
    actor: User,
    reason: str,
    at: datetime.datetime,
) -> None:
    history._default_manager.create(  # type: ignore[misc]  # ``record`` is declared by each concrete subclass
        record=instance,
        version=instance.version,  # type: ignore[attr-defined]
        data=snapshot(instance, fields),
        changed_fields=changed,
        actor=actor,
        reason=reason,
        recorded_at=at,
    )


def record_first_version(
    history: type[ClinicalVersion], instance: models.Model, *, fields: Iterable[str], actor: User, reason: str
) -> None:
    """Version 1 of a row just inserted (``changed_fields``: the fields that were filled in)."""
    data = snapshot(instance, fields)
    changed = [k for k, v in data.items() if v not in (None, "", [])]
    _append(history, instance, fields=data.keys(), changed=changed, actor=actor, reason=reason, at=timezone.now())


def save_new_version(
    history: type[ClinicalVersion],
    instance: models.Model,
    *,
    fields: Iterable[str],
    before: dict[str, Any],
    actor: User,
    reason: str,
) -> list[str]:
    """If the versioned fields differ from ``before`` (a ``snapshot`` taken before the change): bump ``version``,
    save the row and append its history row. Returns the changed field names (empty: nothing was written)."""
    fields = tuple(fields)
    changed = changed_fields(before, snapshot(instance, fields))
    if not changed:
        return []
    now = timezone.now()
    instance.version += 1  # type: ignore[attr-defined]
    instance.updated_at = now  # type: ignore[attr-defined]
    instance.save()
    _append(history, instance, fields=fields, changed=changed, actor=actor, reason=reason, at=now)
    return changed


def history_entries(history: type[ClinicalVersion], record_id: int) -> list[RecordHistoryEntry]:
    """Every version of one record, oldest first, each with its diff against the previous snapshot."""
    rows = history._default_manager.filter(**{"record_id": record_id}).select_related("actor").order_by("version")
    entries: list[RecordHistoryEntry] = []
    previous: dict[str, Any] | None = None
    for row in rows:
        entries.append(
            RecordHistoryEntry(
                version=row.version,
                changed_fields=list(row.changed_fields),
                actor_id=row.actor_id,
                actor_display_name=row.actor.display_name,
                reason=row.reason,
                recorded_at=row.recorded_at,
                data=row.data,
                diff=diff(previous, row.data),
            )
        )
        previous = row.data
    return entries
