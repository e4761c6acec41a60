"""Namespace metrics as Prometheus metrics, when ``prometheus_client`` is installed.

``AppConfig.ready()`` calls ``register()`` only if the package can be found, so a project
without it pays no import. Every scrape reads this process's counters (``metrics.py``):

- ``agenthub_cache_hits_total{namespace}``, ``..._misses_total``, ``..._sets_total``,
  ``..._deletes_total``
- ``agenthub_cache_errors_total{namespace,kind}`` (``kind``: ``unavailable`` or the class name)
- ``agenthub_cache_operation_duration_seconds{namespace,operation}``: a summary (count, sum)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import REGISTRY, Collector, CollectorRegistry

from agenthub_cache import metrics

COUNTERS = {
    "hits": "Reads that found their entry",
    "misses": "Reads that found no entry",
    "sets": "Entries written",
    "deletes": "Entries deleted",
}


class NamespaceCollector(Collector):
    """Reads every namespace's metrics of this process at each scrape."""

    def collect(self) -> Iterator[Metric]:
        snapshots = {name: m.snapshot() for name, m in metrics.all_namespaces().items()}
        for counter, documentation in COUNTERS.items():
            family = CounterMetricFamily(
                f"agenthub_cache_{counter}",
                f"{documentation}, per namespace.",
                labels=["namespace"],
            )
            for name, snapshot in snapshots.items():
                family.add_metric([name], snapshot[counter])
            yield family
        errors = CounterMetricFamily(
            "agenthub_cache_errors",
            "Failed calls to the store, per namespace and kind.",
            labels=["namespace", "kind"],
        )
        latency = SummaryMetricFamily(
            "agenthub_cache_operation_duration_seconds",
            "Time spent in each operation on the store, per namespace.",
            labels=["namespace", "operation"],
        )
        for name, snapshot in snapshots.items():
            for kind, count in snapshot["errors"].items():
                errors.add_metric([name, kind], count)
            for operation, op in snapshot["operations"].items():
                latency.add_metric([name, operation], op["count"], op["sum_seconds"])
        yield errors
        yield latency


_registered: dict[int, NamespaceCollector] = {}
_lock = threading.Lock()


def register(registry: CollectorRegistry = REGISTRY) -> NamespaceCollector:
    """Register the collector on ``registry`` (the default one), once per registry."""
    with _lock:
        collector = _registered.get(id(registry))
        if collector is None:
            collector = _registered[id(registry)] = NamespaceCollector()
            registry.register(collector)
        return collector
