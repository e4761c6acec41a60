"""``CacheService``: the namespaced cache API.

This module holds what works on entries one key (or one batch of keys) at a time; what works
on many entries at once (indexes, listing, flush, stats) is in ``namespace_api.py``. The
policy shared by every store (argument checks, TTL defaults, ``FAIL_SILENTLY``, error
translation) lives in ``policy.py``; the provider does the work.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync, sync_to_async

from agenthub_cache import conf
from agenthub_cache import metrics as metrics_
from agenthub_cache.binding import CacheType, bind_provider
from agenthub_cache.exceptions import CacheUnavailable, InvalidKey
from agenthub_cache.guarded_lock import GuardedLock
from agenthub_cache.namespace_api import NamespaceAPI
from agenthub_cache.policy import (
    FOREVER,
    MISS,
    CallerDefault,
    CallerFailed,
    is_async_callable,
)

if TYPE_CHECKING:
    from agenthub_cache.providers.base import Provider

_UNSET: Any = object()
#: How long ``get_or_set`` waits for another caller's computation before computing itself.
STAMPEDE_WAIT = 5.0


class CacheService(NamespaceAPI):
    """A namespace of one ``CACHES`` alias, with its default TTL, indexes and flush."""

    def __init__(
        self,
        namespace: str,
        default_ttl: int | None = _UNSET,
        cache: str | None = None,
        cache_type: CacheType | str | None = None,
        *,
        fail_silently: bool = False,
        sensitive: bool = False,
        metrics: bool | str = True,
    ) -> None:
        if not conf.is_valid_name(namespace):
            raise InvalidKey(
                f"Invalid cache namespace name {namespace!r}: use 1-64 letters, digits, "
                "'_', '-' or '.', starting with a letter or digit."
            )
        if default_ttl is _UNSET:
            default_ttl = conf.get_settings().default_ttl
        if not conf.is_valid_ttl(default_ttl):
            raise ValueError(
                f"Cache namespace {namespace!r}: default_ttl must be a whole number of seconds "
                f"from 1 to {conf.MAX_TTL} (10 years), or None, not {default_ttl!r}."
            )
        self.namespace = namespace
        self.default_ttl: int | None = default_ttl
        self.fail_silently = fail_silently
        self.sensitive = sensitive
        self._metrics = metrics_.for_namespace(namespace) if metrics else None
        self.provider: Provider = bind_provider(namespace, cache, cache_type)
        self.cache_alias = self.provider.alias
        self._redis_totals = metrics == "redis"
        if self._redis_totals:
            self._push_totals_to_redis()

    def _push_totals_to_redis(self) -> None:
        from agenthub_cache import metrics_redis

        if not self.provider.sums_metrics:
            raise ValueError(
                f"Cache namespace {self.namespace!r}: METRICS='redis' needs a Redis cache, and "
                f"{self.cache_alias!r} is not one; use METRICS=True (per process) there."
            )
        assert self._metrics is not None
        metrics_redis.register(self, self._metrics)

    def metrics(self) -> dict[str, Any]:
        """This process's counters of the namespace: hits, misses, sets, deletes, errors by
        kind, latency (count and sum, in total and per operation); ``{"enabled": False}``
        when ``METRICS`` is off. With ``METRICS="redis"``, ``"totals"`` holds every process's
        counts as pushed to Redis (they trail by up to ``metrics_redis.PUSH_INTERVAL``)."""
        if self._metrics is None:
            return metrics_.DISABLED
        snapshot = self._metrics.snapshot()
        if self._redis_totals:
            from agenthub_cache import metrics_redis

            try:
                snapshot["totals"] = metrics_redis.totals(self)
            except Exception as exc:  # a down store: this process's counts still show
                snapshot["totals"] = None
                snapshot["totals_error"] = f"{type(exc).__name__}: {exc}"
        return snapshot

    def __repr__(self) -> str:
        return f"<CacheService {self.namespace!r} on {self.cache_alias!r}>"

    # -- entries ------------------------------------------------------------------------------

    def make_key(self, key: str) -> str:
        """The key under which ``caches[cache_alias]`` holds this entry (before KEY_PREFIX)."""
        key = self._key(key)
        with self._policy("make_key"):
            return self.provider.make_key(key)
        raise CacheUnavailable(f"Cache namespace {self.namespace!r}: cannot build keys now.")

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when missing or expired."""
        key = self._key(key)
        started = perf_counter_ns()
        try:
            return self._read(started, self.provider.get(key, MISS), default)
        except BaseException as exc:
            if self._failed("get", started, exc):
                return default
            raise

    async def aget(self, key: str, default: Any = None) -> Any:
        key = self._key(key)
        started = perf_counter_ns()
        try:
            return self._read(started, await self.provider.aget(key, MISS), default)
        except BaseException as exc:
            if self._failed("get", started, exc):
                return default
            raise

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The found entries among ``keys``, as a dict."""
        keys_ = self._keys(keys)
        with self._policy("get_many") as call:
            return call.read_many(len(keys_), self.provider.get_many(keys_) if keys_ else {})
        return {}

    async def aget_many(self, keys: Iterable[str]) -> dict[str, Any]:
        keys_ = self._keys(keys)
        with self._policy("get_many") as call:
            return call.read_many(len(keys_), await self.provider.aget_many(keys_) if keys_ else {})
        return {}

    def set(
        self, key: str, value: Any, ttl: Any = None, indexes: Mapping[str, str] | None = None
    ) -> bool:
        """Store ``value``; file it under ``indexes`` (and out of any it was filed under)."""
        key, timeout, indexes_ = self._key(key), self._timeout(ttl), self._indexes(indexes)
        started = perf_counter_ns()
        try:
            stored = self.provider.set(key, value, timeout, indexes_)
        except BaseException as exc:
            if self._failed("set", started, exc, (value,)):
                return False
            raise
        return self._wrote("set", started, stored)

    async def aset(
        self, key: str, value: Any, ttl: Any = None, indexes: Mapping[str, str] | None = None
    ) -> bool:
        key, timeout, indexes_ = self._key(key), self._timeout(ttl), self._indexes(indexes)
        started = perf_counter_ns()
        try:
            stored = await self.provider.aset(key, value, timeout, indexes_)
        except BaseException as exc:
            if self._failed("set", started, exc, (value,)):
                return False
            raise
        return self._wrote("set", started, stored)

    def add(
        self, key: str, value: Any, ttl: Any = None, indexes: Mapping[str, str] | None = None
    ) -> bool:
        """``set`` only if ``key`` is absent; True if this call stored it."""
        key, timeout, indexes_ = self._key(key), self._timeout(ttl), self._indexes(indexes)
        with self._policy("add", values=(value,)) as call:
            stored = self.provider.add(key, value, timeout, indexes_)
            call.wrote(stored)
            return stored
        return False

    async def aadd(
        self, key: str, value: Any, ttl: Any = None, indexes: Mapping[str, str] | None = None
    ) -> bool:
        key, timeout, indexes_ = self._key(key), self._timeout(ttl), self._indexes(indexes)
        with self._policy("add", values=(value,)) as call:
            stored = await self.provider.aadd(key, value, timeout, indexes_)
            call.wrote(stored)
            return stored
        return False

    def set_many(self, mapping: Mapping[str, Any], ttl: Any = None) -> list[str]:
        """Store every item (unindexed); return the keys that could not be stored."""
        if not isinstance(mapping, Mapping):
            raise self._error("mapping", "must be a dict of key to value.")
        self._keys(mapping, "key in mapping")
        timeout = self._timeout(ttl)
        with self._policy("set_many", values=mapping.values()) as call:
            failed = self.provider.set_many(mapping, timeout) if mapping else []
            call.wrote(len(mapping) - len(failed))
            return failed
        return list(mapping)

    async def aset_many(self, mapping: Mapping[str, Any], ttl: Any = None) -> list[str]:
        if not isinstance(mapping, Mapping):
            raise self._error("mapping", "must be a dict of key to value.")
        self._keys(mapping, "key in mapping")
        timeout = self._timeout(ttl)
        with self._policy("set_many", values=mapping.values()) as call:
            failed = await self.provider.aset_many(mapping, timeout) if mapping else []
            call.wrote(len(mapping) - len(failed))
            return failed
        return list(mapping)

    def delete(self, key: str) -> bool:
        """Remove ``key`` and its index filings; True if it existed."""
        key = self._key(key)
        with self._policy("delete") as call:
            existed = self.provider.delete(key)
            call.deleted(existed)
            return existed
        return False

    async def adelete(self, key: str) -> bool:
        key = self._key(key)
        with self._policy("delete") as call:
            existed = await self.provider.adelete(key)
            call.deleted(existed)
            return existed
        return False

    def delete_many(self, keys: Iterable[str]) -> int:
        """Remove every key; return how many existed."""
        keys_ = self._keys(keys)
        with self._policy("delete_many") as call:
            deleted = self.provider.delete_many(keys_) if keys_ else 0
            call.deleted(deleted)
            return deleted
        return 0

    async def adelete_many(self, keys: Iterable[str]) -> int:
        keys_ = self._keys(keys)
        with self._policy("delete_many") as call:
            deleted = await self.provider.adelete_many(keys_) if keys_ else 0
            call.deleted(deleted)
            return deleted
        return 0

    def has_key(self, key: str) -> bool:
        key = self._key(key)
        with self._policy("has_key"):
            return self.provider.has_key(key)
        return False

    async def ahas_key(self, key: str) -> bool:
        key = self._key(key)
        with self._policy("has_key"):
            return await self.provider.ahas_key(key)
        return False

    def __contains__(self, key: object) -> bool:
        return self.has_key(key)  # type: ignore[arg-type]  # validated inside

    def pop(self, key: str, default: Any = None) -> Any:
        """Atomically get and delete: of racing callers, exactly one gets the value."""
        key = self._key(key)
        with self._policy("pop") as call:
            value = call.read(self.provider.pop(key, MISS), MISS)
            call.deleted(value is not MISS)
            return default if value is MISS else value
        return default

    async def apop(self, key: str, default: Any = None) -> Any:
        key = self._key(key)
        with self._policy("pop") as call:
            value = call.read(await self.provider.apop(key, MISS), MISS)
            call.deleted(value is not MISS)
            return default if value is MISS else value
        return default

    def incr(self, key: str, delta: int = 1, ttl: Any = None, *, default: int = 0) -> int:
        """Atomically add ``delta``; a missing key starts at 0 and gets ``ttl`` once.

        ``default`` is returned when the store is unreachable and the namespace fails
        silently: a rate limit passes ``default=LIMIT + 1`` to refuse while it cannot count.
        """
        key, delta, timeout = self._key(key), self._delta(delta), self._timeout(ttl)
        default = self._delta(default, "default")
        with self._policy("incr"):
            return self.provider.incr(key, delta, timeout)
        return default

    async def aincr(self, key: str, delta: int = 1, ttl: Any = None, *, default: int = 0) -> int:
        key, delta, timeout = self._key(key), self._delta(delta), self._timeout(ttl)
        default = self._delta(default, "default")
        with self._policy("incr"):
            return await self.provider.aincr(key, delta, timeout)
        return default

    def decr(self, key: str, delta: int = 1, ttl: Any = None, *, default: int = 0) -> int:
        """``incr`` by ``-delta``."""
        return self.incr(key, -self._delta(delta), ttl, default=default)

    async def adecr(self, key: str, delta: int = 1, ttl: Any = None, *, default: int = 0) -> int:
        return await self.aincr(key, -self._delta(delta), ttl, default=default)

    def ttl(self, key: str) -> int | None:
        """Seconds left (rounded up); ``None`` if it never expires, ``0`` if missing."""
        key = self._key(key)
        with self._policy("ttl"):
            remaining = self.provider.ttl(key)
            return None if remaining is None else math.ceil(remaining)
        return 0

    async def attl(self, key: str) -> int | None:
        key = self._key(key)
        with self._policy("ttl"):
            remaining = await self.provider.attl(key)
            return None if remaining is None else math.ceil(remaining)
        return 0

    def touch(self, key: str, ttl: Any = None) -> bool:
        """Give ``key`` a new TTL (the namespace default if ``None``); False if missing."""
        key, timeout = self._key(key), self._timeout(ttl)
        with self._policy("touch"):
            return self.provider.touch(key, timeout)
        return False

    async def atouch(self, key: str, ttl: Any = None) -> bool:
        key, timeout = self._key(key), self._timeout(ttl)
        with self._policy("touch"):
            return await self.provider.atouch(key, timeout)
        return False

    def persist(self, key: str) -> bool:
        """Make ``key`` never expire; False if missing."""
        return self.touch(key, FOREVER)

    async def apersist(self, key: str) -> bool:
        return await self.atouch(key, FOREVER)

    def get_or_set(
        self, key: str, default: Any, ttl: Any = None, wait: float = STAMPEDE_WAIT
    ) -> Any:
        """The value of ``key``, else ``default`` (called if callable) stored and returned.

        Concurrent misses compute ``default`` once; the others wait up to ``wait`` seconds.
        An async function is refused here (``TypeError``): ``aget_or_set`` awaits it.
        """
        key, timeout, wait = self._key(key), self._timeout(ttl), self._wait(wait)
        if is_async_callable(default):
            raise TypeError(
                f"Cache namespace {self.namespace!r}: get_or_set() got an async function as "
                "default; await aget_or_set(), which awaits it, or pass a sync function."
            )
        compute = CallerDefault(default, self.namespace)
        try:
            with self._policy("get_or_set", values=compute.values):
                return self.provider.get_or_set(key, compute, timeout, wait)
            return compute()  # the store is down and the namespace fails silently
        except CallerFailed as failed:
            error = failed.error
        raise error

    async def aget_or_set(
        self, key: str, default: Any, ttl: Any = None, wait: float = STAMPEDE_WAIT
    ) -> Any:
        key, timeout, wait = self._key(key), self._timeout(ttl), self._wait(wait)
        if is_async_callable(default):
            # The provider computes in its sync path, in a worker thread that runs the coroutine
            # on this event loop: stampede protection stays the provider's, on every store.
            compute = CallerDefault(async_to_sync(default), self.namespace)
            get_or_set = sync_to_async(self.provider.get_or_set)
        else:
            compute = CallerDefault(default, self.namespace)
            get_or_set = self.provider.aget_or_set
        try:
            with self._policy("get_or_set", values=compute.values):
                return await get_or_set(key, compute, timeout, wait)
            # The store is down and the namespace fails silently: compute without storing.
            return await default() if is_async_callable(default) else compute()
        except CallerFailed as failed:
            error = failed.error
        raise error

    def lock(
        self, name: str, timeout: Any = 60.0, blocking_timeout: float | None = 10.0
    ) -> GuardedLock:
        """A lock for ``with``/``async with``; distributed where the store is shared.

        ``timeout``: seconds the lock holds unless released first; ``None`` or ``FOREVER``:
        until released.
        """
        name = self._key(name, "lock name")
        self._timeout(timeout, "timeout")
        if timeout is FOREVER:  # checked, and the providers take None for "never expires"
            timeout = None
        return GuardedLock(self.provider.lock(name, timeout, blocking_timeout), self._admin("lock"))
