"""Production: every secret and host comes from the environment; there are no defaults to fall back on.

Importing this module without DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS or DATABASE_URL raises
ImproperlyConfigured, so a misconfigured deployment fails at start instead of running insecurely.
"""

from urllib.parse import unquote

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
