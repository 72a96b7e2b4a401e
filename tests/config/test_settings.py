"""Settings behave safely: production refuses to start without its secrets; defaults are not permissive."""

from __future__ import annotations

import subprocess
import sys

from tests.support.servers import ROOT

SETUP = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
GOOD_KEY = "k" * 20 + "-production-secret-for-settings-test-0123456789"
# Reminders switched off, so these tests need no provider credentials (tests/notifications covers them).
REMINDERS_OFF = {
    "NOTIFICATIONS_SMS_ENABLED": "false",
    "NOTIFICATIONS_EMAIL_ENABLED": "false",
    "NOTIFICATIONS_PUBLIC_BASE_URL": "https://consulta.example",
}
IDENTIFIER_KEYS = {
    "FIELD_ENCRYPTION_KEYS": "c2V0dGluZ3MtdGVzdC1maWVsZC1rZXktMDAwMDAwMDA=",
    "SEARCH_HASH_KEY": "settings-test-search-hash-key",
    "DOCUMENT_STORAGE_ROOT": "/var/lib/consulta/documents",
}


def run_with(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings.production"}
    return subprocess.run(
        [sys.executable, "-c", SETUP],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_production_settings_refuse_to_start_without_secret_key() -> None:
    result = run_with({"DJANGO_ALLOWED_HOSTS": "consulta.example", "DATABASE_URL": "postgres://u@db/consulta"})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_production_settings_refuse_to_start_without_allowed_hosts() -> None:
    result = run_with({"DJANGO_SECRET_KEY": GOOD_KEY, "DATABASE_URL": "postgres://u@db/consulta"})
    assert result.returncode != 0
    assert "DJANGO_ALLOWED_HOSTS" in result.stderr


def test_production_settings_start_with_required_env_and_debug_off() -> None:
    result = run_with(
        {
            "DJANGO_SECRET_KEY": GOOD_KEY,
            "DJANGO_ALLOWED_HOSTS": "consulta.example",
            "DATABASE_URL": "postgres://u@db/consulta",
            "TURN_SECRET": "0123456789abcdef0123456789abcdef",
            **REMINDERS_OFF,
            **IDENTIFIER_KEYS,
        }
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_production_settings_refuse_to_start_without_turn_secret() -> None:
    result = run_with(
        {
            "DJANGO_SECRET_KEY": GOOD_KEY,
            "DJANGO_ALLOWED_HOSTS": "consulta.example",
            "DATABASE_URL": "postgres://u@db/consulta",
            **REMINDERS_OFF,
            **IDENTIFIER_KEYS,
        }
    )
    assert result.returncode != 0
    assert "TURN_SECRET" in result.stderr


def test_production_settings_refuse_to_start_without_keys_or_document_storage() -> None:
    required = {"DJANGO_SECRET_KEY": GOOD_KEY, "DJANGO_ALLOWED_HOSTS": "consulta.example"}
    for missing in IDENTIFIER_KEYS:
        present = {name: value for name, value in IDENTIFIER_KEYS.items() if name != missing}
        result = run_with({**required, "DATABASE_URL": "postgres://u@db/consulta", **present})
        assert result.returncode != 0
        assert missing in result.stderr


def test_base_settings_default_to_debug_off_and_argon2() -> None:
    code = (
        "import config.settings.base as b; print(b.DEBUG, b.PASSWORD_HASHERS[0].rsplit('.', 1)[1], "
        "hasattr(b, 'SECRET_KEY'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "Argon2PasswordHasher", "False"]
