"""Settings, read from the environment (django-environ).

With no environment at all the console runs on the *embedded default*: SQLite under var/ and
Celery's filesystem transport under var/. Set DATABASE_URL, CELERY_BROKER_URL and REDIS_URL to run
on PostgreSQL and Redis (production and the test suite).
"""

import hashlib
import ipaddress
from pathlib import Path

import environ
from celery.schedules import crontab
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env(
    DEBUG=(bool, False),
    ALLOWED_HOSTS=(list, ["localhost", "127.0.0.1", "[::1]", "testserver"]),
    SECURE_SSL_REDIRECT=(bool, True),
)

DEBUG = env("DEBUG")
_DEV_ONLY_SECRET = "django-insecure-dev-only-key-set-SECRET_KEY-in-production"
SECRET_KEY = env.str("SECRET_KEY", default="") or _DEV_ONLY_SECRET


def _weak_secret_key(key: str) -> str:
    """Why ``key`` must not sign anything in production ("" when it may): the same rules as Django's
    security.W009, plus the development default, which is published with the code."""
    if key == _DEV_ONLY_SECRET:
        return "SECRET_KEY is missing or is the development default (published with the code)"
    if key.startswith("django-insecure"):
        return "SECRET_KEY starts with 'django-insecure'"
    if len(key) < 50:
        return f"SECRET_KEY is too short ({len(key)} characters, at least 50 needed)"
    if len(set(key)) < 5:
        return "SECRET_KEY has fewer than 5 different characters"
    return ""


# Anyone holding the key can forge opt-out links and tracked-link tokens, so with DEBUG off the
# product refuses to start on a missing, weak or published key instead of falling back to one.
if not DEBUG and (_weakness := _weak_secret_key(SECRET_KEY)):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        f"{_weakness}. With DEBUG off the console refuses to start on a weak or published key: set "
        "SECRET_KEY in the environment to a long random value, for example the output of "
        "python -c 'import secrets; print(secrets.token_urlsafe(64))' (or set DEBUG=1 for development)."
    )
ALLOWED_HOSTS = env("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "config.apps.PlatformAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_htmx",
    "template_partials",
    "phonenumber_field",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "audit",
    "accounts",
    "campaigns",
    "messaging",
    "devtools",
]

MIDDLEWARE = [
    "config.middleware.RequestLogContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
    "accounts.middleware.MemberSessionMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "console.context_processors.console_shell",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
# The embedded default is SQLite in WAL mode with IMMEDIATE transactions (writers queue on the
# busy timeout instead of failing with "database is locked" on upgrade from a read lock).
SQLITE_PATH = VAR_DIR / "console.sqlite3"
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{SQLITE_PATH}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 60,
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
EMBEDDED = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": env.int("PASSWORD_MIN_LENGTH", default=10)}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = 1  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_LOCKOUT_TEMPLATE = "registration/lockout.html"
# The second step's code field (accounts.views.two_factor) is masked in stored attempts too.
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "otp_code"]

# Two-factor sign-in (accounts.two_factor): TOTP from django-otp; the issuer names us in the app.
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="+Message Console")
# A sign-in that passed the password step must finish the second step within this many seconds.
TWO_FACTOR_PENDING_SECONDS = 600

