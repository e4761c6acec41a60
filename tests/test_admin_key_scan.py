"""The admin's key pages on a large shared Redis: the work of one page view is bounded.

SCAN filters by the namespace's prefix on the server, so a prefix with few keys in a database of
many others would make one page view walk it all; a page stops after ``MAX_SCAN_CALLS`` calls.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis
from django.contrib.auth.models import User
from django.test.utils import override_settings

from agenthub_cache import admin_data, namespaces
from tests import servers
from tests.conftest import unique_namespace
from tests.test_admin import client_for, url, users

pytestmark = pytest.mark.django_db

__all__ = ["users"]  # the fixture, used here


#: A Redis database of the suite's private server that only this test uses.
SHARED_DB = 9
FOREIGN_KEYS = 30_000


def scan_calls(client: redis.Redis) -> int:
    return int(client.info("commandstats").get("cmdstat_scan", {}).get("calls", 0))


def test_a_key_page_on_a_large_shared_redis_stops_within_its_bound(
    stores: dict[str, Any],
    redis_server: servers.Server,
    users: dict[str, User | None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A prefix that matches nothing in a database of many other keys: the page stops after
    MAX_SCAN_CALLS SCAN calls (counted by the server) and says so, instead of walking it all."""
    client = redis.Redis.from_url(f"{redis_server.url}/{SHARED_DB}")
    client.flushdb()  # our own server, and a database no other test uses
    with client.pipeline(transaction=False) as pipe:
        for start in range(0, FOREIGN_KEYS, 1000):
            pipe.mset({f"someone-else:{i}": b"x" for i in range(start, start + 1000)})
        pipe.execute()
    name = unique_namespace("adm")
    shared = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": client_url(client)}
    setting = {"NAMESPACES": {name: {"TTL": 60, "CACHE": "shared"}}}
    try:
        with override_settings(CACHES={**stores, "shared": shared}, AGENTHUB_CACHE=setting):
            for i in range(3):
                namespaces[name].set(f"k{i}", i)
            browser = client_for(users["staff, view"])
            monkeypatch.setattr(admin_data, "MAX_SCAN_CALLS", 5)
            before = scan_calls(client)
            page = browser.get(url("detail", name), {"prefix": "no-such-prefix"})
            assert scan_calls(client) - before == 5
            assert page.context["key_page"].stopped
            assert page.context["key_page"].examined == 5 * 1000
            assert "next_url" not in page.context
            assert 'id="scan-stopped"' in page.content.decode()
            # With the default bound (100 calls) this database is walked to its end.
            monkeypatch.undo()
            before = scan_calls(client)
            whole = browser.get(url("detail", name), {"prefix": "k"})
            assert 5 < scan_calls(client) - before <= admin_data.MAX_SCAN_CALLS
            assert not whole.context["key_page"].stopped
            assert sorted(k for k, _, _ in whole.context["keys"]) == ["k0", "k1", "k2"]
            assert 'id="scan-stopped"' not in whole.content.decode()
    finally:
        client.flushdb()


def client_url(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs['db']}"
