"""Settings, the factory, the per-thread ``namespaces`` handler, lazy instances, failures."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading

import pytest
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import InvalidCacheBackendError
from django.core.exceptions import ImproperlyConfigured
from django.test.utils import override_settings
from django.utils.connection import BaseConnectionHandler, ConnectionProxy

from agenthub_cache import (
    CacheFactory,
    CacheService,
    CacheType,
    CacheUnavailable,
    InvalidKey,
    UnknownNamespace,
    namespaces,
)
from agenthub_cache.conf import get_settings
from agenthub_cache.instances import confirmation_cache, rate_limit_cache, signup_cache
from agenthub_cache.providers.base import Provider
from tests import servers


def test_seed_namespaces_exist_without_settings() -> None:
    with override_settings(AGENTHUB_CACHE=None):
        declared = get_settings().namespaces
        assert {name: ns.ttl for name, ns in declared.items()} == {
            "confirmation": 300,
            "signup": 1800,
            "session": 86400,
            "rate_limit": 3600,
            "temp": 60,
        }
        assert {ns.cache for ns in declared.values()} == {"default"}
        assert namespaces["signup"].default_ttl == 1800


def test_declared_namespaces_replace_the_seed_and_settings_reset() -> None:
    setting = {
        "CACHE": "db",
        "DEFAULT_TTL": 120,
        "NAMESPACES": {"feature": {}, "other": {"TTL": None, "CACHE": "locmem"}},
    }
    with override_settings(AGENTHUB_CACHE=setting):
        assert sorted(namespaces) == ["feature", "other"]
        assert namespaces["feature"].default_ttl == 120
        assert namespaces["feature"].cache_alias == "db"
        assert namespaces["other"].default_ttl is None
        assert namespaces["other"].cache_alias == "locmem"
        with pytest.raises(UnknownNamespace, match="feature, other"):
            namespaces["signup"]
    assert "signup" in namespaces


def test_unknown_namespace_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        namespaces["nope"]


def test_bad_settings_raise_improperly_configured_at_use() -> None:
    with (
        override_settings(AGENTHUB_CACHE={"NAMESPACES": {"bad name": {}}}),
        pytest.raises(ImproperlyConfigured, match="E004"),
    ):
        namespaces["bad name"]


def test_namespaces_built_once_per_thread() -> None:
    first = namespaces["signup"]
    assert namespaces["signup"] is first
    other: list[CacheService] = []
    thread = threading.Thread(target=lambda: other.append(namespaces["signup"]))
    thread.start()
    thread.join()
    assert other[0] is not first
    assert other[0].namespace == first.namespace


def test_namespaces_is_a_connection_handler_and_instances_its_proxies() -> None:
    assert isinstance(namespaces, BaseConnectionHandler)
    assert isinstance(signup_cache, ConnectionProxy)
    assert repr(signup_cache) == "<LazyNamespace 'signup'>"
    assert signup_cache.namespace == namespaces["signup"].namespace
    assert [service.namespace for service in namespaces.all()] == list(namespaces)


def test_factory_builds_declared_and_ad_hoc_services() -> None:
    setting = {"NAMESPACES": {"quiet": {"TTL": 7, "CACHE": "locmem", "FAIL_SILENTLY": True}}}
    with override_settings(AGENTHUB_CACHE=setting):
        declared = CacheFactory.create_service("quiet")
        assert (declared.default_ttl, declared.cache_alias, declared.fail_silently) == (
            7,
            "locmem",
            True,
        )
        assert not CacheFactory.create_service("quiet", fail_silently=False).fail_silently
        assert CacheFactory.create_service("quiet", "db").cache_alias == "db"
        ad_hoc = CacheFactory.create_service("adhoc", "db")
        assert (ad_hoc.cache_alias, ad_hoc.default_ttl) == ("db", 900)
        with pytest.raises(UnknownNamespace, match="quiet"):
            CacheFactory.create_service("adhoc")


def test_backend_bound_once_per_thread_and_again_after_caches_change() -> None:
    service = CacheService("bound", cache="locmem")
    backend = service.provider.backend
    assert backend is caches["locmem"]
    assert service.provider.backend is backend
    other: list[object] = []
    thread = threading.Thread(target=lambda: other.append(service.provider.backend))
    thread.start()
    thread.join()
    assert other[0] is not backend
    with override_settings(CACHES={**settings.CACHES}):
        assert service.provider.backend is caches["locmem"]
        assert service.provider.backend is not backend


def test_lazy_instances_follow_settings() -> None:
    with override_settings(
        AGENTHUB_CACHE={
            "NAMESPACES": {
                "signup": {"TTL": 5, "CACHE": "locmem"},
                "confirmation": {},
                "rate_limit": {},
            }
        }
    ):
        assert signup_cache.default_ttl == 5
        assert signup_cache.cache_alias == "locmem"
        signup_cache.set("k", 1)
        assert "k" in signup_cache
        signup_cache.clear()
        assert confirmation_cache.namespace == "confirmation"
    assert rate_limit_cache.default_ttl == 3600


def test_importing_reads_no_settings() -> None:
    code = (
        "import agenthub_cache, agenthub_cache.instances\n"
        "from django.conf import settings\n"
        "print(settings.configured)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_in_memory_services_are_private() -> None:
    a = CacheService("test", default_ttl=60, cache_type=CacheType.IN_MEMORY)
    b = CacheService("test", default_ttl=60, cache_type=CacheType.IN_MEMORY)
    a.set("k", 1)
    assert b.get("k") is None
    assert a.keys() == ["k"]


def test_factory_returns_a_provider() -> None:
    provider = CacheFactory.create_cache(namespace="x", default_ttl=900, cache="locmem")
    assert isinstance(provider, Provider)
    assert provider.namespace == "x"
    assert CacheFactory.create_cache(cache_type="in_memory", namespace="y").alias.startswith(
        "<in-memory"
    )


def test_bad_service_arguments_name_the_problem() -> None:
    with pytest.raises(InvalidKey, match="namespace name"):
        CacheService("bad name")
    with pytest.raises(ValueError, match="'ok': default_ttl"):
        CacheService("ok", default_ttl=-1)
    with pytest.raises(InvalidCacheBackendError, match=r"'ok': cache='nope' .*\(.*locmem"):
        CacheService("ok", cache="nope")


def test_error_families() -> None:
    assert isinstance(InvalidKey("x"), ValueError)
    assert isinstance(UnknownNamespace("x"), KeyError)
    assert str(UnknownNamespace("no such namespace")) == "no such namespace"


@pytest.mark.parametrize("alias_kind", ["redis", "redis_django"])
def test_unreachable_store_raises_or_fails_silently(
    alias_kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    backend = {
        "redis": "django_redis.cache.RedisCache",
        "redis_django": "django.core.cache.backends.redis.RedisCache",
    }[alias_kind]
    server = servers.redis_server().start()
    port = server.port
    server.stop()
    dead = {"BACKEND": backend, "LOCATION": f"redis://127.0.0.1:{port}/0"}
    from django.conf import settings

    with override_settings(CACHES={**settings.CACHES, "dead": dead}):
        loud = CacheService("loud", default_ttl=60, cache="dead")
        with pytest.raises(CacheUnavailable, match="'loud'") as info:
            loud.get("k")
        assert info.value.__cause__ is not None
        quiet = CacheService(
            f"quiet-{alias_kind}", default_ttl=60, cache="dead", fail_silently=True
        )
        with caplog.at_level(logging.WARNING, logger="agenthub_cache"):
            assert quiet.get("k", "dflt") == "dflt"
            assert quiet.set("k", 1) is False
            assert quiet.incr("n") == 0
        assert len([r for r in caplog.records if quiet.namespace in r.getMessage()]) == 1
        with pytest.raises(CacheUnavailable):
            quiet.clear()  # whole-namespace operations are never silenced
        loud.close()
        quiet.close()


def test_dummy_cache_stores_nothing_and_says_so() -> None:
    dummy = CacheService("dummy-ns", default_ttl=60, cache="dummy")
    assert dummy.set("k", 1, indexes={"g": "x"}) is True  # accepted, as Django's DummyCache does
    assert dummy.get("k") is None
    assert dummy.find("g", "x") == []
    assert dummy.keys() == []
    assert dummy.count() == 0
    assert dummy.clear() == 0
    assert dummy.ttl("k") == 0
    assert dummy.capabilities.flush == "none"
