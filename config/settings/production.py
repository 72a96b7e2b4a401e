"""Production: every secret and host comes from the environment; there are no defaults to fall back on.

Importing this module without DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS or DATABASE_URL raises
ImproperlyConfigured, so a misconfigured deployment fails at start instead of running insecurely.
"""

from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

from config.settings.base import *  # noqa: F403 -- settings modules extend the base namespace by design
from config.settings.base import DATABASES, env

ENVIRONMENT = "production"
DEBUG = False
SECRET_KEY = env.str("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
DATABASES["default"].update(env.db("DATABASE_URL"))
DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"
DATABASES["default"]["HOST"] = unquote(str(DATABASES["default"].get("HOST") or ""))

# TLS is terminated by the reverse proxy in front of daphne, which sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health/$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True

AUDIT_CHAIN_KEY = AUDIT_CHAIN_KEY or f"audit-chain:{SECRET_KEY}"  # noqa: F405 -- from the base namespace

# Required, no defaults: losing or changing these makes encrypted identifiers unreadable / unsearchable.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS")
SEARCH_HASH_KEY = env.str("SEARCH_HASH_KEY")

# Patient documents live on a volume of their own; no silent fallback to a path inside the image.
DOCUMENT_STORAGE_ROOT = env.path("DOCUMENT_STORAGE_ROOT")

# TURN REST credentials are signed with this secret (coturn's static-auth-secret); no development default.
TURN_SECRET = env.str("TURN_SECRET")

# Reminders (docs/notifications.md, docs/operations.md): a channel that is enabled must name a real provider. The
# development fakes (tests/fakes/, `make run` demo mode) are never a production default: production refuses to start
# rather than send reminders nowhere.
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="") or f"Consulta <reminders@{ALLOWED_HOSTS[0]}>"
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def _notifications_misconfigured() -> list[str]:
    problems: list[str] = []
    if NOTIFICATIONS_SMS_ENABLED:  # noqa: F405 -- from the base namespace
        missing = [
            name
            for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER")
            if not env.str(name, default="")
        ]
        if missing:
            problems.append(f"SMS is enabled but {', '.join(missing)} not set (or set NOTIFICATIONS_SMS_ENABLED=false)")
    for prefix in ("TWILIO", "TWILIO_SECONDARY"):
        base = env.str(f"{prefix}_API_BASE", default="")
        host = urlsplit(base).hostname or ""
        if base and (urlsplit(base).scheme != "https" or host in _LOOPBACK_HOSTS):
            problems.append(f"{prefix}_API_BASE must be empty (Twilio's API) or an https URL, not a local fake")
    secondary = [env.str(f"TWILIO_SECONDARY_{p}", default="") for p in ("ACCOUNT_SID", "AUTH_TOKEN", "FROM_NUMBER")]
    if any(secondary) and not all(secondary):
        problems.append("set all of TWILIO_SECONDARY_ACCOUNT_SID, _AUTH_TOKEN and _FROM_NUMBER, or none")
    if NOTIFICATIONS_EMAIL_ENABLED and not env.str("EMAIL_HOST", default=""):  # noqa: F405
        problems.append("email is enabled but EMAIL_HOST is not set (or set NOTIFICATIONS_EMAIL_ENABLED=false)")
    if (NOTIFICATIONS_SMS_ENABLED or NOTIFICATIONS_EMAIL_ENABLED) and not env.str(  # noqa: F405
        "NOTIFICATIONS_PUBLIC_BASE_URL", default=""
    ).startswith("https://"):
        problems.append("NOTIFICATIONS_PUBLIC_BASE_URL must be the public https address (links, Twilio callbacks)")
    return problems


if _problems := _notifications_misconfigured():
    raise ImproperlyConfigured("Notifications: " + "; ".join(_problems) + ". See docs/operations.md.")
