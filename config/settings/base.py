"""Settings shared by every environment. Everything that differs between machines comes from the environment.

Safe defaults: DEBUG is off and there is no secret key here; `local` and `test` supply development-only values,
`production` demands real ones.
"""

from pathlib import Path
from urllib.parse import unquote

import django_stubs_ext
import environ

# Makes Django's generic classes (ModelAdmin[Model], QuerySet[Model]) subscriptable at runtime for typing.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS: list[str] = env.list("DJANGO_ALLOWED_HOSTS", default=[])
CSRF_TRUSTED_ORIGINS: list[str] = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.postgres",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "axes",
    "core",
    "ehr",
    "notifications",
    "scheduling",
    "telehealth",
    "signaling",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout raised during authentication into a response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Data stores -----------------------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/consulta")}
DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"
# A unix-socket directory travels percent-encoded in the URL's host (postgres://user@%2Fpath%2Fdir/db).
DATABASES["default"]["HOST"] = unquote(str(DATABASES["default"].get("HOST") or ""))
# Django's native psycopg 3 pool: under ASGI each request may run on a different thread, so persistent
# per-thread connections (CONN_MAX_AGE) would pile up; a bounded shared pool does not.
if env.bool("DATABASE_POOL", default=True):
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN", default=1),
        "max_size": env.int("DATABASE_POOL_MAX", default=10),
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")

CACHES = {
    "default": {
        "BACKEND": "config.redis_pool.SharedClientRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="consulta"),
        # One pool per process, not one connection per request under ASGI (config/redis_pool.py).
        "OPTIONS": {"pool_class": "config.redis_pool.SharedConnectionPool"},
    }
}

# Pub/sub layer: measured (DESIGN.md §6) at well under half the CPU per message of the list-based layer, and
# delivery loss is covered by the per-stream sequence numbers and REST catch-up of the realtime spine. Our
# subclass bounds each consumer's inbox (core/realtime/layer.py).
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "core.realtime.layer.BoundedRedisPubSubChannelLayer",
        "CONFIG": {
            "hosts": [REDIS_URL],
            "prefix": env.str("CHANNEL_LAYER_PREFIX", default="consulta"),
            "capacity": env.int("CHANNEL_LAYER_CAPACITY", default=200),
        },
    }
}

# --- Celery ----------------------------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="consulta")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "realtime-prune": {"task": "core.tasks.stream_events_prune", "schedule": 3600.0},
    "audit-seal": {"task": "ehr.tasks.audit_seal", "schedule": 60.0},
    "documents-sweep": {"task": "ehr.tasks.documents_sweep", "schedule": 3600.0},
    "scheduling-holds-expire": {"task": "scheduling.tasks.holds_release_expired", "schedule": 60.0},
    "scheduling-noshow": {"task": "scheduling.tasks.appointments_mark_noshow", "schedule": 60.0},
    "telehealth-grace-expiry": {"task": "telehealth.tasks.visits_expire_grace", "schedule": 60.0},
    "telehealth-wait-alerts": {"task": "telehealth.tasks.visits_alert_long_waits", "schedule": 60.0},
    "notifications-dispatch": {"task": "notifications.tasks.messages_dispatch_tick", "schedule": 60.0},
}

# --- Scheduling ------------------------------------------------------------------------------------------------
SCHEDULING_HOLD_TTL_SECONDS = env.int("SCHEDULING_HOLD_TTL_SECONDS", default=300)
# A booking claims its time in a first, short transaction; if the booking never completes (its worker died), the
# claim frees the time after this long (scheduling/services/booking.py).
SCHEDULING_BOOKING_CLAIM_SECONDS = env.int("SCHEDULING_BOOKING_CLAIM_SECONDS", default=60)
WAITLIST_OFFER_TTL_SECONDS = env.int("WAITLIST_OFFER_TTL_SECONDS", default=2 * 3600)
WAITLIST_OFFER_FANOUT = env.int("WAITLIST_OFFER_FANOUT", default=5)

