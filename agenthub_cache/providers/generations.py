"""Namespace generations: scoping and O(1) flush for stores that cannot list their keys.

The namespace's *generation* is a random token stored under one key; it is part of every other
key of the namespace. A flush writes a new token (O(1)): the old entries become unreachable at
once and age out (or are evicted by the store's LRU).

The generation is cached per process (per store and namespace). Reads fetch the generation
together with the values in one ``get_many`` and use the values only if the generation is the
one they were read under (else they read again under the new one), so a flush by any process
is seen by the next read. ``set`` writes under the cached generation while it was read or
confirmed by a read at most ``GENERATION_MAX_AGE`` ago, and reads it again after that: after another process's flush, a
write of this process within that window goes under the old generation and is invisible (never
wrong), like a write just before the flush. Operations whose result depends on what is stored
(``add``, ``incr``, ``delete``, ...) read the generation first (``scope()``). Each generation
has its own index-use record (``index_use.py``): read with the generation when both are due,
written before a new generation is published.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agenthub_cache import keys

if TYPE_CHECKING:
    from django.core.cache.backends.base import BaseCache

#: Seconds a write trusts the generation this process last read before it reads it again.
#: Reads check the generation with every value they fetch, but a process that only writes
#: never would: after another process's flush it wrote under the dead generation forever,
#: every write invisible (while ``set`` returned True). With this bound such a process writes
#: into the void for at most this long after a flush, for one extra read a second (none in a
#: process that also reads: each read that finds the generation unchanged confirms it).
GENERATION_MAX_AGE = 1.0

#: ``(store, namespace)`` -> (the generation this process last saw, ``time.monotonic()`` then).
_generations: dict[tuple[str, str], tuple[str, float]] = {}


def new_generation() -> str:
    return secrets.token_hex(4)


class GenerationScope:
    """Mixin of generic providers: ``scope()`` is the generation, ``clear()`` starts a new one."""

    namespace: str

    if TYPE_CHECKING:

        @property
        def backend(self) -> BaseCache: ...

        @property
        def _lock(self) -> threading.RLock: ...

        @property
        def store_id(self) -> str: ...

        def entry_key(self, key: str, scope: str | None) -> str: ...

        def index_use_key(self, scope: str | None) -> str: ...

        def index_use_stale(self, scope: str | None) -> bool: ...

        def remember_index_use(
            self, scope: str | None, record: Any, asked: float, asked_wall: float
        ) -> Any: ...

        def open_index_use(self, scope: str, previous: Any) -> None: ...

    def generation_key(self) -> str:
        return keys.build_key(self.namespace, keys.GENERATION)

    def _remember(self, generation: str) -> str:
        _generations[(self.store_id, self.namespace)] = (generation, time.monotonic())
        return generation

    def known_scope(self) -> str | None:
        """The generation this process last saw, however old (read from the store the first
        time): for reads, which check it with the values they fetch."""
        seen = _generations.get((self.store_id, self.namespace))
        return seen[0] if seen is not None else self.scope()

    def scope(self) -> str | None:
        """The namespace generation now in force, read from the store (with the index-use
        record of the one this process knows, in the same request, when that is due)."""
        gen_key = self.generation_key()
        seen = _generations.get((self.store_id, self.namespace))
        if seen is not None and self.index_use_stale(seen[0]):
            asked, asked_wall = time.monotonic(), time.time()
            use_key = self.index_use_key(seen[0])
            found = self.backend.get_many([gen_key, use_key])
            generation = found.get(gen_key)
            if generation is not None and str(generation) == seen[0]:
                self.remember_index_use(seen[0], found.get(use_key), asked, asked_wall)
        else:
            generation = self.backend.get(gen_key)
        if generation is None:  # never written, or lost (evicted, a restarted server)
            # Reinstate the one this process knows, if any: nothing flushed it, and what this
            # process wrote since it was lost becomes visible again with it. A new one gets its
            # index-use record first: nothing can be filed under it before it is published.
            known = seen[0] if seen is not None else new_generation()
            with self._lock:  # the file cache's add() is not atomic: one creator per process
                if seen is None:
                    self.open_index_use(known, None)
                self.backend.add(gen_key, known, None)
                generation = self.backend.get(gen_key)
            if seen is None and generation is not None and str(generation) != known:
                self.backend.delete(self.index_use_key(known))  # another process's won
        if generation is None:  # a store that keeps nothing (or evicted it at once)
            return new_generation()
        return self._remember(str(generation))

    def cached_scope(self) -> str | None:
        """The generation for a write: the one this process last saw, read again from the
        store when it is older than ``GENERATION_MAX_AGE``."""
        seen = _generations.get((self.store_id, self.namespace))
        if seen is not None and time.monotonic() - seen[1] < GENERATION_MAX_AGE:
            return seen[0]
        return self.scope()

    def read_entry(self, key: str, default: Any = None) -> Any:
        """``get`` of one entry: value and generation in one round trip."""
        found = self.read_entries([key])
        return found.get(key, default)

    def read_entries(self, keys_: list[str]) -> dict[str, Any]:
        """``get_many`` of entries, with the generation in the same ``get_many``; read again
        under the new generation if it changed (a flush) since this process last saw it."""
        generation = self.known_scope()
        gen_key = self.generation_key()
        by_stored = {self.entry_key(key, generation): key for key in keys_}
        found = self.backend.get_many([gen_key, *by_stored])
        current = found.pop(gen_key, None)
        if current is None or str(current) != generation:
            generation = self.scope()
            by_stored = {self.entry_key(key, generation): key for key in keys_}
            found = self.backend.get_many(list(by_stored)) if by_stored else {}
        else:
            self._remember(str(current))  # confirmed: writes may trust it a while longer
        return {by_stored[stored]: value for stored, value in found.items()}

    def clear(self, progress: Callable[[int], None] | None = None) -> int | None:
        """Start a new generation: O(1); the old entries expire on their own.

        A flush by generation writes the new generation and its index-use record (carried
        over from the old one's), and never calls ``progress``.
        """
        previous = self.backend.get(self.index_use_key(self.known_scope()))
        generation = new_generation()
        self.open_index_use(generation, previous)
        self.backend.set(self.generation_key(), generation, None)
        self._remember(generation)
        return None


class NoGeneration:
    """Mixin of providers whose store can list keys: no generation, reads go straight through."""

    if TYPE_CHECKING:

        @property
        def backend(self) -> BaseCache: ...

        def entry_key(self, key: str, scope: str | None) -> str: ...

    def scope(self) -> str | None:
        return None

    def cached_scope(self) -> str | None:
        return None

    def read_entry(self, key: str, default: Any = None) -> Any:
        return self.backend.get(self.entry_key(key, None), default)

    def read_entries(self, keys_: list[str]) -> dict[str, Any]:
        by_stored = {self.entry_key(key, None): key for key in keys_}
        found = self.backend.get_many(list(by_stored))
        return {by_stored[stored]: value for stored, value in found.items()}