# --- Internationalisation ---------------------------------------------------------------------
LANGUAGE_CODE = "ja"
LANGUAGES = [("ja", _("Japanese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Tokyo"
USE_I18N = True
USE_TZ = True
PHONENUMBER_DEFAULT_REGION = "JP"
PHONENUMBER_DB_FORMAT = "E164"

# --- Static and media -------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
# Contact import files and files people send us: never below MEDIA_ROOT, never under a URL; served
# only by views that check the member (core.private_files).
PRIVATE_MEDIA_ROOT = Path(env.str("PRIVATE_MEDIA_ROOT", default=str(VAR_DIR / "private")))
if PRIVATE_MEDIA_ROOT.resolve().is_relative_to(MEDIA_ROOT.resolve()) or MEDIA_ROOT.resolve().is_relative_to(
    PRIVATE_MEDIA_ROOT.resolve()
):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("PRIVATE_MEDIA_ROOT and MEDIA_ROOT must not contain one another: MEDIA_ROOT is public.")
# An import file whose job never ran (or a file no job owns) is deleted after this many hours.
IMPORT_FILE_MAX_AGE_HOURS = env.float("IMPORT_FILE_MAX_AGE_HOURS", default=24.0)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "private": {"BACKEND": "core.private_files.PrivateStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG and not env.bool("TESTING", default=False)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024  # larger uploads stream to a temporary file
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# --- E-mail (invitations, password resets, webhook alerts) -------------------------------------
# Production: SMTP from EMAIL_URL (django-environ, e.g. smtp+tls://user:password@smtp.example.jp:587)
# or EMAIL_HOST / EMAIL_PORT / EMAIL_HOST_USER / EMAIL_HOST_PASSWORD / EMAIL_USE_TLS / EMAIL_USE_SSL.
# With neither, the embedded default and DEBUG write each message to a file under var/mail/ (the
# path `make run` prints), so invitations work with no mail server; production without either uses
# Django's SMTP default (localhost:25).
EMAIL_FILE_PATH = str(VAR_DIR / "mail")
if env.str("EMAIL_URL", default=""):
    _email = env.email_url("EMAIL_URL")
    EMAIL_BACKEND = _email["EMAIL_BACKEND"]
    EMAIL_HOST = _email["EMAIL_HOST"] or "localhost"
    EMAIL_PORT = _email["EMAIL_PORT"] or (465 if _email.get("EMAIL_USE_SSL") else 587)
    EMAIL_HOST_USER = _email["EMAIL_HOST_USER"] or ""
    EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_PASSWORD"] or ""
    EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS"))
    EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL"))
    if _email.get("EMAIL_FILE_PATH"):
        EMAIL_FILE_PATH = _email["EMAIL_FILE_PATH"]
elif env.str("EMAIL_HOST", default=""):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = env.str("EMAIL_HOST")
    EMAIL_PORT = env.int("EMAIL_PORT", default=587)
    EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
    EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
    EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=not env.bool("EMAIL_USE_SSL", default=False))
    EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
elif DEBUG or EMBEDDED:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="+Message Console <no-reply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Team access (accounts.invitations, accounts.sessions, accounts.views.password_reset).
INVITATION_MAX_AGE_DAYS = env.int("INVITATION_MAX_AGE_DAYS", default=7)
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=3600)  # the link works one hour
# Password-reset requests per hour: from one client address, and for one e-mail address.
PASSWORD_RESET_LIMIT_PER_IP = env.int("PASSWORD_RESET_LIMIT_PER_IP", default=10)
PASSWORD_RESET_LIMIT_PER_ADDRESS = env.int("PASSWORD_RESET_LIMIT_PER_ADDRESS", default=3)

# --- Celery -----------------------------------------------------------------------------------
CELERY_DATA_DIR = VAR_DIR / "celery"
_default_broker = "filesystem://"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=_default_broker)
if CELERY_BROKER_URL.startswith("filesystem://"):
    # Our own filesystem transport: kombu's writes a message file in place, so a worker can read
    # it half-written and die (config/broker.py says how ours never loses or corrupts a message).
    CELERY_BROKER_TRANSPORT = "config.broker:Transport"
    for sub in ("queue", "processed", "control"):
        (CELERY_DATA_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_DATA_DIR / "queue"),
        "data_folder_out": str(CELERY_DATA_DIR / "queue"),
        "processed_folder": str(CELERY_DATA_DIR / "processed"),
        "control_folder": str(CELERY_DATA_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.05,
    }
else:
    # Longer than any ETA we ever set, so a delayed task is never delivered twice.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6 * 3600}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_ENABLE_UTC = True
# django-celery-beat's database scheduler, which also records the beat heartbeat (config/beat.py).
CELERY_BEAT_SCHEDULER = "config.beat:Scheduler"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup would close the database connection around every task; with this set it
# does so only once per this many tasks, and config/celery.py applies CONN_MAX_AGE instead.
CELERY_DB_REUSE_MAX = 1_000

# Redis holds the shared, short-lived state (token buckets, capability cache). Empty on the
# embedded default, where the same code uses the database instead.
REDIS_URL = env.str("REDIS_URL", default="")
# Test sends (and test-number confirmation codes) one member may send per clock hour (messaging.test_sends).
TEST_SEND_LIMIT_PER_HOUR = env.int("TEST_SEND_LIMIT_PER_HOUR", default=20)

# --- REST framework ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "api.schema.ApiSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "api.errors.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {"api_key": env.str("API_KEY_RATE", default="50/second")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "+Message broadcast console API",
    "VERSION": "1.0.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Nothing from the internet: no validator badge (validator.swagger.io), system fonts in ReDoc
    # (its default theme asks for Montserrat and Roboto from Google Fonts; templates/api/ drops the links),
    # and ReDoc's menu starts below the bar that leads back to the console (44 px).
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "REDOC_UI_SETTINGS": {
        "scrollYOffset": 44,
        "theme": {
            "typography": {
                "fontFamily": 'system-ui, -apple-system, "Hiragino Sans", "Yu Gothic UI", "Noto Sans JP", sans-serif',
                "headings": {"fontFamily": 'system-ui, -apple-system, "Hiragino Sans", "Noto Sans JP", sans-serif'},
            }
        },
    },
    "DESCRIPTION": "Transactional sends with automatic SMS fallback, contacts, lists, campaigns and signed webhooks. "
    "Authenticate with `Authorization: Bearer <API key>`; errors are always `{code, message, field}`.",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_INCLUDE_SCHEMA": False,
    "ENUM_NAME_OVERRIDES": {"ClassificationEnum": "campaigns.models.Classification"},
}

