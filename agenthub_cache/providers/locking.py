"""Locks: the lock contract, process locks for index writes, and the generic cache lock.

``LockBase`` is what ``service.lock()`` hands out on every provider. ``CacheLock`` (also the
generic provider's ``get_or_set`` guard, ``stampede.py``) works on any cache with an atomic
``add``: memcached, LocMem, the database cache and Redis have one, so the lock is distributed
wherever the store is shared; on the file cache it is best effort. ``ProcessGuards`` is the
opt-in mixin that gives a generic provider one re-entrant lock per (store, namespace) in this
process.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async

from agenthub_cache import keys
from agenthub_cache.exceptions import LockError
from agenthub_cache.registry import dotted_path

if TYPE_CHECKING:
    from django.core.cache.backends.base import BaseCache

    from agenthub_cache.providers.base import Provider
    from agenthub_cache.providers.generic import GenericProvider

POLL_SECONDS = 0.02

_process_locks: dict[tuple[str, str], threading.RLock] = {}
_process_locks_guard = threading.Lock()


def process_lock(store: str, namespace: str) -> threading.RLock:
    """One re-entrant lock per (store, namespace) in this process, shared by all threads."""
    with _process_locks_guard:
        return _process_locks.setdefault((store, namespace), threading.RLock())


#: ``IndexWrites`` counts filings in this many slots, a key in the one its hash names.
FILING_SLOTS = 64


class IndexWrites:
    """How many filings (an entry written, then filed under indexes) of one (store, namespace)
    this process has begun and finished, counted per slot of keys; changed under the process
    lock, read without it.

    A write without indexes checks that its key is not filed, then writes, without the guard.
    ``mark(key)`` before the check and again after the write tells it whether a filing of
    that key (or of another key of its slot) ran in between: the one kind of index write that
    can file a key after the check said it was not."""

    __slots__ = ("finished", "started")

    def __init__(self) -> None:
        self.started = [0] * FILING_SLOTS
        self.finished = [0] * FILING_SLOTS

    def mark(self, key: str) -> int | None:
        """Filings begun so far in ``key``'s slot; ``None`` while one is under way."""
        slot = hash(key) % FILING_SLOTS
        finished = self.finished[slot]  # read first: equal counts mean none ran in between
        started = self.started[slot]
        return started if started == finished else None

    def marks(self, keys_: Iterable[str]) -> list[int | None]:
        """``mark`` of each key (a batch's, in one call)."""
        started, finished = self.started, self.finished
        marks: list[int | None] = []
        for key in keys_:
            slot = hash(key) % FILING_SLOTS
            done = finished[slot]
            begun = started[slot]
            marks.append(begun if begun == done else None)
        return marks

    @contextmanager
    def filing(self, key: str) -> Iterator[None]:
        """Counts one filing of ``key`` (its caller holds the process lock)."""
        slot = hash(key) % FILING_SLOTS
        self.started[slot] += 1
        try:
            yield
        finally:
            self.finished[slot] += 1


_index_writes: dict[tuple[str, str], IndexWrites] = {}


def index_writes(store: str, namespace: str) -> IndexWrites:
    """The ``IndexWrites`` of (store, namespace) in this process, shared by all threads."""
    with _process_locks_guard:
        return _index_writes.setdefault((store, namespace), IndexWrites())


