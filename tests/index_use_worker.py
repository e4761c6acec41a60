"""A process that re-sets one key without indexes (run by test_index_use_processes.py).

It reads commands from stdin, one a line, and answers each on stdout:

* ``run NAMESPACE STOPFILE``: set ``K`` without indexes once, print ``ready`` and whether this
  process now skips the "is it filed?" check (``never_indexed``), then set ``K`` again and
  again until STOPFILE exists; the set after it saw the file is the last. Prints ``done N``.
* ``trusts NAMESPACE``: print whether an unindexed write would skip the check now.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

from agenthub_cache import CacheService  # noqa: E402


def trusts(service: CacheService) -> bool:
    provider: Any = service.provider
    return bool(provider.never_indexed(provider.cached_scope()))


def run(service: CacheService, stopfile: str) -> int:
    service.set("K", "plain-0")
    print("ready", trusts(service), flush=True)
    i = 0
    while True:
        stopping = os.path.exists(stopfile)
        i += 1
        service.set("K", f"plain-{i}")
        if stopping:
            return i


def main(alias: str) -> None:
    configured = json.loads(os.environ["AGENTHUB_CACHE_TEST_CACHE"])
    with override_settings(CACHES={**settings.CACHES, alias: configured}):
        for line in sys.stdin:
            command, namespace, *rest = line.split()
            service = CacheService(namespace, default_ttl=300, cache=alias)
            if command == "run":
                print("done", run(service, rest[0]), flush=True)
            else:
                assert command == "trusts", command
                print(trusts(service), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
