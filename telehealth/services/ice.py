"""ICE servers for a visit's browsers: STUN, and TURN with short-lived REST credentials (coturn
``use-auth-secret``: username ``<expiry unix time>:<user id>``, password base64(HMAC-SHA1(secret, username)))."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import uuid
from collections.abc import Sequence

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from ehr.models import Role, User
from telehealth.dto import IceConfig, IceServer
from telehealth.errors import Forbidden, VisitNotFound
from telehealth.models import Visit, VisitInvitation
from telehealth.selectors import parse_uuid

POLICIES = ("all", "relay")


def turn_credential(*, secret: str, username: str) -> str:
    """coturn's TURN REST password for ``username``."""
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _guest_of_visit(parsed: uuid.UUID | None, guest_invitation_ids: Sequence[str]) -> str | None:
    """The participant id of a guest of the visit this browser session consumed an invitation to (not removed)."""
    wanted = [p for p in (parse_uuid(i) for i in guest_invitation_ids) if p is not None]
    if not wanted or parsed is None:
        return None
    row = (
        VisitInvitation.objects.filter(pk__in=wanted, visit_id=parsed, used_at__isnull=False, removed_at__isnull=True)
        .values_list("id", flat=True)
        .first()
    )
    return f"g{row.hex[:12]}" if row is not None else None


def ice_servers_issue(
    *, actor: User | AnonymousUser, visit_id: str | None = None, guest_invitation_ids: Sequence[str] = ()
) -> IceConfig:
    """An RTCConfiguration for ``actor``: with ``visit_id``, only the visit's patient or practitioner, or a guest
    whose browser session consumed an invitation to it (``guest_invitation_ids``; the user may be anonymous);
    others get ``VisitNotFound``. Without, only clinicians (practitioners and nurses: console previews). TURN
    credentials expire after ``TURN_CREDENTIAL_TTL_SECONDS`` and name the user (a guest: ``g`` and 12 hex digits
    of their invitation), never the visit or the patient. Writes nothing."""
    who: str | None = None
    if visit_id is not None:
        parsed = parse_uuid(visit_id)
        row = (
            Visit.objects.filter(pk=parsed).values_list("patient_user_id", "practitioner_id").first()
            if parsed
            else None
        )
        if row is None:
            raise VisitNotFound()
        if actor.is_authenticated and actor.pk in row:
            who = str(actor.pk)
        else:
            who = _guest_of_visit(parsed, guest_invitation_ids)
        if who is None:
            if not actor.is_authenticated:
                raise Forbidden("Sign in first.")
            raise VisitNotFound()
    elif not actor.is_authenticated:
        raise Forbidden("Sign in first.")
    elif not isinstance(actor, User) or not actor.has_role(Role.PRACTITIONER, Role.NURSE):
        raise Forbidden("Name the visit you are joining.")
    else:
        who = str(actor.pk)
    ttl = int(settings.TURN_CREDENTIAL_TTL_SECONDS)
    expires_at = timezone.now().replace(microsecond=0) + dt.timedelta(seconds=ttl)
    username = f"{int(expires_at.timestamp())}:{who}"
    servers: list[IceServer] = []
    if settings.STUN_URLS:
        servers.append(IceServer(urls=tuple(settings.STUN_URLS)))
    if settings.TURN_URLS:
        servers.append(
            IceServer(
                urls=tuple(settings.TURN_URLS),
                username=username,
                credential=turn_credential(secret=settings.TURN_SECRET, username=username),
            )
        )
    policy = settings.TELEHEALTH_ICE_TRANSPORT_POLICY
    return IceConfig(
        ice_servers=tuple(servers),
        ice_transport_policy="relay" if policy == "relay" else "all",
        expires_at=expires_at,
        ttl_seconds=ttl,
    )
