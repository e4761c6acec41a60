"""Settings for the test suite; the stores themselves are started by ``conftest.py``."""

from __future__ import annotations

import tempfile

SECRET_KEY = "agenthub-cache-tests"
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "agenthub_cache"]
_TMP = tempfile.mkdtemp(prefix="agenthub-cache-tests-")
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": f"{_TMP}/test.sqlite3",
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
        "TEST": {"NAME": f"{_TMP}/test.sqlite3"},
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
