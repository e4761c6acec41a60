"""``METRICS: "redis"``: every process's counts of a namespace summed in one Redis hash.

The hot path is untouched (a ``get`` stays one round trip): a daemon thread of each process
pushes what its counters gained since the last push, every ``PUSH_INTERVAL`` seconds, as one
pipeline of ``HINCRBY`` per namespace. The totals therefore trail by up to that interval;
``push()`` sends at once (tests, or before a process exits: it is registered with ``atexit``).
A push that fails (store down) is retried with the next one; nothing is lost or counted twice
by this process, though a process killed between two pushes loses what it had not pushed.

The hash, ``agenthub_cache.metrics:<namespace>`` through the alias's key function, lies outside
the namespace's key prefix, so a flush of the namespace keeps its totals.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from agenthub_cache.metrics import NamespaceMetrics

if TYPE_CHECKING:
    from agenthub_cache.service import CacheService

logger = logging.getLogger("agenthub_cache")

#: Seconds between two pushes of a process's increments.
PUSH_INTERVAL = 5.0


def totals_key(service: CacheService) -> str:
    return str(service.provider.backend.make_key(f"agenthub_cache.metrics:{service.namespace}"))


def flatten(snapshot: dict[str, Any]) -> dict[str, int]:
    """A metrics snapshot as hash fields of whole numbers (latency in microseconds)."""
    flat = {name: int(snapshot[name]) for name in ("hits", "misses", "sets", "deletes")}
    for kind, count in snapshot["errors"].items():
        flat[f"errors:{kind}"] = count
    for operation, op in snapshot["operations"].items():
        flat[f"calls:{operation}"] = op["count"]
        flat[f"us:{operation}"] = round(op["sum_seconds"] * 1e6)
    return flat


def unflatten(fields: dict[Any, Any]) -> dict[str, Any]:
    """The hash back in the shape of ``CacheService.metrics()`` (without ``enabled``)."""
    flat = {_text(k): int(v) for k, v in fields.items()}
    operations: dict[str, dict[str, Any]] = {}
    errors: dict[str, int] = {}
    for name, value in sorted(flat.items()):
        kind, _, rest = name.partition(":")
        if kind == "errors":
            errors[rest] = value
        elif kind == "calls":
            operations.setdefault(rest, {"count": 0, "sum_seconds": 0.0})["count"] = value
        elif kind == "us":
            operations.setdefault(rest, {"count": 0, "sum_seconds": 0.0})["sum_seconds"] = (
                value / 1e6
            )
    return {
        **{name: flat.get(name, 0) for name in ("hits", "misses", "sets", "deletes")},
        "errors": errors,
        "latency": {
            "count": sum(op["count"] for op in operations.values()),
            "sum_seconds": sum(op["sum_seconds"] for op in operations.values()),
        },
        "operations": operations,
    }


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


class Pusher:
    """This process's pushes: one daemon thread for every namespace with ``METRICS: "redis"``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pushing = threading.Lock()  # one push at a time (the thread's, atexit's, a test's)
        self._targets: dict[str, tuple[NamespaceMetrics, Any, str]] = {}
        self._pushed: dict[str, dict[str, int]] = {}
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def register(self, service: CacheService, metrics: NamespaceMetrics) -> None:
        client = service.provider.connection.client  # type: ignore[attr-defined]
        with self._lock:
            if self._pid != os.getpid():
                # A forked child: its parent's thread is not here, and what its counters held
                # at the fork is the parent's to push.
                self._thread, self._pid = None, os.getpid()
                self._pushed = {n: flatten(m.snapshot()) for n, (m, _, _) in self._targets.items()}
            self._targets.setdefault(service.namespace, (metrics, client, totals_key(service)))
            self._pushed.setdefault(service.namespace, {})
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="agenthub-cache-metrics", daemon=True
                )
                self._thread.start()

    def push(self) -> None:
        """Send every namespace's increments since the last push that succeeded."""
        with self._pushing:
            self._push()

    def _push(self) -> None:
        with self._lock:
            targets = dict(self._targets)
        for name, (metrics, client, key) in targets.items():
            current = flatten(metrics.snapshot())
            last = self._pushed.get(name, {})
            delta = {f: v - last.get(f, 0) for f, v in current.items() if v != last.get(f, 0)}
            if not delta:
                continue
            try:
                pipe = client.pipeline(transaction=False)
                for field, amount in delta.items():
                    pipe.hincrby(key, field, amount)
                pipe.execute()
            except Exception as exc:  # the store is down: the next push sends it all
                logger.debug("Cache namespace %r: metrics push failed: %s", name, exc)
                continue
            self._pushed[name] = current

    def _run(self) -> None:
        while True:
            time.sleep(PUSH_INTERVAL)
            self.push()


pusher = Pusher()
atexit.register(pusher.push)


def register(service: CacheService, metrics: NamespaceMetrics) -> None:
    """Push ``service``'s namespace metrics to Redis from now on (idempotent)."""
    pusher.register(service, metrics)


def push() -> None:
    pusher.push()


def totals(service: CacheService) -> dict[str, Any]:
    """Every process's pushed counts of ``service``'s namespace (one ``HGETALL``)."""
    client = service.provider.connection.client  # type: ignore[attr-defined]
    return unflatten(client.hgetall(totals_key(service)))