# --- Telehealth (docs/telehealth.md) ---------------------------------------------------------------------------
# A waiting patient whose socket dropped keeps their place this long; check-in opens this long before the start.
TELEHEALTH_GRACE_SECONDS = env.int("TELEHEALTH_GRACE_SECONDS", default=300)
TELEHEALTH_CHECKIN_OPENS_MINUTES = env.int("TELEHEALTH_CHECKIN_OPENS_MINUTES", default=60)
TELEHEALTH_CHECKIN_LINK_TTL_SECONDS = env.int("TELEHEALTH_CHECKIN_LINK_TTL_SECONDS", default=24 * 3600)
# A doctor's console heartbeat (every 20 s) older than this shows them offline.
TELEHEALTH_PRESENCE_SECONDS = env.int("TELEHEALTH_PRESENCE_SECONDS", default=60)
TELEHEALTH_QUALITY_MIN_INTERVAL_SECONDS = env.int("TELEHEALTH_QUALITY_MIN_INTERVAL_SECONDS", default=5)
TELEHEALTH_ICE_TRANSPORT_POLICY = env.str("TELEHEALTH_ICE_TRANSPORT_POLICY", default="all")
# The visit's practitioner is alerted (SMS or email, and in the console) once a patient has waited longer than this
# past the later of their check-in and their appointment time; 0 turns the alerts off.
TELEHEALTH_WAIT_ALERT_MINUTES = env.int("TELEHEALTH_WAIT_ALERT_MINUTES", default=15)
# coturn with use-auth-secret (turn/turnserver.conf): the API issues TURN REST credentials from TURN_SECRET that
# expire after TURN_CREDENTIAL_TTL_SECONDS. The default secret is for local runs only; production requires one.
TURN_URLS: list[str] = env.list(
    "TURN_URLS", default=["turn:127.0.0.1:3478?transport=udp", "turn:127.0.0.1:3478?transport=tcp"]
)
STUN_URLS: list[str] = env.list("STUN_URLS", default=["stun:127.0.0.1:3478"])
TURN_SECRET = env.str("TURN_SECRET", default="local-turn-secret")
TURN_CREDENTIAL_TTL_SECONDS = env.int("TURN_CREDENTIAL_TTL_SECONDS", default=600)
# The media relay (issue 7): the signaling consumer signs each relay-bound frame with this key; the relay refuses
# tokens that do not verify or are older than 60 s. Empty = derived from SECRET_KEY (telehealth/services/relay.py).
RELAY_SECRET = env.str("RELAY_SECRET", default="")
# Guest invitations: the link lives this long unless the inviter says otherwise (5 to 1440 minutes).
TELEHEALTH_INVITATION_DEFAULT_MINUTES = env.int("TELEHEALTH_INVITATION_DEFAULT_MINUTES", default=120)

