"""Per-namespace metrics: shared across a process's threads, off with ``METRICS: False``,
errors by kind, and the checks of the option. Counting on every backend is in the contract suite.
"""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.management import call_command
from django.test.utils import override_settings

from agenthub_cache import (
    CacheService,
    CacheUnavailable,
    checks,
    metrics,
    namespaces,
    register_provider,
)
from agenthub_cache.providers.generic import GenericProvider
from agenthub_cache.providers.locmem import LocMemProvider
from agenthub_cache.providers.redis.cluster import RedisClusterProvider
from agenthub_cache.providers.redis.provider import RedisProvider
from tests import servers
from tests.conftest import run_threads, unique_namespace


def test_metrics_false_records_nothing() -> None:
    name = unique_namespace("m")
    service = CacheService(name, default_ttl=60, metrics=False)
    service.set("k", 1)
    service.get("k")
    service.get("missing")
    assert service.metrics() == {"enabled": False}
    assert name not in metrics.all_namespaces()


def test_metrics_setting_turns_them_off_per_namespace() -> None:
    on, off = unique_namespace("on"), unique_namespace("off")
    setting = {"NAMESPACES": {on: {"TTL": 60}, off: {"TTL": 60, "METRICS": False}}}
    with override_settings(AGENTHUB_CACHE=setting):
        namespaces[on].get("k")
        namespaces[off].get("k")
        assert namespaces[on].metrics()["misses"] == 1
        assert namespaces[off].metrics() == {"enabled": False}


def test_metrics_option_must_be_a_bool() -> None:
    setting = {"NAMESPACES": {"x": {"METRICS": "yes"}}}
    with override_settings(AGENTHUB_CACHE=setting):
        errors = checks.settings_errors()
    assert [e.id for e in errors] == [checks.E008]
    assert "METRICS" in errors[0].msg


def test_threads_of_one_process_share_a_namespaces_counters() -> None:
    name = unique_namespace("m")
    with override_settings(AGENTHUB_CACHE={"NAMESPACES": {name: {"TTL": 60}}}):

        def work() -> None:
            service = namespaces[name]  # one service per thread, one metrics per namespace
            for i in range(200):
                service.set(f"k{i}", i)
                service.get(f"k{i}")

        run_threads(4, work)
        snapshot = namespaces[name].metrics()
    assert (snapshot["sets"], snapshot["hits"]) == (800, 800)
    assert snapshot["operations"]["get"]["count"] == 800


def test_errors_are_counted_by_kind() -> None:
    port = servers.free_port()  # nothing listens there
    location = f"redis://127.0.0.1:{port}/0"
    dead = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": location}
    with override_settings(CACHES={**caches_settings(), "dead": dead}):
        try:
            service = CacheService(unique_namespace("m"), default_ttl=60, cache="dead")
            with pytest.raises(CacheUnavailable):
                service.get("k")
            silent = CacheService(
                unique_namespace("m"), default_ttl=60, cache="dead", fail_silently=True
            )
            assert silent.get("k", "dflt") == "dflt"
            refused = CacheService(unique_namespace("m"), default_ttl=60)
            with pytest.raises(ValueError, match="cannot be serialized"):
                refused.set("k", lambda: 0)
        finally:
            caches["dead"].close()
    assert service.metrics()["errors"] == {"unavailable": 1}
    assert silent.metrics()["errors"] == {"unavailable": 1}
    assert silent.metrics()["misses"] == 0  # a silenced failure is an error, not a miss
    # anything else is counted under the store's exception class (pickle's, here)
    assert list(refused.metrics()["errors"].values()) == [1]
    assert "unavailable" not in refused.metrics()["errors"]


async def test_a_failed_aget_is_a_get_with_its_error_counted() -> None:
    """``get``/``aget`` apply the failure policy without a ``FailurePolicy`` per call
    (``ServicePolicy._read``): a failure still builds one, counted as a ``get`` with its kind."""
    location = f"redis://127.0.0.1:{servers.free_port()}/0"  # nothing listens there
    dead = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": location}
    with override_settings(CACHES={**caches_settings(), "dead": dead}):
        try:
            loud = CacheService(unique_namespace("m"), default_ttl=60, cache="dead")
            with pytest.raises(CacheUnavailable, match=r"during get\(\)"):
                await loud.aget("k")
            silent = CacheService(
                unique_namespace("m"), default_ttl=60, cache="dead", fail_silently=True
            )
            assert await silent.aget("k", "dflt") == "dflt"
            for service in (loud, silent):
                await service.aclose()
        finally:
            caches["dead"].close()
    for service in (loud, silent):
        counted = service.metrics()
        assert counted["errors"] == {"unavailable": 1}
        assert (counted["hits"], counted["misses"]) == (0, 0)
        assert counted["operations"]["get"]["count"] == 1
        assert counted["operations"]["get"]["sum_seconds"] > 0


def test_a_callers_own_error_is_not_a_store_error() -> None:
    service = CacheService(unique_namespace("m"), default_ttl=60)

    def broken() -> int:
        raise KeyError("mine")

    with pytest.raises(KeyError):
        service.get_or_set("k", broken)
    assert service.metrics()["errors"] == {}


def caches_settings() -> dict[str, object]:
    from django.conf import settings

    return dict(settings.CACHES)


