"""LocMemCache: list, count, flush and TTL straight from the process's own dicts.

Whether a namespace was ever indexed is kept in the process too (no record in the store): no
other process can reach a LocMemCache, so there is nobody to wait for (``index_use.py``).
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from agenthub_cache import keys
from agenthub_cache.providers.base import Capabilities, Flush, StoreScope
from agenthub_cache.providers.listing import ListingProvider
from agenthub_cache.providers.pickling import check_picklable

#: ``(id of a LocMemCache's dict, namespace)`` of the namespaces indexed since their last flush.
#: Django keeps each LOCATION's dict for the life of the process, so its id names it.
_indexed: set[tuple[int, str]] = set()


class LocMemProvider(ListingProvider):
    """Reads ``LocMemCache``'s private ``_cache``/``_expire_info`` under its own lock."""

    @property
    def store(self) -> Any:
        """The LocMemCache, for its private ``_cache``/``_expire_info``/``_lock`` (untyped)."""
        return self.backend

    capabilities: ClassVar[Capabilities] = Capabilities(
        list_keys=True, flush=Flush.PREFIX, ttl=True
    )
    store_scope: ClassVar[StoreScope] = StoreScope.PROCESS

    def set_many(self, mapping: Mapping[str, Any], timeout: float | None) -> list[str]:
        check_picklable(mapping.values())  # a rejected batch writes nothing
        return super().set_many(mapping, timeout)

    def incr(self, key: str, delta: int, timeout: float | None) -> int:
        value = self.backend.get(self.entry_key(key, None), 0)
        if isinstance(value, bool) or not isinstance(value, int):  # LocMem adds to a float
            raise self.not_an_integer(key, f"it holds a {type(value).__name__}")
        return super().incr(key, delta, timeout)

    # -- the hot path: LocMemCache's own get and set, less a re-validation of keys that are
    # valid by construction (escaped ASCII, length-checked or hashed by ``stored_key``).

    def read_entry(self, key: str, default: Any = None) -> Any:
        store = self.store
        raw = store.make_key(self.entry_key(key, None))
        with store._lock:
            if store._has_expired(raw):
                store._delete(raw)
                return default
            pickled = store._cache[raw]
            store._cache.move_to_end(raw, last=False)
        return pickle.loads(pickled)

    def write_entry(self, stored: str, value: Any, timeout: float | None) -> None:
        store = self.store
        raw = store.make_key(stored)
        pickled = pickle.dumps(value, store.pickle_protocol)
        with store._lock:
            store._set(raw, pickled, timeout)

    def never_indexed(self, scope: str | None) -> bool:
        return (id(self.store._cache), self.namespace) not in _indexed

    def prepare_filing(self, scope: str | None) -> None:
        """Nothing to wait for: every writer of this store is a thread of this process."""

    def confirm_indexed(self, scope: str | None) -> None:
        """Marked under the index guard, before the write files anything (and ``clear``
        forgets it under the same guard)."""
        _indexed.add((id(self.store._cache), self.namespace))

    def clear(self, progress: Callable[[int], None] | None = None) -> int:
        with self.index_guard():
            cleared = super().clear(progress)
            _indexed.discard((id(self.store._cache), self.namespace))
        return cleared

    def maybe_filed(self, key: str, scope: str | None) -> bool:
        """A dict lookup (an expired meta counts: the index path then checks properly)."""
        store = self.store
        return store.make_key(self.key_of(keys.META, key, scope)) in store._cache

    def list_stored(self, prefix: str, live_only: bool) -> list[str]:
        now = time.time()
        with self.store._lock:
            expiry = self.store._expire_info
            return [
                k
                for k in self.store._cache
                if k.startswith(prefix) and (not live_only or _alive(expiry.get(k, -1.0), now))
            ]

    def delete_stored(self, stored_keys: list[str]) -> int:
        with self.store._lock:
            return sum(1 for k in stored_keys if self.store._delete(k))

    def stored_ttl(self, stored: str) -> float | None:
        raw = self.backend.make_key(stored)
        with self.store._lock:
            if raw not in self.store._cache:
                return 0.0
            expires = self.store._expire_info.get(raw, -1.0)
        return None if expires is None else max(0.0, expires - time.time())

    def stats(self) -> dict[str, Any]:
        prefix = self.stored_prefix()
        with self.store._lock:
            size = sum(len(v) for k, v in self.store._cache.items() if k.startswith(prefix))
        return {**super().stats(), "memory_bytes": size}


def _alive(expires: float | None, now: float) -> bool:
    return expires is None or expires > now