# --- Notifications (docs/notifications.md) ---------------------------------------------------------------------
# Twilio (SMS, voice): TWILIO_API_BASE empty = Twilio's real API; tests and the `make run` demo point it at the local
# fake (tests/fakes/twilio_server.py). TWILIO_SECONDARY_* is a second SMS provider slot (empty = none).
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM_NUMBER = env.str("TWILIO_FROM_NUMBER", default="")
TWILIO_API_BASE = env.str("TWILIO_API_BASE", default="")
TWILIO_SECONDARY_ACCOUNT_SID = env.str("TWILIO_SECONDARY_ACCOUNT_SID", default="")
TWILIO_SECONDARY_AUTH_TOKEN = env.str("TWILIO_SECONDARY_AUTH_TOKEN", default="")
TWILIO_SECONDARY_FROM_NUMBER = env.str("TWILIO_SECONDARY_FROM_NUMBER", default="")
TWILIO_SECONDARY_API_BASE = env.str("TWILIO_SECONDARY_API_BASE", default="")
TWILIO_TIMEOUT_SECONDS = env.float("TWILIO_TIMEOUT_SECONDS", default=10.0)
# Email through Django's SMTP backend.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="127.0.0.1")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Consulta <reminders@consulta.localhost>")
# Base of the status-callback URLs given to Twilio and of the links in messages (the address Twilio reaches us at).
NOTIFICATIONS_PUBLIC_BASE_URL = env.str("NOTIFICATIONS_PUBLIC_BASE_URL", default="http://127.0.0.1:8000")
NOTIFICATIONS_SMS_ENABLED = env.bool("NOTIFICATIONS_SMS_ENABLED", default=True)
NOTIFICATIONS_EMAIL_ENABLED = env.bool("NOTIFICATIONS_EMAIL_ENABLED", default=True)
NOTIFICATIONS_MAX_ATTEMPTS = env.int("NOTIFICATIONS_MAX_ATTEMPTS", default=3)
NOTIFICATIONS_RETRY_BACKOFF_SECONDS: list[int] = [
    int(x) for x in env.list("NOTIFICATIONS_RETRY_BACKOFF_SECONDS", default=["30", "120"])
]
# A message is delivered, or has fallen back to the next channel, within this many seconds of being due.
NOTIFICATIONS_FALLBACK_WITHIN_SECONDS = env.int("NOTIFICATIONS_FALLBACK_WITHIN_SECONDS", default=900)
# A `sending` row untouched this long belongs to a dead worker: the provider is asked before anything is re-sent.
NOTIFICATIONS_SENDING_STALE_SECONDS = env.int("NOTIFICATIONS_SENDING_STALE_SECONDS", default=120)
NOTIFICATIONS_QUIET_HOURS = env.str("NOTIFICATIONS_QUIET_HOURS", default="21:00-08:00")
# Each beat tick starts this many draining tasks (they share the work through row locks) ...
NOTIFICATIONS_DISPATCH_FANOUT = env.int("NOTIFICATIONS_DISPATCH_FANOUT", default=2)
# ... each claims batches of this size and hands them to providers with this many threads.
NOTIFICATIONS_BATCH_SIZE = env.int("NOTIFICATIONS_BATCH_SIZE", default=50)
NOTIFICATIONS_SEND_THREADS = env.int("NOTIFICATIONS_SEND_THREADS", default=8)
# Reminders before an appointment when its type has no plan of its own (minutes), and the video check-in message.
REMINDER_DEFAULT_OFFSETS_MINUTES: list[int] = [
    int(x) for x in env.list("REMINDER_DEFAULT_OFFSETS_MINUTES", default=["1440", "120"])
]
REMINDER_VIDEO_LINK_MINUTES = env.int("REMINDER_VIDEO_LINK_MINUTES", default=15)

# --- Identity, sessions, passwords -----------------------------------------------------------------------------
AUTH_USER_MODEL = "ehr.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=12 * 3600)
SESSION_COOKIE_NAME = "consulta_session"
# The SPA reads the CSRF cookie to echo it in X-CSRFToken, so it cannot be HttpOnly.
CSRF_COOKIE_HTTPONLY = False
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "core.api.errors.csrf_failure"

# django-axes: failed sign-ins are counted per username *and* client address, so one attacker cannot lock a
# user out from everywhere, and a success resets the count.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("LOGIN_COOLOFF_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler"
AXES_VERBOSE = False
AXES_ENABLE_ACCESS_FAILURE_LOG = False
AXES_IPWARE_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
AXES_LOCKOUT_CALLABLE = "ehr.api.auth.lockout_response"
# Log lines name clients by an opaque hash: usernames (often a patient's name) and addresses stay out of logs.
AXES_CLIENT_STR_CALLABLE = "ehr.api.auth.axes_client_str"

