"""``NamespaceCache``: a namespace behind Django's cache API, on real stores.

Django's own cache test suite runs against it in ``python -m tests.django_cache_suite``; these
are the app's own promises on top: the namespace's TTL as the default timeout, ``clear()``
reaching the namespace alone, the failure policy, sessions and ``cache_page``, the keys and
timeouts Django takes (its checks: test_namespace_cache_checks.py).
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.sessions.backends.cache import SessionStore
from django.core.cache import caches
from django.core.cache.backends.base import CacheKeyWarning
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory
from django.test.utils import override_settings
from django.views.decorators.cache import cache_page

from agenthub_cache import CacheUnavailable, namespaces
from agenthub_cache.backends import NamespaceCache
from agenthub_cache.backends.namespace import HASHED_KEY_MARK
from agenthub_cache.testing import CacheClock
from tests import servers
from tests.conftest import unique_namespace

BACKEND = "agenthub_cache.backends.NamespaceCache"
#: Stores a namespace behind a NamespaceCache is tested on.
STORES = ["locmem", "db", "redis", "redis_django", "files", "memcached"]


@pytest.fixture(params=STORES)
def adapter(request: pytest.FixtureRequest, stores: dict[str, Any]) -> Iterator[NamespaceCache]:
    """``caches["adapted"]``: a NamespaceCache on a fresh namespace (TTL 120) of one store,
    beside a second namespace ``other`` on the same store."""
    if request.param not in stores:
        pytest.skip(f"{request.param} is not installed; its NamespaceCache tests did not run")
    name, other = unique_namespace("nc"), unique_namespace("other")
    setting = {
        "CACHE": request.param,
        "NAMESPACES": {name: {"TTL": 120}, other: {"TTL": 120}},
    }
    adapted = {"BACKEND": BACKEND, "LOCATION": name}
    with override_settings(CACHES={**stores, "adapted": adapted}, AGENTHUB_CACHE=setting):
        cache = caches["adapted"]
        assert isinstance(cache, NamespaceCache)
        yield cache
        namespaces[name].clear()
        namespaces[other].clear()


def other_namespace(cache: NamespaceCache) -> str:
    return next(name for name in namespaces if name != cache.namespace)


def test_default_timeout_is_the_namespace_ttl(adapter: NamespaceCache) -> None:
    adapter.set("k", "v")
    made = adapter.make_key("k")
    assert adapter.get("k") == "v"
    assert adapter.service.get(made) == "v"  # stored in the namespace, under Django's key
    assert 110 < (adapter.service.ttl(made) or 0) <= 120
    assert adapter.default_timeout == 120
    adapter.set("forever", 1, timeout=None)
    assert adapter.service.ttl(adapter.make_key("forever")) is None
    adapter.set("short", 1, timeout=30)
    assert 20 < (adapter.service.ttl(adapter.make_key("short")) or 0) <= 30
    assert adapter.touch("short")  # DEFAULT_TIMEOUT again: back to the namespace's TTL
    assert (adapter.service.ttl(adapter.make_key("short")) or 0) > 100


def test_clear_drops_this_namespace_only(adapter: NamespaceCache) -> None:
    other = namespaces[other_namespace(adapter)]
    store = caches[adapter.service.cache_alias]
    adapter.set_many({"a": 1, "b": 2})
    other.set("a", "kept")
    store.set("plain-key-of-the-store", "kept")
    try:
        adapter.clear()
        assert adapter.get_many(["a", "b"]) == {}
        assert other.get("a") == "kept"
        assert store.get("plain-key-of-the-store") == "kept"
    finally:
        store.delete("plain-key-of-the-store")


def test_versions_and_counters(adapter: NamespaceCache) -> None:
    adapter.set("n", 1)
    assert adapter.incr("n", 5) == 6
    assert adapter.decr("n") == 5
    assert adapter.incr_version("n") == 2
    assert adapter.get("n") is None
    assert adapter.get("n", version=2) == 5
    with pytest.raises(ValueError, match="not found"):
        adapter.incr("missing")
    adapter.set("text", "abc")
    with pytest.raises(TypeError, match="not a number"):
        adapter.incr("text")
    # incr keeps the entry's expiry (Django's LocMem test of it reads _expire_info: skipped).
    adapter.set("timed", 1, timeout=30)
    assert adapter.incr("timed") == 2
    assert 20 < (adapter.service.ttl(adapter.make_key("timed")) or 0) <= 30


#: Keys Django's own backends store: 240 characters (Django warns only past 250), 70 non-ASCII
#: characters (210 bytes, tripled by the namespace's percent-encoding).
LONG_KEYS = ["x" * 240, "ü" * 70, "x" * 239 + "y", "€" * 70]


def test_keys_django_takes_are_taken(adapter: NamespaceCache) -> None:
    """A key too long for the store is kept under its digest; none refused, none colliding."""
    for number, key in enumerate(LONG_KEYS):
        adapter.set(key, number)
    assert adapter.get_many(LONG_KEYS) == {key: n for n, key in enumerate(LONG_KEYS)}
    key = LONG_KEYS[0]
    assert adapter.has_key(key)
    assert adapter.add(key, "again") is False
    assert adapter.incr(key, 10) == 10
    assert adapter.touch(key, 60)
    assert adapter.get_or_set(LONG_KEYS[1], "unused") == 1
    assert adapter.delete(key)
    assert adapter.get(key) is None
    assert adapter.get(LONG_KEYS[2]) == 2
    assert adapter.service.get(adapter.namespace_key(LONG_KEYS[3])) == 3
    adapter.clear()
    assert adapter.get_many(LONG_KEYS) == {}


def test_a_stand_in_never_meets_a_key(adapter: NamespaceCache) -> None:
    """With a KEY_FUNCTION that keeps the key as it is, a caller can write the very key a
    long key is kept under: that one is hashed too, so the two stay apart."""
    adapter.key_func = lambda key, key_prefix, version: key
    long_key = "x" * 240
    adapter.set(long_key, "long")
    stand_in = HASHED_KEY_MARK + hashlib.sha256(long_key.encode()).hexdigest()
    adapter.set(stand_in, "mimic")
    assert adapter.get(long_key) == "long"
    assert adapter.get(stand_in) == "mimic"
    assert adapter.namespace_key(stand_in) != stand_in


def test_long_keys_warn_as_django_does(adapter: NamespaceCache) -> None:
    key = "k" * 300
    with pytest.warns(CacheKeyWarning, match="longer than 250"):
        adapter.set(key, 1)
    with pytest.warns(CacheKeyWarning, match="longer than 250"):
        assert adapter.get(key) == 1


@pytest.mark.parametrize("timeout", [10**9, float("inf")])
def test_a_timeout_past_the_store_is_its_longest(adapter: NamespaceCache, timeout: float) -> None:
    adapter.set("long", 1, timeout=timeout)
    assert adapter.get("long") == 1
    longest = adapter.service.provider.max_ttl()
    remaining = adapter.service.ttl(adapter.make_key("long"))
    assert remaining is not None
    # memcached takes a TTL this long as a Unix time and reads its own clock, which runs up to
    # two seconds off the real one: it may report a second or two more than was stored.
    assert longest - 60 < remaining <= longest + 3
    assert adapter.add("other", 2, timeout=timeout)
    assert adapter.touch("other", timeout)
    assert adapter.get_or_set("third", 3, timeout=timeout) == 3
    # incr of a float writes back what ttl() reports, rounded up: on memcached that can be a
    # second past the longest TTL, which the namespace would refuse; it is clamped too.
    adapter.set("f", 1.5, timeout=timeout)
    assert adapter.incr("f") == 2.5
    assert adapter._remaining(longest + 1) == longest


def test_incr_of_a_float_adds_to_it(adapter: NamespaceCache) -> None:
    adapter.set("f", 1.5, timeout=30)
    assert adapter.incr("f") == 2.5
    assert adapter.decr("f", 3) == -0.5
    assert adapter.get("f") == -0.5
    assert 20 < (adapter.service.ttl(adapter.make_key("f")) or 0) <= 30  # expiry kept
    adapter.set("d", Decimal("0.1"), timeout=None)
    assert adapter.incr("d") == Decimal("1.1")
    assert adapter.service.ttl(adapter.make_key("d")) is None
    adapter.set("b", True)
    with pytest.raises(TypeError, match="not a number"):
        adapter.incr("b")


async def test_async_long_keys_and_floats(adapter: NamespaceCache) -> None:
    await adapter.aset(LONG_KEYS[1], 1.5, timeout=10**9)
    assert await adapter.aincr(LONG_KEYS[1]) == 2.5
    assert await adapter.aget(LONG_KEYS[1]) == 2.5
    await adapter.aset(LONG_KEYS[0], 1)
    assert await adapter.adecr(LONG_KEYS[0]) == 0
    await sync_to_async(caches.close_all)()


async def test_async_twins(adapter: NamespaceCache) -> None:
    await adapter.aset("k", "v")
    assert await adapter.aget("k") == "v"
    assert await adapter.aadd("k", "w") is False
    assert await adapter.aget_or_set("g", lambda: 7) == 7
    await adapter.aset_many({"x": 1, "y": 2})
    assert await adapter.aget_many(["x", "y", "z"]) == {"x": 1, "y": 2}
    assert await adapter.aincr("x", 2) == 3
    assert await adapter.ahas_key("y")
    await adapter.adelete_many(["x", "y"])
    assert await adapter.aget_many(["x", "y"]) == {}
    assert await adapter.atouch("k", 50)
    await adapter.aclear()
    assert await adapter.aget("k") is None
    assert await adapter.aget("g") is None  # aclear() reached the whole namespace
    await adapter.aclose()
    # The thread-hop stores' clients of sync_to_async's thread: the fixture's override of
    # CACHES drops them, and Django closes only the current thread's.
    await sync_to_async(caches.close_all)()


def test_sessions_live_in_the_namespace(adapter: NamespaceCache) -> None:
    with override_settings(
        SESSION_ENGINE="django.contrib.sessions.backends.cache", SESSION_CACHE_ALIAS="adapted"
    ):
        session = SessionStore()
        session["user"] = 42
        session.save()
        assert SessionStore(session.session_key)["user"] == 42
        if adapter.service.capabilities.list_keys:
            assert adapter.service.keys() == [adapter.make_key(session.cache_key)]
        assert 110 < (adapter.service.ttl(adapter.make_key(session.cache_key)) or 0) <= 1209600
        other = namespaces[other_namespace(adapter)]
        other.set("kept", 1)
        out, err = io.StringIO(), io.StringIO()
        call_command(
            "cache_namespaces",
            "flush",
            adapter.namespace,
            interactive=False,
            stdout=out,
            stderr=err,
        )
        assert SessionStore(session.session_key).get("user") is None
        assert other.get("kept") == 1


def test_cache_page_on_a_namespace(adapter: NamespaceCache) -> None:
    calls = []

    @cache_page(60, cache="adapted")
    def view(request: HttpRequest) -> HttpResponse:
        calls.append(1)
        return HttpResponse(f"call {len(calls)}")

    factory = RequestFactory()
    assert view(factory.get("/page")).content == b"call 1"
    assert view(factory.get("/page")).content == b"call 1"  # served from the namespace
    assert len(calls) == 1
    adapter.clear()
    assert view(factory.get("/page")).content == b"call 2"


def dead_redis(stores: dict[str, Any]) -> dict[str, Any]:
    return {
        **stores,
        "dead": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{servers.free_port()}/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        },
        "quiet": {"BACKEND": BACKEND, "LOCATION": "quiet"},
        "loud": {"BACKEND": BACKEND, "LOCATION": "loud"},
    }


def test_errors_follow_the_namespace_policy(stores: dict[str, Any]) -> None:
    setting = {
        "CACHE": "dead",
        "NAMESPACES": {"quiet": {"FAIL_SILENTLY": True}, "loud": {}},
    }
    with override_settings(CACHES=dead_redis(stores), AGENTHUB_CACHE=setting):
        assert caches["quiet"].get("k", "default") == "default"
        assert caches["quiet"].add("k", 1) is False
        with pytest.raises(CacheUnavailable, match="'loud'"):
            caches["loud"].get("k")


def test_a_loop_is_refused_at_run_time(stores: dict[str, Any]) -> None:
    looped = {**stores, "looped": {"BACKEND": BACKEND, "LOCATION": "ns"}}
    setting = {"NAMESPACES": {"ns": {"CACHE": "looped"}}}
    with (
        override_settings(CACHES=looped, AGENTHUB_CACHE=setting),
        pytest.raises(ImproperlyConfigured, match="itself a NamespaceCache"),
    ):
        caches["looped"].get("k")


def test_expiry_is_real(stores: dict[str, Any]) -> None:
    """A timeout the caller gives is the entry's own (seconds, not the namespace's TTL)."""
    name = unique_namespace("nc")
    adapted = {"BACKEND": BACKEND, "LOCATION": name}
    setting = {"CACHE": "locmem", "NAMESPACES": {name: {"TTL": 120}}}
    with (
        override_settings(CACHES={**stores, "adapted": adapted}, AGENTHUB_CACHE=setting),
        CacheClock() as clock,
    ):
        caches["adapted"].set("k", "v", timeout=30)
        caches["adapted"].set("default", "v")
        caches["adapted"].set("gone", "v", timeout=0)
        assert caches["adapted"].get("gone") is None
        clock.advance(31)
        assert caches["adapted"].get("k") is None
        assert caches["adapted"].get("default") == "v"
        clock.advance(90)
        assert caches["adapted"].get("default") is None
        namespaces[name].clear()


def test_database_cache_keeps_djangos_expiry_rule_through_the_adapter(
    stores: dict[str, Any],
) -> None:
    """DatabaseCache drops an expiry's fraction. The namespace API stores one second more, so
    that an entry lives at least its TTL; through Django's API the adapter keeps Django's own
    rule (Django's test_expiration expects a 1 s entry gone for ``add()`` 2 s later)."""
    name = unique_namespace("nc")
    adapted = {"BACKEND": BACKEND, "LOCATION": name}
    setting = {"CACHE": "db", "NAMESPACES": {name: {"TTL": 120}}}
    with override_settings(CACHES={**stores, "adapted": adapted}, AGENTHUB_CACHE=setting):
        adapter = caches["adapted"]
        service = namespaces[name]
        provider: Any = service.provider
        while time.time() % 1 > 0.5:  # early in a second: all of it happens within this one
            time.sleep(0.01)
        adapter.set("django", "v", timeout=1)
        service.set("namespace", "v", ttl=1)
        adapter.set("default", "v")
        left = {
            key: provider.stored_ttl(provider.entry_key(made, None))
            for key, made in [
                ("django", adapter.make_key("django")),
                ("namespace", "namespace"),
                ("default", adapter.make_key("default")),
            ]
        }
        assert left["django"] <= 1.0 < left["namespace"] <= 2.0, left
        assert 119 < left["default"] <= 120.0, left
        service.clear()
