"""Test runs: the real PostgreSQL and Redis, isolated by database name and key prefixes."""

from config.settings.base import *  # noqa: F403 -- settings modules extend the base namespace by design
from config.settings.base import CACHES, CHANNEL_LAYERS, REDIS_URL, STORAGES, env

ENVIRONMENT = "test"
DEBUG = False
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="test-only-secret-key-not-for-any-deployed-environment-0000000")
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

# Argon2 still, but with cheap parameters so hundreds of sign-ins in the suite stay fast.
PASSWORD_HASHERS = ["core.hashers.TestArgon2PasswordHasher"]

# A Redis database of its own (15 unless TEST_REDIS_URL says otherwise), so tests may flush it freely
# without touching a running `make run`.
REDIS_URL = env.str("TEST_REDIS_URL", default=REDIS_URL.rsplit("/", 1)[0] + "/15")
CACHES["default"]["LOCATION"] = REDIS_URL  # type: ignore[index]
CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [REDIS_URL]  # type: ignore[index]
CELERY_BROKER_URL = REDIS_URL
_prefix = env.str("TEST_KEY_PREFIX", default="consulta-test")
CACHES["default"]["KEY_PREFIX"] = _prefix  # type: ignore[index]
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = _prefix  # type: ignore[index]
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default=f"{_prefix}-celery")

# Serve the built SPA and app static files straight from their folders (no collectstatic step).
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}

AUDIT_CHAIN_KEY = AUDIT_CHAIN_KEY or f"audit-chain:{SECRET_KEY}"  # noqa: F405 -- from the base namespace

# Development-only field-encryption key (a fixed, public value: never use it for real data) and search-hash key.
FIELD_ENCRYPTION_KEYS = FIELD_ENCRYPTION_KEYS or ["Y29uc3VsdGEtbG9jYWwtZGV2ZWxvcG1lbnQtb25seSE="]  # noqa: F405
SEARCH_HASH_KEY = SEARCH_HASH_KEY or f"search-hash:{SECRET_KEY}"  # noqa: F405 -- from the base namespace