# --- Security ---------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # HTMX reads the token from the page, not the cookie
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_SSL_REDIRECT = env("SECURE_SSL_REDIRECT")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Egress guard (core.egress) ----------------------------------------------------------------
# Every server-side request (outbound webhooks, inbound media) goes through core.egress. Loopback
# (127.0.0.0/8, ::1) is reachable only with EGRESS_ALLOW_LOOPBACK, for the local sandbox carrier in
# development and the tests; never set it in production. Private and link-local stay refused anyway.
EGRESS_ALLOW_LOOPBACK = env.bool("EGRESS_ALLOW_LOOPBACK", default=False)
EGRESS_CONNECT_TIMEOUT = env.float("EGRESS_CONNECT_TIMEOUT", default=5.0)
EGRESS_TIMEOUT = env.float("EGRESS_TIMEOUT", default=15.0)

# --- Product settings -------------------------------------------------------------------------
# The URL the sandbox carrier (and real gateways) post webhooks back to.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")
SANDBOX_URL = env.str("SANDBOX_URL", default="http://127.0.0.1:8025")

# --- Logs (core.logs) ------------------------------------------------------------------------------
# Every logger (ours, Django's, Celery's, uvicorn's) writes through one handler on stderr: one JSON
# object per line (LOG_FORMAT=json, the default without DEBUG) or one readable line (console, the
# default with DEBUG). Phone numbers become a salted hash; the salt is derived from SECRET_KEY.
LOG_FORMAT = env.str("LOG_FORMAT", default="console" if DEBUG else "json")
if LOG_FORMAT not in ("json", "console"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"LOG_FORMAT must be json or console, not {LOG_FORMAT!r}.")
_LOG_SALT = hashlib.sha256(b"core.logs.mask_phones:" + SECRET_KEY.encode()).hexdigest()
_PROPAGATE_TO_ROOT = {"handlers": [], "propagate": True}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "structured": {
            "()": "core.logs.JsonFormatter" if LOG_FORMAT == "json" else "core.logs.ConsoleFormatter",
            "salt": _LOG_SALT,
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},  # stderr
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Django's and uvicorn's own handlers (plain text) would write each record a second time.
        "django": {**_PROPAGATE_TO_ROOT, "level": "INFO"},
        "django.server": _PROPAGATE_TO_ROOT,
        "uvicorn": _PROPAGATE_TO_ROOT,
        "uvicorn.error": _PROPAGATE_TO_ROOT,
        # Off: it writes the raw path, which may hold a secret; config.middleware logs each request.
        "uvicorn.access": {"handlers": [], "propagate": False},
    },
}

