"""Account lifecycle."""

from __future__ import annotations

from django.db import transaction

from core.realtime.services import publish_to_role, publish_to_user
from ehr import events
from ehr.errors import CannotDeactivateSelf, UserNotFound
from ehr.models import Role, User


def _locked(user_id: int) -> User:
    try:
        return User.objects.select_for_update().get(pk=user_id)
    except User.DoesNotExist:
        raise UserNotFound(user_id) from None


def user_deactivate(*, user_id: int, actor: User) -> User:
    """Deactivate an account and end every live session of it at once.

    The caller (an admin API view or the Django admin) has checked that ``actor`` is an administrator. The
    ``session.revoked`` event closes the person's open websockets with 4403 after commit; their HTTP session
    stops authenticating immediately because Django refuses inactive users. Idempotent.
    """
    if actor.pk == user_id:
        raise CannotDeactivateSelf(user_id)
    with transaction.atomic():
        user = _locked(user_id)
        if user.is_active:
            user.is_active = False
            user.save(update_fields=["is_active"])
            publish_to_user(
                user_id=user.pk,
                type=events.SESSION_REVOKED,
                data={"reason": "deactivated"},
                close_code=events.CLOSE_SESSION_REVOKED,
            )
            publish_to_role(role=Role.ADMIN, type=events.USER_UPDATED, data={"id": user.pk, "is_active": False})
    return user


def user_activate(*, user_id: int, actor: User) -> User:
    """Re-activate an account (admin only, checked by the caller). Idempotent."""
    with transaction.atomic():
        user = _locked(user_id)
        if not user.is_active:
            user.is_active = True
            user.save(update_fields=["is_active"])
            publish_to_role(role=Role.ADMIN, type=events.USER_UPDATED, data={"id": user.pk, "is_active": True})
    return user
