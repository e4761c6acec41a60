"""The provider contract, and the generic provider that keeps it on any Django cache.

A provider wraps one Django cache backend for one namespace and holds the mechanics: how keys
are stored, how indexes are kept, how the namespace is listed and flushed. Timeouts reach it
already resolved, in Django's convention (``None`` = never expire, ``0`` = expire at once).

The generic provider uses only the backend's public API. It cannot list a store, so it
scopes the namespace by a *generation*: a random token stored under one key, part of every
other key; a flush writes a new token (O(1)) and the old entries become unreachable and age
out. Index bookkeeping lives in ``RecordIndexes`` (``indexes.py``).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from asgiref.sync import sync_to_async
from django.core.cache import caches
from django.core.cache.backends.base import MEMCACHE_MAX_KEY_LENGTH, BaseCache

from agenthub_cache import keys, registry
from agenthub_cache.exceptions import InvalidKey, NotSupported
from agenthub_cache.providers.indexes import RecordIndexes
from agenthub_cache.providers.locking import CacheLock, stampede_get_or_set

MISSING: Any = object()


@dataclass(frozen=True)
class Capabilities:
    """What a provider does natively; the management command and README table show these."""

    list_keys: bool = False  # keys()/iter_keys()/count() without NotSupported
    flush: str = "generation"  # "prefix" | "scan" | "generation" | "none"
    indexes: str = "process"  # "process" | "cross-process" | "atomic"
    ttl: bool = False  # ttl() reads the store's expiry
    distributed_lock: bool = False
    native_async: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_process_locks: dict[tuple[str, str], threading.RLock] = {}
_process_locks_guard = threading.Lock()


def process_lock(store: str, namespace: str) -> threading.RLock:
    """One re-entrant lock per (store, namespace) in this process, shared by all threads."""
    with _process_locks_guard:
        return _process_locks.setdefault((store, namespace), threading.RLock())


#: Rounds of add-then-incr before ``incr`` gives up on a key that keeps vanishing in between
#: (another process's add wins the next round, so no increment is lost to a racing expiry).
INCR_ATTEMPTS = 5


class Provider(RecordIndexes):
    """Generic provider: every §3 operation through Django's public cache API."""

    capabilities: ClassVar[Capabilities] = Capabilities()
    #: Longest key (after the backend's own prefix and version) the store accepts.
    max_key_length: ClassVar[int | None] = MEMCACHE_MAX_KEY_LENGTH
    #: Replace over-long keys by a digest instead of refusing them (stores that cannot list).
    hash_long_keys: ClassVar[bool] = True
    #: The store's counters cannot go below zero (memcached's own rule).
    counters_floor_at_zero: ClassVar[bool] = False
    #: Errors that mean "the store is unreachable or timed out" (``FAIL_SILENTLY`` covers these).
    unavailable_errors: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)
    #: Among those, the ones that are a refusal (bad credentials): they raise, never silenced.
    refused_errors: tuple[type[BaseException], ...] = ()
    #: Errors with which the store refuses a value it cannot hold (too large): a ``ValueError``.
    refused_value_errors: tuple[type[BaseException], ...] = ()

    def is_unavailable(self, error: BaseException) -> bool:
        """``error`` means the store is unreachable or timed out, and is not a refusal."""
        return isinstance(error, self.unavailable_errors) and not isinstance(
            error, self.refused_errors
        )

    def __init__(
        self, backend: BaseCache, alias: str, namespace: str, *, shared: bool = True
    ) -> None:
        self._own_backend = None if shared else backend
        self._backend_class = type(backend)
        self.alias = alias
        self.namespace = namespace
        self._lock = process_lock(self.store_id, namespace)

    @property
    def backend(self) -> BaseCache:
        """This thread's backend object: Django's cache clients are not shared across threads."""
        return self._own_backend if self._own_backend is not None else caches[self.alias]

    @property
    def store_id(self) -> str:
        """Names the store (not this thread's backend object) for process-wide locks."""
        return f"{registry.dotted_path(self._backend_class)}:{self.alias}"

    def index_guard(self) -> AbstractContextManager[Any]:
        """Held by every write that changes index records (a process-wide lock here)."""
        return self._lock

    def read_guard(self) -> AbstractContextManager[Any]:
        """Held by index reads: a value and its index records are written one after the other,
        and a reader between the two would see the new value under its old filing."""
        return self._lock

    def describe(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "backend": registry.dotted_path(self._backend_class),
            "provider": registry.dotted_path(type(self)),
        }

    # -- keys -------------------------------------------------------------------------------

    def scope(self) -> str | None:
        """The namespace generation now in force (``None`` for stores that list)."""
        gen_key = keys.build_key(self.namespace, keys.GENERATION)
        generation = self.backend.get(gen_key)
        if generation is None:
            with self._lock:  # the file cache's add() is not atomic: one creator per process
                self.backend.add(gen_key, secrets.token_hex(4), None)
                generation = self.backend.get(gen_key)
        return str(generation) if generation is not None else secrets.token_hex(4)

    def stored_key(self, kind: str, *parts: str, scope: str | None) -> str:
        """The key handed to the backend for ``parts`` of ``kind``; long keys hashed or refused."""
        built = keys.build_key(self.namespace, kind, *parts, generation=scope)
        limit = self.max_key_length
        if limit is None or len(self.backend.make_key(built).encode()) <= limit:
            return built  # memcached counts bytes: a non-ASCII KEY_PREFIX takes more than one
        if self.hash_long_keys or kind != keys.ENTRY:
            return keys.hashed_key(self.namespace, kind, *parts, generation=scope)
        raise InvalidKey(
            f"Cache namespace {self.namespace!r}: key {parts[0][:40]!r}... is too long for the "
            f"{self.alias!r} cache ({self.max_key_length} bytes after prefixing)."
        )

    def entry_key(self, key: str, scope: str | None) -> str:
        return self.stored_key(keys.ENTRY, key, scope=scope)

    def atomic_add(self, stored: str, value: Any, timeout: float | None) -> bool:
        """``add`` that no other thread of this process can race (the file cache's is not atomic)."""
        with self._lock:
            return bool(self.backend.add(stored, value, timeout))

    def make_key(self, key: str) -> str:
        """The key to read this entry through ``caches[alias]`` (before its KEY_PREFIX)."""
        return self.entry_key(key, self.scope())

    # -- single entries -----------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        return self.backend.get(self.entry_key(key, self.scope()), default)

    def get_many(self, keys_: Iterable[str]) -> dict[str, Any]:
        scope = self.scope()
        by_stored = {self.entry_key(key, scope): key for key in keys_}
        found = self.backend.get_many(list(by_stored))
        return {by_stored[stored]: value for stored, value in found.items()}

    def set(
        self, key: str, value: Any, timeout: float | None, indexes: Mapping[str, str] | None = None
    ) -> bool:
        scope = self.scope()
        with self.index_guard():
            self.backend.set(self.entry_key(key, scope), value, timeout)
            self.file_entry(key, indexes or {}, timeout, scope)
        return True

    def add(
        self, key: str, value: Any, timeout: float | None, indexes: Mapping[str, str] | None = None
    ) -> bool:
        scope = self.scope()
        with self.index_guard():
            if not self.backend.add(self.entry_key(key, scope), value, timeout):
                return False
            self.file_entry(key, indexes or {}, timeout, scope)
        return True

    def set_many(self, mapping: Mapping[str, Any], timeout: float | None) -> list[str]:
        scope = self.scope()
        with self.index_guard():
            by_stored = {self.entry_key(key, scope): key for key in mapping}
            failed = self.backend.set_many(
                {stored: mapping[key] for stored, key in by_stored.items()}, timeout
            )
            self.unfile_entries(mapping, scope)
        return [by_stored[stored] for stored in failed or []]

    def delete(self, key: str) -> bool:
        scope = self.scope()
        with self.index_guard():
            self.unfile_entry(key, scope)
            return bool(self.backend.delete(self.entry_key(key, scope)))

    def delete_many(self, keys_: Iterable[str]) -> int:
        return sum(self.delete(key) for key in keys_)

    def has_key(self, key: str) -> bool:
        return bool(self.backend.has_key(self.entry_key(key, self.scope())))

    def pop(self, key: str, default: Any = None) -> Any:
        """Get and delete; the caller whose delete removed the entry is the one winner."""
        scope = self.scope()
        stored = self.entry_key(key, scope)
        with self.index_guard():
            value = self.backend.get(stored, MISSING)
            if value is MISSING or not self.backend.delete(stored):
                return default
            self.unfile_entry(key, scope)
        return value

    def incr(self, key: str, delta: int, timeout: float | None) -> int:
        """Start a missing key at 0 with ``timeout``, then add ``delta`` keeping its expiry."""
        stored = self.entry_key(key, self.scope())
        with self.index_guard():
            if self._backend_class.incr is BaseCache.incr:
                return self._incr_keeping_expiry(stored, delta, timeout)
            for _ in range(INCR_ATTEMPTS):
                self.backend.add(stored, 0, timeout)
                try:
                    return int(self.backend.incr(stored, delta))
                except ValueError:  # expired or deleted between add and incr: start again
                    continue
            self.backend.add(stored, delta, timeout)  # a store whose incr never finds its add
            return delta

    def _incr_keeping_expiry(self, stored: str, delta: int, timeout: float | None) -> int:
        """Django's generic ``incr`` re-sets the default timeout; keep the entry's own."""
        value = self.backend.get(stored)
        if value is None:
            self.backend.set(stored, delta, timeout)
            return delta
        remaining = self.stored_ttl(stored)
        if remaining == 0:
            remaining = timeout
        self.backend.set(stored, int(value) + delta, remaining)
        return int(value) + delta

    def stored_ttl(self, stored: str) -> float | None:
        """Seconds left of a stored key, ``None`` for no expiry, ``0`` if missing."""
        raise NotSupported(
            f"Cache namespace {self.namespace!r}: the {self.alias!r} cache cannot report a TTL."
        )

    def ttl(self, key: str) -> float | None:
        return self.stored_ttl(self.entry_key(key, self.scope()))

    def touch(self, key: str, timeout: float | None) -> bool:
        scope = self.scope()
        with self.index_guard():
            if not self.backend.touch(self.entry_key(key, scope), timeout):
                return False
            self.retime_entry(key, timeout, scope)
        return True

    def get_or_set(self, key: str, default: Any, timeout: float | None, wait: float) -> Any:
        return stampede_get_or_set(self, key, default, timeout, wait)

    def lock(self, name: str, timeout: float | None, blocking_timeout: float | None) -> CacheLock:
        return CacheLock(self, name, timeout, blocking_timeout)

    # -- the namespace as a whole --------------------------------------------------------------

    def iter_keys(self, pattern: str = "*") -> Iterator[str]:
        raise NotSupported(
            f"Cache namespace {self.namespace!r}: the {self.alias!r} cache "
            f"({self._backend_class.__name__}) cannot list its keys."
        )

    def count(self) -> int:
        return sum(1 for _ in self.iter_keys())

    def clear(self, progress: Callable[[int], None] | None = None) -> int | None:
        """Start a new generation: O(1); the old entries expire on their own.

        Providers that delete in batches call ``progress(entries_deleted_so_far)`` after each
        batch; a flush by generation is one write and never calls it.
        """
        gen_key = keys.build_key(self.namespace, keys.GENERATION)
        self.backend.set(gen_key, secrets.token_hex(4), None)
        return None

    def stats(self) -> dict[str, Any]:
        listed = self.capabilities.list_keys
        directory = self.index_directory(self.scope())
        return {
            "entries": self.count() if listed else None,
            "indexes": len(directory),
            "index_names": sorted({name for name, _ in directory}),
            "memory_bytes": None,
        }

    def indexes_of(self, key: str) -> dict[str, str]:
        """``{index: value}`` that ``key`` is filed under (empty if none, or if missing)."""
        filed = self.backend.get(self.stored_key(keys.META, key, scope=self.scope()))
        return dict(filed) if isinstance(filed, dict) else {}

    def close(self) -> None:
        """Release what the provider holds beyond the backend (nothing, generically)."""

    # -- async twins: Django's own thread hop; native providers override ----------------------

    async def aget(self, key: str, default: Any = None) -> Any:
        return await sync_to_async(self.get)(key, default)

    async def aget_many(self, keys_: Iterable[str]) -> dict[str, Any]:
        return await sync_to_async(self.get_many)(list(keys_))

    async def aset(
        self, key: str, value: Any, timeout: float | None, indexes: Mapping[str, str] | None = None
    ) -> bool:
        return await sync_to_async(self.set)(key, value, timeout, indexes)

    async def aadd(
        self, key: str, value: Any, timeout: float | None, indexes: Mapping[str, str] | None = None
    ) -> bool:
        return await sync_to_async(self.add)(key, value, timeout, indexes)

    async def aset_many(self, mapping: Mapping[str, Any], timeout: float | None) -> list[str]:
        return await sync_to_async(self.set_many)(mapping, timeout)

    async def adelete(self, key: str) -> bool:
        return await sync_to_async(self.delete)(key)

    async def adelete_many(self, keys_: Iterable[str]) -> int:
        return await sync_to_async(self.delete_many)(list(keys_))

    async def ahas_key(self, key: str) -> bool:
        return await sync_to_async(self.has_key)(key)

    async def apop(self, key: str, default: Any = None) -> Any:
        return await sync_to_async(self.pop)(key, default)

    async def aincr(self, key: str, delta: int, timeout: float | None) -> int:
        return await sync_to_async(self.incr)(key, delta, timeout)

    async def attl(self, key: str) -> float | None:
        return await sync_to_async(self.ttl)(key)

    async def atouch(self, key: str, timeout: float | None) -> bool:
        return await sync_to_async(self.touch)(key, timeout)

    async def aget_or_set(self, key: str, default: Any, timeout: float | None, wait: float) -> Any:
        return await sync_to_async(self.get_or_set)(key, default, timeout, wait)

    async def akeys(self, pattern: str = "*") -> list[str]:
        return await sync_to_async(lambda: list(self.iter_keys(pattern)))()

    async def acount(self) -> int:
        return await sync_to_async(self.count)()

    async def aclear(self, progress: Callable[[int], None] | None = None) -> int | None:
        return await sync_to_async(self.clear)(progress)

    async def astats(self) -> dict[str, Any]:
        return await sync_to_async(self.stats)()

    async def afind(self, index: str, value: str) -> list[str]:
        return await sync_to_async(self.find)(index, value)

    async def aget_by_index(self, index: str, value: str) -> dict[str, Any]:
        return await sync_to_async(self.get_by_index)(index, value)

    async def adelete_by_index(self, index: str, value: str) -> int:
        return await sync_to_async(self.delete_by_index)(index, value)

    async def aprune(self) -> int:
        return await sync_to_async(self.prune)()

    async def aclose(self) -> None:
        await sync_to_async(self.close)()
