"""Developer machine (`make run`): debug on, a fixed development-only secret, loopback hosts."""

from config.settings.base import *  # noqa: F403 -- settings modules extend the base namespace by design
from config.settings.base import STORAGES, env

ENVIRONMENT = "local"
DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="local-development-only-secret-key-never-use-in-production-0000")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])

# Serve the built SPA and app static files straight from their folders (no collectstatic step).
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}

AUDIT_CHAIN_KEY = AUDIT_CHAIN_KEY or f"audit-chain:{SECRET_KEY}"  # noqa: F405 -- from the base namespace

# Development-only field-encryption key (a fixed, public value: never use it for real data) and search-hash key.
FIELD_ENCRYPTION_KEYS = FIELD_ENCRYPTION_KEYS or ["Y29uc3VsdGEtbG9jYWwtZGV2ZWxvcG1lbnQtb25seSE="]  # noqa: F405
SEARCH_HASH_KEY = SEARCH_HASH_KEY or f"search-hash:{SECRET_KEY}"  # noqa: F405 -- from the base namespace
