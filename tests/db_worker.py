"""A separate process hammering the SQLite DatabaseCache (run by test_db_cross_process)."""

from __future__ import annotations

import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

from agenthub_cache import CacheService  # noqa: E402


def main(namespace: str, worker: int, rounds: int) -> None:
    db = {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": os.environ["AGENTHUB_CACHE_TEST_TABLE"],
        "OPTIONS": {"MAX_ENTRIES": 10_000_000},
    }
    with override_settings(CACHES={**settings.CACHES, "db": db}):
        service = CacheService(namespace, default_ttl=300, cache="db")
        won = 0
        for i in range(rounds):
            service.incr("counter")
            # every worker re-files the same keys under its own value: last writer wins
            service.set(f"shared-{i % 5}", worker, indexes={"owner": str(worker)})
            if service.pop(f"token-{i}") is not None:
                won += 1
        print(won)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
