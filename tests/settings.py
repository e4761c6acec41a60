"""Settings for the test suite; the stores themselves are started by ``conftest.py``."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

SECRET_KEY = "agenthub-cache-tests"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "django.contrib.staticfiles",  # the admin's CSS, served by live_server in the browser tests
    "agenthub_cache",
]
STATIC_URL = "static/"
# The admin pages (tests/test_admin*.py): admin.site at /admin/, a custom site at /custom-admin/.
ROOT_URLCONF = "tests.urls"
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
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
# Fast password hashing: the admin tests log users in many times.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Worker processes of the cross-process tests open the parent's database file, named in this
# variable (``shared_database``): the file itself, as pytest-django names it per xdist worker.
_DATABASE = os.environ.get("AGENTHUB_CACHE_TEST_DB") or ""
if not _DATABASE:  # this process made it, so this process removes it (a run leaves nothing in /tmp)
    _TMP = tempfile.mkdtemp(prefix="agenthub-cache-tests-")
    atexit.register(shutil.rmtree, _TMP, ignore_errors=True)
    _DATABASE = f"{_TMP}/test.sqlite3"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": _DATABASE,
        "OPTIONS": {"timeout": 20},  # deferred (Django's default): the lock row must serialize
        "TEST": {"NAME": _DATABASE},
    }
}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "agenthub-default",
        "OPTIONS": {"MAX_ENTRIES": 1_000_000},
    },
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
