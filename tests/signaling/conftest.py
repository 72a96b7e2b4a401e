from __future__ import annotations

from django.conf import settings
from django.test import Client


def session_headers(user, origin: str = "http://testserver") -> list[tuple[bytes, bytes]]:  # type: ignore[no-untyped-def]
    """Headers of a browser signed in as ``user``: its session cookie and a same-site Origin."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    return [
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
        (b"origin", origin.encode()),
    ]
