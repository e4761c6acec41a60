"""``NamespaceCache``: a namespace behind Django's cache API, on real stores.

Django's own cache test suite runs against it in ``python -m tests.django_cache_suite``; these
are the app's own promises on top: the namespace's TTL as the default timeout, ``clear()``
reaching the namespace alone, the failure policy, sessions and ``cache_page``, and the checks.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.sessions.backends.cache import SessionStore
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory
from django.test.utils import override_settings
from django.views.decorators.cache import cache_page

from agenthub_cache import CacheUnavailable, checks, checks_namespace_cache, namespaces
from agenthub_cache.backends import NamespaceCache
from agenthub_cache.testing import CacheClock
from tests import servers
from tests.conftest import unique_namespace

BACKEND = "agenthub_cache.backends.NamespaceCache"
#: Stores a namespace behind a NamespaceCache is tested on.
STORES = ["locmem", "db", "redis", "redis_django", "files", "memcached"]


def ids(caches_: dict[str, Any], agenthub: dict[str, Any]) -> list[str]:
    with override_settings(CACHES=caches_, AGENTHUB_CACHE=agenthub):
        return [message.id for message in checks.check_settings() if message.id]


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
    with pytest.raises(TypeError, match="not int"):
        adapter.incr("text")


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


@pytest.mark.parametrize(
    ("alias", "agenthub", "expected"),
    [
        (
            {"LOCATION": "ns"},
            {"NAMESPACES": {"ns": {"CACHE": "adapted"}}},
            [checks_namespace_cache.E009],
        ),
        (
            {"LOCATION": "ns"},
            {"CACHE": "adapted", "NAMESPACES": {"ns": {}}},
            [checks_namespace_cache.E009],
        ),
        (  # once for the default CACHE, however many namespaces inherit it
            {"LOCATION": "ns"},
            {"CACHE": "adapted", "NAMESPACES": {"ns": {}, "b": {}, "c": {"CACHE": "db"}}},
            [checks_namespace_cache.E009],
        ),
        ({}, {"NAMESPACES": {"ns": {}}}, [checks_namespace_cache.E010]),
        ({"LOCATION": "bad name"}, {"NAMESPACES": {"ns": {}}}, [checks_namespace_cache.E010]),
        ({"LOCATION": "nss"}, {"NAMESPACES": {"ns": {}}}, [checks_namespace_cache.E011]),
        (
            {"LOCATION": "ns", "TIMEOUT": 60},
            {"NAMESPACES": {"ns": {}}},
            [checks_namespace_cache.E012],
        ),
        (
            {"LOCATION": "ns", "OPTIONS": {"MAX_ENTRIES": 5}, "TIMEOUT": 1},
            {"NAMESPACES": {"ns": {}}},
            [checks_namespace_cache.E012, checks_namespace_cache.E012],
        ),
        ({"LOCATION": "ns", "KEY_PREFIX": "p", "VERSION": 2}, {"NAMESPACES": {"ns": {}}}, []),
    ],
)
def test_each_adapter_mistake_has_its_id(
    stores: dict[str, Any], alias: dict[str, Any], agenthub: dict[str, Any], expected: list[str]
) -> None:
    caches_ = {**stores, "adapted": {"BACKEND": BACKEND, **alias}}
    found = [
        i for i in ids(caches_, {"CACHE": "db", **agenthub}) if i.startswith("agenthub_cache.E")
    ]
    assert found == expected


def test_adapter_messages_name_the_alias_and_the_fix(stores: dict[str, Any]) -> None:
    caches_ = {
        **stores,
        "unknown": {"BACKEND": BACKEND, "LOCATION": "sesion"},
        "timed": {"BACKEND": BACKEND, "LOCATION": "session", "TIMEOUT": 5},
    }
    with override_settings(CACHES=caches_, AGENTHUB_CACHE={"CACHE": "db"}):
        messages = {m.id: m for m in checks.check_settings()}
    unknown, timed = messages[checks_namespace_cache.E011], messages[checks_namespace_cache.E012]
    assert "settings.CACHES['unknown']" in unknown.msg
    assert "Did you mean 'session'?" in (unknown.hint or "")
    assert "settings.CACHES['timed']" in timed.msg
    assert "Remove TIMEOUT." in (timed.hint or "")
    assert "AGENTHUB_CACHE['NAMESPACES']['session']['TTL']" in (timed.hint or "")


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


def test_manage_py_check_reports_adapter_mistakes(stores: dict[str, Any]) -> None:
    caches_ = {**stores, "adapted": {"BACKEND": BACKEND, "LOCATION": "nope"}}
    with (
        override_settings(CACHES=caches_, AGENTHUB_CACHE={"CACHE": "db"}),
        pytest.raises(SystemCheckError, match=r"agenthub_cache\.E011"),
    ):
        call_command("check")


def test_loop_message_names_the_setting_to_change(stores: dict[str, Any]) -> None:
    caches_ = {**stores, "adapted": {"BACKEND": BACKEND, "LOCATION": "a"}}
    setting = {"CACHE": "db", "NAMESPACES": {"a": {}, "b": {"CACHE": "adapted"}}}
    with override_settings(CACHES=caches_, AGENTHUB_CACHE=setting):
        [loop] = [m for m in checks.check_settings() if m.id == checks_namespace_cache.E009]
    assert loop.msg.startswith("settings.AGENTHUB_CACHE['NAMESPACES']['b']['CACHE'] is 'adapted'")
    assert "Point settings.AGENTHUB_CACHE['NAMESPACES']['b']['CACHE'] at" in (loop.hint or "")
