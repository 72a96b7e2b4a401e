"""ICE servers for a visit's browsers: STUN, and TURN with short-lived REST credentials (coturn
``use-auth-secret``: username ``<expiry unix time>:<user id>``, password base64(HMAC-SHA1(secret, username)))."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac

from django.conf import settings
from django.utils import timezone

from ehr.models import Role, User
from telehealth.dto import IceConfig, IceServer
from telehealth.errors import Forbidden, VisitNotFound
from telehealth.models import Visit
from telehealth.selectors import parse_uuid

POLICIES = ("all", "relay")


def turn_credential(*, secret: str, username: str) -> str:
    """coturn's TURN REST password for ``username``."""
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def ice_servers_issue(*, actor: User, visit_id: str | None = None) -> IceConfig:
    """An RTCConfiguration for ``actor``: with ``visit_id``, only the visit's patient or practitioner (others get
    ``VisitNotFound``); without, only clinicians (practitioners and nurses: console previews). TURN credentials
    expire after ``TURN_CREDENTIAL_TTL_SECONDS`` and name the user, never the visit or the patient. Writes
    nothing."""
    if not actor.is_authenticated:
        raise Forbidden("Sign in first.")
    if visit_id is not None:
        parsed = parse_uuid(visit_id)
        row = (
            Visit.objects.filter(pk=parsed).values_list("patient_user_id", "practitioner_id").first()
            if parsed
            else None
        )
        if row is None or actor.pk not in row:
            raise VisitNotFound()
    elif not actor.has_role(Role.PRACTITIONER, Role.NURSE):
        raise Forbidden("Name the visit you are joining.")
    ttl = int(settings.TURN_CREDENTIAL_TTL_SECONDS)
    expires_at = timezone.now().replace(microsecond=0) + dt.timedelta(seconds=ttl)
    username = f"{int(expires_at.timestamp())}:{actor.pk}"
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
