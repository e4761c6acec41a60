"""``caches["cluster"]`` as a plain Django cache on the test cluster: the BaseCache API, sync
and async, keys spread over every primary."""

from __future__ import annotations

import contextlib
import threading
import time
import types
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


#: The sync methods a Django backend's async twin may hop to a thread for (BaseCache does,
#: for each one the backend overrides, and always for clear/close).
SYNC_TWINS = ["add", "get", "set", "touch", "delete", "get_many", "has_key", "incr", "decr"]
SYNC_TWINS += ["set_many", "delete_many", "clear", "close", "get_or_set"]


async def test_async_methods_run_on_the_async_client(cache: Any, monkeypatch: Any) -> None:
    """Every a* method of the backend runs on redis.asyncio's RedisCluster, on the loop: none
    calls its sync twin (Django's fallback runs it in a worker thread). aset_many,
    adelete_many, atouch, aincr, adecr, aclear, aclose and aget_or_set did."""
    called: list[tuple[str, int]] = []

    def refuse(name: str) -> Any:
        def sync_twin(self: Any, *args: Any, **kwargs: Any) -> Any:
            called.append((name, threading.get_ident()))
            raise AssertionError(f"{name}() ran for its async twin")

        return types.MethodType(sync_twin, cache)

    with monkeypatch.context() as patched:
        for name in SYNC_TWINS:
            patched.setattr(cache, name, refuse(name))
        client = cache.client
        await cache.aset_many({f"dj:{n}": n for n in range(20)}, timeout=30)
        assert await cache.aget_many([f"dj:{n}" for n in range(20)]) == {
            f"dj:{n}": n for n in range(20)
        }
        assert 0 < client.pttl(cache.make_key("dj:7")) <= 30_000
        await cache.adelete_many([f"dj:{n}" for n in range(10)])
        assert await cache.aget_many([f"dj:{n}" for n in range(12)]) == {"dj:10": 10, "dj:11": 11}
        assert await cache.atouch("dj:10", timeout=None) is True
        assert client.pttl(cache.make_key("dj:10")) == -1
        assert await cache.atouch("dj:11", timeout=0) is True
        assert await cache.aget("dj:11") is None
        assert await cache.atouch("dj:missing") is False
        assert await cache.aincr("dj:12", 5) == 17
        assert await cache.adecr("dj:12", 2) == 15
        with pytest.raises(ValueError, match="not found"):
            await cache.aincr("dj:missing")
        assert await cache.aget_or_set("dj:n", lambda: {"made": 1}) == {"made": 1}
        assert await cache.aget_or_set("dj:n", "other") == {"made": 1}
        client.set("not-prefixed-canary-a", b"keep")
        try:
            await cache.aclear()  # this alias's KEY_PREFIX only
            assert await cache.aget_many([f"dj:{n}" for n in range(20)]) == {}
            assert client.get("not-prefixed-canary-a") == b"keep"
        finally:
            client.delete("not-prefixed-canary-a")
        await cache.aclose()
        assert called == []


def test_incr_keeps_the_ttl_and_never_recreates_a_vanished_key(cache: Any) -> None:
    """incr() is one step on the server. It was EXISTS then INCRBY: a key that expired in
    between came back as ``delta`` with no TTL, and no ValueError. The expiry is forced into
    that window by deleting the key whenever the client has just asked whether it exists."""
    cache.set("dj:n", 10, timeout=60)
    assert cache.incr("dj:n", 5) == 15
    assert 0 < cache.client.pttl(cache.make_key("dj:n")) <= 60_000  # TTL kept
    stored = cache.make_key("dj:t")
    client = cache.client
    original = client.exists

    def expire_after_exists(*names: Any) -> Any:
        reply = original(*names)
        client.delete(stored)  # it expires right now
        return reply

    cache.set("dj:t", 1, timeout=60)
    client.exists = expire_after_exists
    try:
        with contextlib.suppress(ValueError):  # it expired: Django's answer for a missing key
            cache.incr("dj:t")
    finally:
        del client.exists
    assert client.exists(stored) == 0 or client.pttl(stored) > 0, "re-created without TTL"
