"""Production settings refuse to start with an enabled reminder channel that has no real provider, and never fall
back to the development fakes (docs/operations.md). Each case imports ``config.settings.production`` in a fresh
interpreter with exactly the environment given (nothing connects to a database)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import django; django.setup(); from django.conf import settings; "
    "print(settings.NOTIFICATIONS_SMS_ENABLED, settings.NOTIFICATIONS_EMAIL_ENABLED, settings.DEFAULT_FROM_EMAIL)"
)
TWILIO = {
    "TWILIO_ACCOUNT_SID": "AC" + "2" * 32,
    "TWILIO_AUTH_TOKEN": "real-token",
    "TWILIO_FROM_NUMBER": "+15550001111",
}


def base_env(**extra: str) -> dict[str, str]:
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "x" * 60,
        "DJANGO_ALLOWED_HOSTS": "clinic.example.org",
        "DATABASE_URL": "postgres://consulta:pw@postgres:5432/consulta",
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "SEARCH_HASH_KEY": "k" * 32,
        "DOCUMENT_STORAGE_ROOT": "/var/lib/consulta/documents",  # only read, never created
        "TURN_SECRET": "t" * 32,
        **extra,
    }


def load(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_production_refuses_sms_enabled_without_twilio_credentials() -> None:
    result = load(base_env(NOTIFICATIONS_EMAIL_ENABLED="false", NOTIFICATIONS_PUBLIC_BASE_URL="https://c.example"))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER not set" in result.stderr


def test_production_refuses_email_enabled_without_email_host() -> None:
    result = load(
        base_env(NOTIFICATIONS_SMS_ENABLED="false", NOTIFICATIONS_PUBLIC_BASE_URL="https://clinic.example.org")
    )
    assert result.returncode != 0
    assert "EMAIL_HOST is not set" in result.stderr


def test_production_refuses_a_local_fake_twilio_and_a_loopback_public_url() -> None:
    result = load(
        base_env(
            **TWILIO,
            TWILIO_API_BASE="http://127.0.0.1:8025",
            NOTIFICATIONS_EMAIL_ENABLED="false",
            NOTIFICATIONS_PUBLIC_BASE_URL="http://127.0.0.1:8000",
        )
    )
    assert result.returncode != 0
    assert "TWILIO_API_BASE must be empty" in result.stderr
    assert "NOTIFICATIONS_PUBLIC_BASE_URL must be the public https address" in result.stderr


def test_production_refuses_half_a_secondary_sms_provider() -> None:
    result = load(
        base_env(
            **TWILIO,
            TWILIO_SECONDARY_ACCOUNT_SID="AC" + "3" * 32,
            NOTIFICATIONS_EMAIL_ENABLED="false",
            NOTIFICATIONS_PUBLIC_BASE_URL="https://clinic.example.org",
        )
    )
    assert result.returncode != 0
    assert "TWILIO_SECONDARY_ACCOUNT_SID, _AUTH_TOKEN and _FROM_NUMBER" in result.stderr


def test_production_starts_with_real_providers_configured() -> None:
    result = load(
        base_env(
            **TWILIO,
            EMAIL_HOST="smtp.example.org",
            NOTIFICATIONS_PUBLIC_BASE_URL="https://clinic.example.org",
        )
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "Consulta", "<reminders@clinic.example.org>"]


def test_production_starts_with_both_channels_disabled_and_no_providers() -> None:
    result = load(base_env(NOTIFICATIONS_SMS_ENABLED="false", NOTIFICATIONS_EMAIL_ENABLED="false"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["False", "False"]