class ProcessGuards:
    """Mixin of generic providers: index writes and reads under one process-wide lock."""

    namespace: str
    alias: str
    _backend_class: type[BaseCache]

    if TYPE_CHECKING:

        @property
        def backend(self) -> BaseCache: ...

    @property
    def store_id(self) -> str:
        """Names the store (not this thread's backend object) for process-wide locks."""
        return f"{dotted_path(self._backend_class)}:{self.alias}"

    @cached_property
    def _lock(self) -> threading.RLock:
        return process_lock(self.store_id, self.namespace)

    @cached_property
    def _index_writes(self) -> IndexWrites:
        return index_writes(self.store_id, self.namespace)

    def index_guard(self) -> AbstractContextManager[Any]:
        """Held by every write that changes index records (a process-wide lock here)."""
        return self._lock

    @contextmanager
    def filing(self, key: str) -> Iterator[None]:
        """Holds ``index_guard()`` for a write that files ``key`` under indexes, counted for
        ``index_mark`` from before the guard is taken until after it is left: a guard that is
        a transaction (the database cache's) has committed the filing by the time the count
        says it is over, so an unindexed write that checks meanwhile takes the guarded path."""
        with self._lock, self._index_writes.filing(key), self.index_guard():
            yield

    def index_marks(self, keys_: Iterable[str]) -> list[int | None]:
        return self._index_writes.marks(keys_)

    def index_mark(self, key: str) -> int | None:
        """Filings of ``key`` (and of its slot's other keys) begun in this process so far,
        ``None`` while one is under way: the same before and after an unguarded write, no
        filing ran in between."""
        return self._index_writes.mark(key)

    def read_guard(self) -> AbstractContextManager[Any]:
        """Held by index reads: a value and its index records are written one after the other,
        and a reader between the two would see the new value under its old filing."""
        return self._lock

    def atomic_add(self, stored: str, value: Any, timeout: float | None) -> bool:
        """``add`` that no other thread of this process can race (the file cache's is not atomic)."""
        with self._lock:
            return bool(self.backend.add(stored, value, timeout))


class LockBase:
    """What ``service.lock()`` returns: ``with``/``async with``; released only by its owner."""

    def __init__(
        self,
        provider: Provider,
        name: str,
        timeout: float | None,
        blocking_timeout: float | None,
    ) -> None:
        self.provider = provider
        self.name = name
        self.timeout = timeout
        self.blocking_timeout = blocking_timeout
        self._token: str | None = None

    def acquire(self, blocking: bool = True) -> bool:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def locked(self) -> bool:
        raise NotImplementedError

    def _not_acquired(self) -> LockError:
        return LockError(
            f"Cache namespace {self.provider.namespace!r}: could not acquire lock "
            f"{self.name!r} within {self.blocking_timeout} s."
        )

    def _not_held(self) -> LockError:
        return LockError(
            f"Cache namespace {self.provider.namespace!r}: lock {self.name!r} is not held."
        )

    def __enter__(self) -> LockBase:
        if not self.acquire():
            raise self._not_acquired()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    async def __aenter__(self) -> LockBase:
        return await sync_to_async(self.__enter__)()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await sync_to_async(self.release)()


class CacheLock(LockBase):
    """A lock that is one cache entry, taken by an atomic ``add`` with a random token."""

    provider: GenericProvider

    def __init__(
        self,
        provider: GenericProvider,
        name: str,
        timeout: float | None,
        blocking_timeout: float | None,
        *,
        guard_of: str | None = None,
    ) -> None:
        """``guard_of=key``: the ``get_or_set`` guard of ``key``, a two-part lock key that no
        lock name (one escaped part) can equal, as on Redis (``layout.lock``)."""
        super().__init__(provider, name, timeout, blocking_timeout)
        parts = (name,) if guard_of is None else (name, guard_of)
        self._key = provider.stored_key(keys.LOCK, *parts, scope=None)

    def acquire(self, blocking: bool = True) -> bool:
        token = secrets.token_hex(8)
        deadline = (
            None if self.blocking_timeout is None else time.monotonic() + self.blocking_timeout
        )
        while True:
            if self.provider.atomic_add(self._key, token, self._stored_timeout()):
                self._token = token
                return True
            if not blocking or (deadline is not None and time.monotonic() >= deadline):
                return False
            time.sleep(POLL_SECONDS)

    def _stored_timeout(self) -> int | None:
        """Whole seconds that hold the lock at least ``timeout`` on this store, as an entry's
        TTL is stored (memcached would drop a 0.5 s lock at once: anyone could then take it)."""
        return None if self.timeout is None else self.provider.stored_seconds(self.timeout)

    def release(self) -> None:
        if self._token is None:
            raise self._not_held()
        if self.provider.backend.get(self._key) == self._token:
            self.provider.backend.delete(self._key)
        self._token = None

    def locked(self) -> bool:
        return bool(self.provider.backend.has_key(self._key))
