"""``CacheClock``: move time forward in TTL tests on stores that expire in this process.

LocMem, database and file caches (and this app's index records on them) decide expiry by
reading the clock in Python; ``CacheClock`` replaces that clock in exactly those modules, so
``clock.advance(301)`` expires a 300-second entry at once. Redis and memcached expire entries
on the server by its own clock: there ``advance()`` has no effect, so use short real TTLs.
"""

from __future__ import annotations

import importlib
import time
from datetime import UTC, datetime
from types import ModuleType, TracebackType
from typing import Any

#: Modules that read ``time.time()`` to decide expiry.
TIME_MODULES = (
    "django.core.cache.backends.base",
    "django.core.cache.backends.locmem",
    "django.core.cache.backends.filebased",
    "agenthub_cache.providers.files",
    "agenthub_cache.providers.indexes",
    "agenthub_cache.providers.locmem",
)
#: Modules that read ``django.utils.timezone.now`` (imported as ``tz_now``).
TZ_NOW_MODULES = ("django.core.cache.backends.db", "agenthub_cache.providers.db")


class _Time:
    """Stands in for the ``time`` module: ``time()`` is the clock's, the rest is the real one."""

    def __init__(self, clock: CacheClock) -> None:
        self._clock = clock

    def time(self) -> float:
        return self._clock.now

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class CacheClock:
    """A clock for cache expiry: starts at the real time, moves only when told.

    ```python
    with CacheClock() as clock:
        namespaces["signup"].set("k", 1, ttl=60)
        clock.advance(61)
        assert namespaces["signup"].get("k") is None
    ```
    Locks and ``get_or_set`` waits keep real time (``time.monotonic``).
    """

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else float(start)
        self._saved: list[tuple[ModuleType, str, Any]] = []

    def advance(self, seconds: float) -> float:
        """Move the clock ``seconds`` forward; returns the new time."""
        if seconds < 0:
            raise ValueError(f"CacheClock.advance(): {seconds!r} would move time backwards.")
        self.now += seconds
        return self.now

    def _tz_now(self) -> datetime:
        """``django.utils.timezone.now()`` at this clock's time (naive without USE_TZ)."""
        from django.conf import settings

        return datetime.fromtimestamp(self.now, tz=UTC if settings.USE_TZ else None)

    def start(self) -> CacheClock:
        if self._saved:
            raise RuntimeError("This CacheClock is already running.")
        fake_time = _Time(self)
        for name in TIME_MODULES:
            self._swap(importlib.import_module(name), "time", fake_time)
        for name in TZ_NOW_MODULES:
            self._swap(importlib.import_module(name), "tz_now", self._tz_now)
        return self

    def _swap(self, module: ModuleType, attribute: str, value: Any) -> None:
        self._saved.append((module, attribute, getattr(module, attribute)))
        setattr(module, attribute, value)

    def stop(self) -> None:
        while self._saved:
            module, attribute, original = self._saved.pop()
            setattr(module, attribute, original)

    def __enter__(self) -> CacheClock:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
