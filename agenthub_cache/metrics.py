"""Per-namespace, per-process metrics: hits, misses, sets, deletes, errors by kind, latency.

One ``NamespaceMetrics`` per namespace name per process, shared by every thread's service of
that namespace (``namespaces[...]`` builds one service per thread). The service's failure
policy records each call: its latency (count and sum, per operation, so rates and means can
be derived) and, when it raised, the kind of error. The service adds what only it knows:
hits and misses of reads, entries written and entries deleted.

Recording is cheap: two ``perf_counter_ns`` calls, one uncontended lock and a few integer
additions per call. ``METRICS: False`` on a namespace records nothing at all.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

#: ``errors`` kind for a store that is down or timed out (``CacheUnavailable``, or silenced).
UNAVAILABLE = "unavailable"


@dataclass
class Latency:
    """Calls of one operation: how many, and their total duration in nanoseconds."""

    count: int = 0
    total_ns: int = 0


@dataclass
class NamespaceMetrics:
    """The counters of one namespace in this process. Read them with ``snapshot()``."""

    namespace: str
    hits: int = 0
    misses: int = 0
    sets: int = 0
    deletes: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latency: dict[str, Latency] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def observe(self, operation: str, elapsed_ns: int, error: str | None) -> None:
        """One call of ``operation`` took ``elapsed_ns``; ``error`` is its kind if it failed."""
        with self._lock:
            latency = self.latency.get(operation)
            if latency is None:
                latency = self.latency[operation] = Latency()
            latency.count += 1
            latency.total_ns += elapsed_ns
            if error is not None:
                self.errors[error] = self.errors.get(error, 0) + 1

    def read(self, hits: int, misses: int) -> None:
        with self._lock:
            self.hits += hits
            self.misses += misses

    def wrote(self, entries: int) -> None:
        with self._lock:
            self.sets += entries

    def deleted(self, entries: int) -> None:
        with self._lock:
            self.deletes += entries

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy, JSON-ready; latency in seconds."""
        with self._lock:
            operations = {
                name: {"count": lat.count, "sum_seconds": lat.total_ns / 1e9}
                for name, lat in sorted(self.latency.items())
            }
            calls = sum(lat.count for lat in self.latency.values())
            total_ns = sum(lat.total_ns for lat in self.latency.values())
            return {
                "enabled": True,
                "hits": self.hits,
                "misses": self.misses,
                "sets": self.sets,
                "deletes": self.deletes,
                "errors": dict(sorted(self.errors.items())),
                "latency": {"count": calls, "sum_seconds": total_ns / 1e9},
                "operations": operations,
            }

    def reset(self) -> None:
        with self._lock:
            self.hits = self.misses = self.sets = self.deletes = 0
            self.errors.clear()
            self.latency.clear()


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
