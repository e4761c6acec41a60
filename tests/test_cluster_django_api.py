"""``caches["cluster"]`` as a plain Django cache on the test cluster: the BaseCache API, sync
and async, keys spread over every primary."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import caches
from django.test.utils import override_settings

from tests import servers
from tests.conftest import cluster_cache_settings

pytestmark = pytest.mark.extended


@pytest.fixture
def cache(stores: dict[str, Any], redis_cluster: servers.Cluster) -> Iterator[Any]:
    """An alias of its own (KEY_PREFIX "djapi"), so that ``clear()`` reaches only its keys."""
    configured = {**stores, "djapi": cluster_cache_settings(redis_cluster, KEY_PREFIX="djapi")}
    with override_settings(CACHES=configured):
        backend = caches["djapi"]
        yield backend
        backend.delete_many([*(f"dj:{n}" for n in range(200)), "dj:n", "dj:t", "dj:a"])


def test_django_cache_api(cache: Any) -> None:
    assert cache.get("dj:a") is None
    assert cache.add("dj:a", {"v": 1}) is True
    assert cache.add("dj:a", 2) is False
    assert cache.get("dj:a") == {"v": 1}
    cache.set("dj:n", 5)
    assert cache.incr("dj:n", 3) == 8
    assert cache.decr("dj:n") == 7
    with pytest.raises(ValueError, match="not found"):
        cache.incr("dj:missing")
    data = {f"dj:{n}": n for n in range(200)}  # over every slot range
    assert cache.set_many(data) == []
    assert cache.get_many([*data, "dj:nope"]) == data
    cache.delete_many([f"dj:{n}" for n in range(100)])
    assert cache.get_many(list(data)) == {f"dj:{n}": n for n in range(100, 200)}
    assert cache.has_key("dj:150")
    assert cache.delete("dj:150") is True
    assert cache.delete("dj:150") is False
    cache.set("dj:t", "short", timeout=1)
    assert cache.touch("dj:t", timeout=60) is True
    assert cache.touch("dj:missing") is False
    cache.set("dj:gone", 1, timeout=0)
    assert cache.get("dj:gone") is None
    time.sleep(1.3)
    assert cache.get("dj:t") == "short"


def test_clear_deletes_this_alias_prefix_only(cache: Any) -> None:
    client = cache.client
    client.set("not-prefixed-canary", b"keep")
    cache.set_many({f"dj:{n}": n for n in range(50)})
    try:
        cache.clear()
        assert cache.get_many([f"dj:{n}" for n in range(50)]) == {}
        assert client.get("not-prefixed-canary") == b"keep"
    finally:
        client.delete("not-prefixed-canary")


async def test_django_async_api(cache: Any) -> None:
    assert await cache.aadd("dj:a", 1) is True
    assert await cache.aadd("dj:a", 2) is False
    await cache.aset("dj:n", {"x": 1})
    assert await cache.aget("dj:n") == {"x": 1}
    assert await cache.ahas_key("dj:n")
    await cache.aset_many({f"dj:{n}": n for n in range(20)})
    assert await cache.aget_many([f"dj:{n}" for n in range(20)]) == {
        f"dj:{n}": n for n in range(20)
    }
    assert await cache.adelete("dj:n") is True
    assert await cache.aget("dj:n", "dflt") == "dflt"
