"""``METRICS: "redis"`` on a Redis Cluster: every process's pushes summed in one hash on the
cluster, kept by a flush of the namespace."""

from __future__ import annotations

import pytest
from django.test.utils import override_settings

from agenthub_cache import metrics, metrics_redis, namespaces
from tests.conftest import unique_namespace

pytestmark = pytest.mark.extended


def test_cluster_totals_sum_every_pusher(cluster_alias: str) -> None:
    name = unique_namespace("ctot")
    setting = {"NAMESPACES": {name: {"TTL": 60, "CACHE": cluster_alias, "METRICS": "redis"}}}
    with override_settings(AGENTHUB_CACHE=setting):
        service = namespaces[name]
        client = service.provider.connection.client  # type: ignore[attr-defined]
        service.set("k", 1)
        for _ in range(20):
            assert service.get("k") == 1
        assert service.get("absent") is None
        metrics_redis.push()
        totals = service.metrics()["totals"]
        assert (totals["hits"], totals["misses"], totals["sets"]) == (20, 1, 1)
        assert totals["operations"]["get"]["count"] == 21

        other = metrics_redis.Pusher()  # another process's pusher, with counters of its own
        counts = metrics.NamespaceMetrics(name)
        counts.observe("get", 5_000, None, 0, 7, 0, 0)
        other.register(service, counts)
        other.push()
        other.push()  # nothing new: adds nothing
        totals = service.metrics()["totals"]
        assert (totals["hits"], totals["misses"]) == (20, 8)
        assert service.metrics()["misses"] == 1  # this process's own counts stay its own

        service.clear()
        assert service.metrics()["totals"]["hits"] == 20  # a flush keeps the totals
        metrics_redis.push()  # the clear's counts now: a later push would write the hash again
        client.delete(metrics_redis.totals_key(service))
        assert service.metrics()["totals"]["hits"] == 0
