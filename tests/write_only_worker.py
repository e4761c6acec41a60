"""A process that only writes to a namespace (run by test_write_only_process.py).

It reads commands from stdin, one a line, and answers each on stdout: ``set KEY VALUE`` sets
the entry (no read of the namespace in between) and prints what ``set`` returned.
"""

from __future__ import annotations

import json
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

from agenthub_cache import CacheService  # noqa: E402


def main(namespace: str, alias: str) -> None:
    configured = json.loads(os.environ["AGENTHUB_CACHE_TEST_CACHE"])
    with override_settings(CACHES={**settings.CACHES, alias: configured}):
        service = CacheService(namespace, default_ttl=300, cache=alias)
        for line in sys.stdin:
            command, key, value = line.split()
            assert command == "set", command
            print(service.set(key, value), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
