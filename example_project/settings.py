"""Settings of the example site. Not for production: DEBUG is on and the secret key is public.

Environment variables:

``AGENTHUB_CACHE_BACKEND``
    ``db`` (the default): Django's ``DatabaseCache`` on the site's SQLite file, which every
    process of the site shares, so ``manage.py cache_namespaces`` in a second terminal sees what
    the server stored. ``redis``: django-redis at ``REDIS_URL`` (needs the ``redis`` extra).
    ``memcached``: pymemcache at ``MEMCACHED_LOCATION`` (needs the ``memcached`` extra).
``EXAMPLE_DATA_DIR``
    Where the SQLite file lives (default ``example_project/var/``).
``EXAMPLE_SECRET_KEY``, ``EXAMPLE_DEBUG`` (``0`` turns DEBUG off), ``EXAMPLE_ALLOWED_HOSTS``
    (comma-separated).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import django
from django.core.exceptions import ImproperlyConfigured

HERE = Path(__file__).resolve().parent
DATA_DIR = Path(os.environ.get("EXAMPLE_DATA_DIR") or HERE / "var")

SECRET_KEY = os.environ.get("EXAMPLE_SECRET_KEY", "django-insecure-agenthub-cache-example-only")
DEBUG = os.environ.get("EXAMPLE_DEBUG", "1") != "0"
ALLOWED_HOSTS = os.environ.get("EXAMPLE_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")

INSTALLED_APPS = [
    # The admin at /admin/ shows the namespaces (``manage.py createsuperuser`` first).
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "agenthub_cache",
    "example_project.signups",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
STATIC_URL = "static/"
ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "example.sqlite3",
        "OPTIONS": {
            # Take the write lock when a transaction starts, so that the index bookkeeping of
            # two processes queues up instead of failing with "database is locked".
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            # Readers (the namespaces page, the management command) never wait for a writer.
            "init_command": "PRAGMA journal_mode=WAL;",
        },
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def cache_settings(backend: str) -> dict[str, Any]:
    """The ``default`` cache for ``AGENTHUB_CACHE_BACKEND``."""
    if backend == "db":
        # The index records of a namespace are cache rows too: a low MAX_ENTRIES would let
        # Django's culling delete them, so keep it far above what the site stores.
        return {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "example_cache",
            "OPTIONS": {"MAX_ENTRIES": 1_000_000},
        }
    if backend == "redis":
        return {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            "KEY_PREFIX": "example",
        }
    if backend == "memcached":
        return {
            "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
            "LOCATION": os.environ.get("MEMCACHED_LOCATION", "127.0.0.1:11211"),
            "KEY_PREFIX": "example",
            # An outage is an error on every call, not a second of silent misses (W004).
            "OPTIONS": {"retry_attempts": 0, "dead_timeout": 5},
        }
    raise ImproperlyConfigured(
        f"AGENTHUB_CACHE_BACKEND={backend!r} is not one of 'db' (the default), 'redis', 'memcached'."
    )


CACHES = {"default": cache_settings(os.environ.get("AGENTHUB_CACHE_BACKEND") or "db")}

AGENTHUB_CACHE = {
    "CACHE": "default",
    "DEFAULT_TTL": 900,
    "NAMESPACES": {
        "confirmation": {"TTL": 300},
        "signup": {"TTL": 1800},
        "session": {"TTL": 86400, "SENSITIVE": True},
        "rate_limit": {"TTL": 3600},
        "temp": {"TTL": 60, "FAIL_SILENTLY": True},
    },
}

#: Signup attempts (form posts) allowed per client IP address in each 60-second window.
SIGNUP_ATTEMPTS_PER_MINUTE = 5

# The confirmation "email" is printed in the runserver terminal. Django 6.1 replaced
# EMAIL_BACKEND by MAILERS (and warns about the old setting).
_CONSOLE_MAIL = "django.core.mail.backends.console.EmailBackend"
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": _CONSOLE_MAIL}}
else:
    EMAIL_BACKEND = _CONSOLE_MAIL
DEFAULT_FROM_EMAIL = "signups@example.invalid"

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