# --- HTTP security ---------------------------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- API ---------------------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["core.api.auth.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Consulta API",
    "DESCRIPTION": "Telemedicine-centred healthcare platform. Session cookie + CSRF authentication.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "ehr.models.identity.Role",
        "PatientStatusEnum": "ehr.models.patient.PatientStatus",
        "AdministrativeGenderEnum": "ehr.models.patient.AdministrativeGender",
        "EncounterModalityEnum": "ehr.models.clinical.EncounterModality",
        "EncounterStatusEnum": "ehr.models.clinical.EncounterStatus",
        "AppointmentModalityEnum": "scheduling.models.types.Modality",
        "ResourceKindEnum": "scheduling.models.resources.ResourceKind",
        "DeviceCheckResultEnum": "telehealth.api.serializers.DEVICE_CHECK_RESULTS",
        "CandidateTypeEnum": "telehealth.api.serializers.CANDIDATE_TYPES",
        "VisitStatusEnum": "telehealth.api.serializers.VISIT_STATUSES",
        "GuestRoleEnum": "telehealth.api.serializers.GUEST_ROLES",
        "MediaModeEnum": "telehealth.api.serializers.MEDIA_MODES",
        "MessageChannelEnum": "notifications.api.serializers.CHANNELS",
        "MessageStateEnum": "notifications.api.serializers.MESSAGE_STATES",
        "PreferenceChannelEnum": "notifications.api.serializers.PREFERENCE_CHANNELS",
    },
}

# --- Static files and the SPA ----------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
FRONTEND_DIST = env.path("FRONTEND_DIST", default=BASE_DIR / "frontend" / "dist")
STATICFILES_DIRS = [Path(FRONTEND_DIST)] if Path(FRONTEND_DIST).is_dir() else []
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Realtime spine -------------------------------------------------------------------------------------------
REALTIME_EVENT_RETENTION_DAYS = env.int("REALTIME_EVENT_RETENTION_DAYS", default=7)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Key of the audit log's HMAC chain (docs/audit.md). Falls back to a key derived from SECRET_KEY in the settings
# modules that define one; production should set it separately so rotating SECRET_KEY does not touch the chain.
AUDIT_CHAIN_KEY = env.str("AUDIT_CHAIN_KEY", default="")

# Field encryption of patient identifiers (docs/ehr.md): comma-separated Fernet keys, the first encrypts, all decrypt
# (rotate with `manage.py rotate_field_keys`). SEARCH_HASH_KEY keys the HMAC that makes identifiers searchable.
# local/test supply development-only values; production requires both from the environment.
FIELD_ENCRYPTION_KEYS: list[str] = env.list("FIELD_ENCRYPTION_KEYS", default=[])
SEARCH_HASH_KEY = env.str("SEARCH_HASH_KEY", default="")

# How long a break-the-glass grant lets a clinician into a record outside their care (docs/access.md).
BREAK_GLASS_MINUTES = env.int("BREAK_GLASS_MINUTES", default=240)

APP_VERSION = env.str("APP_VERSION", default="0.1.0")

# PHI never reaches logs: log ids, not bodies. Django's request logging prints paths only (no query values are
# PHI because PHI never travels in URLs).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # SQL with its parameters (PHI) is logged at DEBUG; never let a LOG_LEVEL=DEBUG run print it.
    "loggers": {
        "daphne": {"level": "WARNING"},
        "django.db.backends": {"level": "INFO"},
        # The Twilio SDK logs every request's parameters (phone numbers, message bodies) at INFO.
        "twilio": {"level": "WARNING"},
    },
}

# Documents of the clinical record (docs/documents.md): the files live outside the database under this directory,
# at paths derived only from a random key, and are served only by the access-checked content endpoint (never as
# static or media files). Production must point it at persistent storage that is backed up with the database
# (compose.yaml mounts the `documents` volume there).
DOCUMENT_STORAGE_ROOT = env.path("DOCUMENT_STORAGE_ROOT", default=BASE_DIR / ".data" / "documents")
DOCUMENT_MAX_BYTES = env.int("DOCUMENT_MAX_BYTES", default=10 * 1024 * 1024)
