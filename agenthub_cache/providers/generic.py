"""The generic provider: every operation through Django's public cache API, on any backend.

It cannot list a store, so it scopes the namespace by a generation (``generations.py``), keeps
indexes as cache records (``indexes.py``), serializes index writes of this process with a
process lock (``locking.py``), and reaches async through Django's thread hop (``threaded.py``).
Providers of stores that do better subclass it and override what their store does natively.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from django.core.cache.backends.base import BaseCache

from agenthub_cache import keys
from agenthub_cache.exceptions import NotSupported
from agenthub_cache.providers import stampede
from agenthub_cache.providers.base import NotAnInteger
from agenthub_cache.providers.generations import GenerationScope
from agenthub_cache.providers.index_use import IndexUse, IndexUseChanged
from agenthub_cache.providers.indexes import RecordIndexes
from agenthub_cache.providers.locking import CacheLock, ProcessGuards
from agenthub_cache.providers.stored_keys import StoredKeys
from agenthub_cache.providers.threaded import ThreadedAsync

MISSING: Any = object()

#: Rounds of add-then-incr before ``incr`` gives up on a key that keeps vanishing in between
#: (another process's add wins the next round, so no increment is lost to a racing expiry).
INCR_ATTEMPTS = 5
#: Rounds of "mark the namespace indexed, then file" before an indexed write files without
#: confirming the mark (a store that culls the record as soon as it is written).
MARK_ATTEMPTS = 3


class GenericProvider(
    StoredKeys, ProcessGuards, RecordIndexes, IndexUse, GenerationScope, ThreadedAsync
):
    """Generic provider: every §3 operation through Django's public cache API."""

    def write_entry(self, stored: str, value: Any, timeout: float | None) -> None:
        """``backend.set`` of an entry's stored key (a store may write it more directly)."""
        self.backend.set(stored, value, timeout)

    def maybe_filed(self, key: str, scope: str | None) -> bool:
        """Whether ``key`` may be filed under an index (its meta record exists): what an
        unindexed write checks before writing, to take the index path only when needed (not
        at all in a namespace that was never indexed: ``never_indexed``)."""
        return bool(self.backend.has_key(self.key_of(keys.META, key, scope)))

    def _filing(self, key: str, scope: str | None, write: Callable[[], bool]) -> bool:
        """``write()`` (the entry), then nothing if it returned False, else file ``key`` under
        ``indexes``: under the index guard, once the namespace is marked indexed
        (``prepare_filing``; the database cache undoes and repeats a write that finds the mark
        gone)."""
        for attempt in range(MARK_ATTEMPTS):
            self.prepare_filing(scope)
            try:
                with self.filing(key):
                    if attempt < MARK_ATTEMPTS - 1:  # a store that keeps losing it: file anyway
                        self.confirm_indexed(scope)
                    return write()
            except IndexUseChanged:
                continue
        raise AssertionError("unreachable: the last attempt confirms nothing")

    def make_key(self, key: str) -> str:
        """The key to read this entry through ``caches[alias]`` (before its KEY_PREFIX)."""
        return self.entry_key(key, self.scope())

    # -- single entries -----------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        return self.read_entry(key, default)

    def get_many(self, keys_: Iterable[str]) -> dict[str, Any]:
        return self.read_entries(keys_ if isinstance(keys_, list) else list(keys_))

    def set(
        self, key: str, value: Any, timeout: float | None, indexes: Mapping[str, str] | None = None
    ) -> bool:
        """An unindexed set of a key that was never filed writes alone (no lock, no
        transaction); one that is filed, or gets indexes, writes and re-files under the index
        guard. The check comes first: checked after the write, an index read in between would
        see the new value under the old filing.

        An indexed set of the same key by another thread can land between the check and the
        write, and would leave the key filed with this unindexed value. So a filing of the key
        in that interval (``index_mark`` moved) sends this set down the guarded path too:
        written again and unfiled, as if that indexed set had come first (it did run within
        this call)."""
        scope = self.cached_scope()
        stored = self.entry_key(key, scope)
        if not indexes:
            mark = self.index_mark(key)
            if mark is not None and (self.never_indexed(scope) or not self.maybe_filed(key, scope)):
                self.write_entry(stored, value, timeout)
                if self.index_mark(key) == mark:
                    return True
            with self.index_guard():
                self.backend.set(stored, value, timeout)
                self.unfile_entry(key, scope)
            return True
        filed = indexes

        def write() -> bool:
            self.backend.set(stored, value, timeout)
            self.file_entry(key, filed, timeout, scope)
            return True

        return self._filing(key, scope, write)

    def add(
        self, key: str, value: Any, timeout: float | None, indexes: Mapping[str, str] | None = None
    ) -> bool:
        scope = self.scope()
        stored = self.entry_key(key, scope)
        if indexes:
            filed = indexes

            def write() -> bool:
                if not self.backend.add(stored, value, timeout):
                    return False
                self.file_entry(key, filed, timeout, scope)
                return True

            return self._filing(key, scope, write)
        if not self.never_indexed(scope) and self.maybe_filed(key, scope):
            # filed, its entry expired: add and unfile
            with self.index_guard():
                if not self.backend.add(stored, value, timeout):
                    return False
                self.unfile_entry(key, scope)
            return True
        return bool(self.backend.add(stored, value, timeout))

    def set_many(self, mapping: Mapping[str, Any], timeout: float | None) -> list[str]:
        """Unfiled keys are written without a lock; if any key of the batch is filed, the batch
        is written and those keys unfiled under the index guard (checked before the write, so an
        index read never sees a new value under its old filing). A filing of one of its keys
        between the check and the write sends the batch down the guarded path too, as ``set``."""
        scope = self.cached_scope()
        by_stored = {self.entry_key(key, scope): key for key in mapping}
        values = {stored: mapping[key] for stored, key in by_stored.items()}
        marks = self.index_marks(mapping)
        if None not in marks and (self.never_indexed(scope) or not self._any_filed(mapping, scope)):
            failed = self.backend.set_many(values, timeout)
            if self.index_marks(mapping) == marks:
                return [by_stored[stored] for stored in failed or []]
        with self.index_guard():
            failed = self.backend.set_many(values, timeout)
            self.unfile_entries(mapping, scope)  # those filed now (read again under the guard)
        return [by_stored[stored] for stored in failed or []]

    def _any_filed(self, keys_: Iterable[str], scope: str | None) -> bool:
        """Whether any of ``keys_`` has a meta record (one read)."""
        metas = [self.stored_key(keys.META, key, scope=scope) for key in keys_]
        return bool(self.backend.get_many(metas))

    def delete(self, key: str) -> bool:
        scope = self.scope()
        stored = self.entry_key(key, scope)
        deleted = bool(self.backend.delete(stored))
        if not self.never_indexed(scope) and self.maybe_filed(key, scope):
            with self.index_guard():
                self.backend.delete(stored)  # last writer, then unfiled
                self.unfile_entry(key, scope)
        return deleted

    def delete_many(self, keys_: Iterable[str]) -> int:
        """``delete`` of each key, batched: the entries in one ``delete_entries``, then one
        read of their meta records; the filed keys are deleted again and unfiled under the
        index guard, as ``delete`` does (the same order: an indexed write that lands between
        the two steps is still caught and unfiled)."""
        scope = self.scope()
        wanted = list(dict.fromkeys(keys_))  # a key named twice is deleted (and counted) once
        deleted = self.delete_entries([self.entry_key(key, scope) for key in wanted])
        by_meta = {self.stored_key(keys.META, key, scope=scope): key for key in wanted}
        filed = [by_meta[meta] for meta in self.backend.get_many(list(by_meta))]
        if filed:
            with self.index_guard():
                for key in filed:
                    self.backend.delete(self.entry_key(key, scope))  # last writer, then unfiled
                    self.unfile_entry(key, scope)
        return deleted

    def delete_entries(self, stored_keys: list[str]) -> int:
        """Delete these stored entry keys; how many existed. One call per key here (Django's
        ``delete_many`` does not count); a store that counts a batch deletes it at once."""
        return sum(bool(self.backend.delete(stored)) for stored in stored_keys)

    def has_key(self, key: str) -> bool:
        return bool(self.backend.has_key(self.entry_key(key, self.scope())))

    def pop(self, key: str, default: Any = None) -> Any:
        """Get and delete; the caller whose delete removed the entry is the one winner.

        The entry and its meta record are read together: a key that is not filed is popped
        without the index guard (no lock held across the store's I/O). If a filing of the key
        ran meanwhile, it is unfiled under the guard if the entry is gone."""
        scope = self.scope()
        stored = self.entry_key(key, scope)
        meta = self.key_of(keys.META, key, scope)
        mark = self.index_mark(key)
        found = self.backend.get_many([stored, meta])
        if mark is None or meta in found:
            with self.index_guard():
                value = self.backend.get(stored, MISSING)
                if value is MISSING or not self.backend.delete(stored):
                    return default
                self.unfile_entry(key, scope)
            return value
        value = found.get(stored, MISSING)
        if value is MISSING or not self.backend.delete(stored):
            return default
        if self.index_mark(key) != mark:
            with self.index_guard():
                if not self.backend.has_key(stored):
                    self.unfile_entry(key, scope)
        return value

    def incr(self, key: str, delta: int, timeout: float | None) -> int:
        """Start a missing key at 0 with ``timeout``, then add ``delta`` keeping its expiry."""
        stored = self.entry_key(key, self.scope())
        not_an_integer: tuple[type[BaseException], ...] = (
            TypeError,  # LocMemCache adds delta to whatever it unpickles
            NotAnInteger,
            *self.not_an_integer_errors,
        )
        try:
            if self._backend_class.incr is BaseCache.incr:  # read-modify-write: under the guard
                with self.index_guard():
                    return self._incr_keeping_expiry(stored, delta, timeout)
            for _ in range(INCR_ATTEMPTS):  # the store's own atomic add and incr: no lock
                self.backend.add(stored, 0, timeout)
                try:
                    return int(self.backend.incr(stored, delta))
                except ValueError:  # expired or deleted between add and incr: start again
                    continue
            self.backend.add(stored, delta, timeout)  # a store whose incr never finds its add
            return delta
        except not_an_integer as exc:
            raise self.not_an_integer(key, str(exc)) from exc

    def not_an_integer(self, key: str, reason: str) -> ValueError:
        """The error of ``incr`` on a value that is not an int: the same on every store."""
        return ValueError(
            f"Cache namespace {self.namespace!r}: cannot increment {key!r}: its value is not an "
            f"integer ({reason})."
        )

    def _incr_keeping_expiry(self, stored: str, delta: int, timeout: float | None) -> int:
        """Django's generic ``incr`` re-sets the default timeout; keep the entry's own."""
        value = self.backend.get(stored)
        if value is None:
            self.backend.set(stored, delta, timeout)
            return delta
        if isinstance(value, bool) or not isinstance(value, int):  # as Redis and memcached
            raise NotAnInteger(f"it holds a {type(value).__name__}")
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
        remaining = self.stored_ttl(self.entry_key(key, self.scope()))
        if remaining and self.whole_second_expiry:  # less the second ``stored_seconds`` added
            return max(remaining - 1, 0.001)
        return remaining

    def touch(self, key: str, timeout: float | None) -> bool:
        """A key that is not filed is touched without the index guard; a filed one (or one
        filed meanwhile) is touched again under it, with its index filings moved to the new
        expiry."""
        scope = self.scope()
        stored = self.entry_key(key, scope)
        mark = self.index_mark(key)
        if mark is not None and (self.never_indexed(scope) or not self.maybe_filed(key, scope)):
            touched = bool(self.backend.touch(stored, timeout))
            if self.index_mark(key) == mark:
                return touched
        with self.index_guard():
            if not self.backend.touch(stored, timeout):
                return False
            self.retime_entry(key, timeout, scope)
        return True

    def get_or_set(self, key: str, default: Any, timeout: float | None, wait: float) -> Any:
        """``stampede.get_or_set`` on this store: the entry by ``get``, ``set`` and ``add``,
        the guard a ``CacheLock`` (an atomic ``add``)."""
        guard: CacheLock | None = None

        def perform(action: stampede.Action) -> Any:
            nonlocal guard
            if isinstance(action, stampede.Read):
                return self.get(key, stampede.MISSING)
            if isinstance(action, stampede.TakeGuard):
                guard = CacheLock(self, "get_or_set", action.seconds, 0, guard_of=key)
                return guard.acquire(blocking=False)
            if isinstance(action, stampede.Store):
                (self.add if action.only_if_absent else self.set)(key, action.value, timeout)
            elif isinstance(action, stampede.Release):
                assert guard is not None  # released only after it was taken
                guard.release()
            else:
                time.sleep(action.seconds)
            return None

        return stampede.drive(stampede.get_or_set(default, wait), perform)

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

    def stats(self) -> dict[str, Any]:
        listed = self.capabilities.list_keys
        directory = self.index_directory(self.scope())
        return {
            "entries": self.count() if listed else None,
            "indexes": len(directory),
            "index_names": sorted({name for name, _ in directory}),
            "memory_bytes": None,
        }

    def close(self) -> None:
        """Release what the provider holds beyond the backend (nothing, generically)."""