def test_prometheus_collector_exports_the_counters() -> None:
    import prometheus_client as prometheus  # in the test extra: this test runs on every cell

    from agenthub_cache.prometheus import NamespaceCollector, register

    name = unique_namespace("prom")
    service = CacheService(name, default_ttl=60)
    service.set("k", 1)
    service.get("k")
    service.get("missing")
    registry = prometheus.CollectorRegistry()
    assert register(registry) is register(registry)  # once per registry
    labels = {"namespace": name}
    assert registry.get_sample_value("agenthub_cache_hits_total", labels) == 1
    assert registry.get_sample_value("agenthub_cache_misses_total", labels) == 1
    assert registry.get_sample_value("agenthub_cache_sets_total", labels) == 1
    get_labels = {**labels, "operation": "get"}
    count = registry.get_sample_value("agenthub_cache_operation_duration_seconds_count", get_labels)
    assert count == 2
    text = prometheus.generate_latest(registry).decode()
    assert f'agenthub_cache_hits_total{{namespace="{name}"}} 1.0' in text
    # the app registered one on the default registry at start-up
    assert any(
        isinstance(c, NamespaceCollector)
        for c in prometheus.REGISTRY._collector_to_names  # no public listing of collectors
    )


# -- METRICS: "redis" -------------------------------------------------------------------------


def command_calls(client: Any) -> dict[str, int]:
    return {name: stat["calls"] for name, stat in client.info("commandstats").items()}


def test_redis_totals_sum_pushes_and_a_get_stays_one_round_trip(
    stores: dict[str, Any], redis_server: servers.Server
) -> None:
    import redis

    from agenthub_cache import metrics_redis

    name = unique_namespace("tot")
    setting = {"NAMESPACES": {name: {"TTL": 60, "CACHE": "redis", "METRICS": "redis"}}}
    raw = redis.Redis(host=redis_server.host, port=redis_server.port)
    with override_settings(AGENTHUB_CACHE=setting):
        service = namespaces[name]
        service.set("k", 1)
        before = command_calls(raw)
        for _ in range(100):
            assert service.get("k") == 1
        after = command_calls(raw)
        sent = {
            cmd: after[cmd] - before.get(cmd, 0)
            for cmd in after
            if after[cmd] != before.get(cmd, 0) and cmd not in ("cmdstat_info", "cmdstat_hincrby")
        }
        assert sent == {"cmdstat_get": 100}  # nothing but the GETs: pushes are batched apart
        pushed = after.get("cmdstat_hincrby", 0) - before.get("cmdstat_hincrby", 0)
        assert pushed < 50  # at most a periodic push or two (of any namespace), not one per get
        metrics_redis.push()
        totals = service.metrics()["totals"]
        assert (totals["hits"], totals["sets"]) == (100, 1)
        assert totals["operations"]["get"]["count"] == 100
        # another process's pusher (its own counters) adds to the same hash; pushing again
        # with nothing new adds nothing
        other = metrics_redis.Pusher()
        other_counts = metrics.NamespaceMetrics(name)
        other_counts.observe("get", 5_000, None, 0, 7, 0, 0)
        other.register(service, other_counts)
        other.push()
        other.push()
        metrics_redis.push()
        totals = service.metrics()["totals"]
        assert (totals["hits"], totals["misses"]) == (100, 7)
        assert service.metrics()["misses"] == 0  # this process's own counts stay its own
        out = io.StringIO()
        call_command("cache_namespaces", "stats", name, stdout=out)
        assert re.search(
            r"^all processes +hits 100, misses 7, sets 1, deletes 0", out.getvalue(), re.M
        )
        service.clear()
        assert service.metrics()["totals"]["hits"] == 100  # a flush keeps the totals
        metrics_redis.push()  # the clear's counts now: a later push would write the hash again
        client = service.provider.connection.client  # type: ignore[attr-defined]
        client.delete(metrics_redis.totals_key(service))  # in the alias's database, not raw's 0
    raw.close()


class SummingCache(LocMemCache):
    """A store whose provider says that it can sum every process's metrics."""


@register_provider(f"{__name__}.SummingCache")
class SummingProvider(LocMemProvider):
    sums_metrics = True


def test_e013_asks_the_provider_whether_its_store_sums_metrics() -> None:
    """E013 follows what a provider declares (``sums_metrics``), not whether it is a subclass
    of the Redis provider (as it checked, with ``isinstance`` in the service too)."""
    name = unique_namespace("tot")
    summing = {"BACKEND": f"{__name__}.SummingCache", "LOCATION": name}
    with override_settings(
        CACHES={**settings.CACHES, "summing": summing},
        AGENTHUB_CACHE={"NAMESPACES": {name: {"CACHE": "summing", "METRICS": "redis"}}},
    ):
        assert checks.metrics_errors() == []
    assert RedisProvider.sums_metrics
    assert RedisClusterProvider.sums_metrics
    assert not GenericProvider.sums_metrics


def test_metrics_redis_on_a_cache_that_is_not_redis_is_an_error() -> None:
    name = unique_namespace("tot")
    setting = {"NAMESPACES": {name: {"CACHE": "locmem", "METRICS": "redis"}}}
    with override_settings(AGENTHUB_CACHE=setting):
        assert checks.settings_errors() == []  # a valid setting: E013 needs the providers
        errors = checks.metrics_errors()
        assert [e.id for e in checks.check_settings()] == [checks.E013]
    assert [e.id for e in errors] == [checks.E013]
    with pytest.raises(ValueError, match="needs a Redis cache"):
        CacheService(name, cache="locmem", metrics="redis")
    with override_settings(
        AGENTHUB_CACHE={"NAMESPACES": {name: {"CACHE": "redis", "METRICS": "redis"}}}
    ):
        assert checks.settings_errors() == []
        assert checks.metrics_errors() == []