# --- Fan-out engine ---------------------------------------------------------------------------
GATEWAY_TIMEOUT_SECONDS = env.float("GATEWAY_TIMEOUT_SECONDS", default=10.0)
DISPATCH_CHAINS = env.int("DISPATCH_CHAINS", default=2)
AUTO_PAUSE_ERROR_RATE = env.float("AUTO_PAUSE_ERROR_RATE", default=0.5)  # 0 disables
AUTO_PAUSE_MIN_BATCH = env.int("AUTO_PAUSE_MIN_BATCH", default=50)
# Gateway failover (core/gateway_health.py): after this many failed requests in a row (5xx, timeouts,
# connection errors) an SMS gateway is "down" and SMS legs go through the official account's backup
# gateway; after the cool-off, one probe batch tries the primary again.
GATEWAY_FAILOVER_ERRORS = env.int("GATEWAY_FAILOVER_ERRORS", default=20)
GATEWAY_FAILOVER_COOLOFF_SECONDS = env.float("GATEWAY_FAILOVER_COOLOFF_SECONDS", default=60.0)
TTL_GRACE_SECONDS = env.int("TTL_GRACE_SECONDS", default=30)
# A claimed batch must be recorded within its lease, or others may claim it again (same ids).
DELIVERY_LEASE_SECONDS = env.int("DELIVERY_LEASE_SECONDS", default=60)
# A running campaign with no dispatch for this long gets its chains restarted by the sweeper.
DISPATCH_STALE_SECONDS = env.int("DISPATCH_STALE_SECONDS", default=30)
# A promotion held by quiet hours looks again this often at most (a changed window takes effect
# within it); a campaign's chain also within half of DISPATCH_STALE_SECONDS. Always far below the
# broker's visibility timeout, so a held task is never delivered twice.
QUIET_HOURS_RECHECK_SECONDS = env.float("QUIET_HOURS_RECHECK_SECONDS", default=60.0)
# Carrier limits at or below this many sends per second are kept to the slot (see messaging.engine.send._at_slot).
STRICT_RATE_BELOW = env.int("STRICT_RATE_BELOW", default=1000)
# While campaigns and single messages (the priority lane) send through one gateway account, single
# messages get this share of its rate; either alone gets all of it (see core.throttle).
PRIORITY_RATE_SHARE = env.float("PRIORITY_RATE_SHARE", default=0.2)
# CPU time by engine stage (core/stage_cpu.py): off when empty; the benchmarks set it to the role
# of each process they start.
STAGE_CPU = env.str("STAGE_CPU", default="")
LANE_IDLE_SECONDS = env.float("LANE_IDLE_SECONDS", default=2.0)
# Stored receipts are handed to the workers in one apply task per web process and this many seconds.
WEBHOOK_ENQUEUE_INTERVAL = env.float("WEBHOOK_ENQUEUE_INTERVAL", default=0.2)
CELERY_TASK_ROUTES = {
    "messaging.tasks.send_message": {"queue": "priority"},
}
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_BEAT_SCHEDULE = {
    "messaging-sweep": {"task": "messaging.tasks.sweep", "schedule": env.float("SWEEP_SECONDS", default=15.0)},
    "messaging-fold-counters": {"task": "messaging.tasks.fold_counters", "schedule": 5.0},
    "messaging-sweep-webhooks": {"task": "messaging.tasks.sweep_webhooks", "schedule": 60.0},
    # A worker of each queue shows it is alive (read by /readyz); a heartbeat older than its expiry
    # is dropped, so a fresh one also proves the beat scheduler sent it recently.
    "heartbeat-celery": {"task": "messaging.tasks.heartbeat", "schedule": 15.0, "args": ["celery"],
                         "options": {"queue": "celery", "expires": 30}},
    "heartbeat-priority": {"task": "messaging.tasks.heartbeat", "schedule": 15.0, "args": ["priority"],
                           "options": {"queue": "priority", "expires": 30}},
    # Data retention (messaging.retention), once a day at 03:30 Japan time (CELERY_TIMEZONE).
    "messaging-retention": {"task": "messaging.tasks.apply_retention",
                            "schedule": crontab(hour=env.int("RETENTION_HOUR", default=3), minute=30)},
    "campaigns-sweep-import-files": {"task": "campaigns.sweep_import_files", "schedule": 3600.0},
}
# /readyz: the beat and worker heartbeats must be this recent, the receipts waiting at most this many.
READY_HEARTBEAT_SECONDS = env.int("READY_HEARTBEAT_SECONDS", default=60)
READY_RECEIPT_BACKLOG_MAX = env.int("READY_RECEIPT_BACKLOG_MAX", default=50_000)
# /metrics (console/metrics.py): answered to these networks (the peer address), or to a client that
# presents "Authorization: Bearer <METRICS_TOKEN>"; anyone else gets 404. Empty token = none accepted.
# Parsed here, so a mistyped network stops the start instead of failing each scrape.
METRICS_ALLOWED_NETWORKS = [
    str(ipaddress.ip_network(network.strip(), strict=False))
    for network in env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"])
    if network.strip()  # set it empty to allow no network (the token only)
]
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
