"""Encryption at rest for the most sensitive identifiers (national ID, insurance member ID).

Values are stored as Fernet tokens (AES-128-CBC + HMAC-SHA256) under ``settings.FIELD_ENCRYPTION_KEYS``: the first
key encrypts, every listed key decrypts, so keys rotate by prepending a new key, running
``manage.py rotate_field_keys`` and then dropping the old key. Exact search uses a keyed HMAC-SHA256 of the
normalised value (``SEARCH_HASH_KEY``), which reveals nothing without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

_SEPARATORS = re.compile(r"[\s\-]+")
MASK = "••••"

__all__ = [
    "InvalidToken",
    "decrypt_identifier",
    "encrypt_identifier",
    "identifier_hash",
    "is_current",
    "mask_identifier",
    "normalise_identifier",
    "rotate_token",
]


def _keys() -> tuple[str, ...]:
    keys = tuple(k.strip() for k in settings.FIELD_ENCRYPTION_KEYS if k.strip())
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: set at least one Fernet key")
    return keys


@lru_cache(maxsize=8)
def _fernets(keys: tuple[str, ...]) -> tuple[MultiFernet, Fernet]:
    try:
        fernets = [Fernet(key.encode()) for key in keys]
    except ValueError as exc:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS holds a key that is not a Fernet key") from exc
    return MultiFernet(fernets), fernets[0]


def _multi() -> MultiFernet:
    return _fernets(_keys())[0]


def normalise_identifier(value: str) -> str:
    """The canonical form identifiers are hashed and compared in: no spaces or hyphens, upper case."""
    return _SEPARATORS.sub("", value).upper()


def encrypt_identifier(value: str) -> str:
    """A Fernet token (ASCII) of the normalised ``value`` under the current key."""
    return _multi().encrypt(normalise_identifier(value).encode()).decode("ascii")


def decrypt_identifier(token: str) -> str:
    """The plaintext of ``token``; raises ``InvalidToken`` when no configured key opens it."""
    return _multi().decrypt(token.encode("ascii")).decode()


def is_current(token: str) -> bool:
    """Whether ``token`` is already encrypted under the current (first) key."""
    try:
        _fernets(_keys())[1].decrypt(token.encode("ascii"))
    except InvalidToken:
        return False
    return True


def rotate_token(token: str) -> str:
    """``token`` re-encrypted under the current key (``MultiFernet.rotate``); the plaintext is unchanged."""
    return _multi().rotate(token.encode("ascii")).decode("ascii")


def identifier_hash(value: str) -> str:
    """Keyed HMAC-SHA256 (hex) of the normalised value: equal identifiers hash equal, and only key holders can
    compute it, so the stored hash cannot be brute-forced from a database dump alone."""
    key = str(settings.SEARCH_HASH_KEY)
    if not key:
        raise ImproperlyConfigured("SEARCH_HASH_KEY is empty")
    return hmac.new(key.encode(), normalise_identifier(value).encode(), hashlib.sha256).hexdigest()


def mask_identifier(value: str) -> str:
    """``"•••• 1234"``: only the last four characters are shown (fewer for very short values)."""
    normalised = normalise_identifier(value)
    visible = normalised[-4:] if len(normalised) > 6 else normalised[-2:]
    return f"{MASK} {visible}"


def check_configuration() -> list[str]:
    """Problems with the encryption settings, for the system check (empty when all is well)."""
    problems = []
    try:
        _fernets(_keys())
    except ImproperlyConfigured as exc:
        problems.append(str(exc))
    if not str(getattr(settings, "SEARCH_HASH_KEY", "")):
        problems.append("SEARCH_HASH_KEY is empty")
    return problems
