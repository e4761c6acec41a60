"""Per-namespace, per-process metrics: hits, misses, sets, deletes, errors by kind, latency.

One ``NamespaceMetrics`` per namespace name per process, shared by every thread's service of
that namespace (``namespaces[...]`` builds one service per thread). The service's failure
policy records each call: its latency (count and sum, per operation, so rates and means can
be derived) and, when it raised, the kind of error. The service adds what only it knows:
hits and misses of reads, entries written and entries deleted.

Recording is cheap: two ``perf_counter_ns`` calls, one uncontended lock and a few integer
additions per call (``benchmarks/metrics_overhead.py`` measures it). ``METRICS: False`` on a namespace records nothing at all.
"""

from __future__ import annotations

import threading
from typing import Any

#: ``errors`` kind for a store that is down or timed out (``CacheUnavailable``, or silenced).
UNAVAILABLE = "unavailable"


class NamespaceMetrics:
    """The counters of one namespace in this process. Read them with ``snapshot()``."""

    __slots__ = ("_counts", "_errors", "_latency", "_lock", "namespace")

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self._lock = threading.Lock()
        self._counts = [0, 0, 0, 0]  # hits, misses, sets, deletes
        self._errors: dict[str, int] = {}
        self._latency: dict[str, list[int]] = {}  # operation -> [calls, total ns]

    def observe(
        self,
        operation: str,
        elapsed_ns: int,
        error: str | None,
        hits: int,
        misses: int,
        sets: int,
        deletes: int,
    ) -> None:
        """One call of ``operation``: its duration, error kind (if it failed) and counts.

        One lock per call, whatever it counted (``acquire``/``release`` rather than ``with``,
        which costs twice as much): with two clocks, that is the whole cost of metrics."""
        lock = self._lock
        lock.acquire()
        try:
            latency = self._latency.get(operation)
            if latency is None:
                latency = self._latency[operation] = [0, 0]
            latency[0] += 1
            latency[1] += elapsed_ns
            if error is not None:
                self._errors[error] = self._errors.get(error, 0) + 1
            if hits or misses or sets or deletes:
                counts = self._counts
                counts[0] += hits
                counts[1] += misses
                counts[2] += sets
                counts[3] += deletes
        finally:
            lock.release()

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy, JSON-ready; latency in seconds."""
        with self._lock:
            hits, misses, sets, deletes = self._counts
            errors = dict(sorted(self._errors.items()))
            latency = {name: list(pair) for name, pair in sorted(self._latency.items())}
        return {
            "enabled": True,
            "hits": hits,
            "misses": misses,
            "sets": sets,
            "deletes": deletes,
            "errors": errors,
            "latency": {
                "count": sum(calls for calls, _ in latency.values()),
                "sum_seconds": sum(total for _, total in latency.values()) / 1e9,
            },
            "operations": {
                name: {"count": calls, "sum_seconds": total / 1e9}
                for name, (calls, total) in latency.items()
            },
        }

    def reset(self) -> None:
        with self._lock:
            self._counts = [0, 0, 0, 0]
            self._errors.clear()
            self._latency.clear()

    def __repr__(self) -> str:
        return f"<NamespaceMetrics {self.namespace!r}>"


#: What ``CacheService.metrics()`` returns for a namespace with ``METRICS: False``.
DISABLED: dict[str, Any] = {"enabled": False}

_registry: dict[str, NamespaceMetrics] = {}
_registry_lock = threading.Lock()


def for_namespace(namespace: str) -> NamespaceMetrics:
    """This process's metrics of ``namespace``, created on first use."""
    found = _registry.get(namespace)
    if found is None:
        with _registry_lock:
            found = _registry.setdefault(namespace, NamespaceMetrics(namespace))
    return found


def all_namespaces() -> dict[str, NamespaceMetrics]:
    """Every namespace that has recorded metrics in this process, by name."""
    with _registry_lock:
        return dict(sorted(_registry.items()))


def error_kind(exc: BaseException, unavailable: bool) -> str:
    """``unavailable`` for an unreachable store, else the exception's class name."""
    return UNAVAILABLE if unavailable else type(exc).__name__
