"""Secondary indexes kept as cache records, for stores with no native sets.

Three kinds of record, all ordinary cache entries of the namespace:

* a **meta** record per entry: ``{index: value}``, what the entry is filed under now;
* an **index** record per (index, value): ``{key: expires_at or None}``, living as long as
  its longest-lived member;
* a **directory** of the (index, value) pairs that have a record, each with the expiry its
  record had when last written, so ``prune`` and ``stats`` can find them on stores that cannot
  list. It is split into ``DIRECTORY_SHARDS`` records by a hash of the pair, so a new index
  value rewrites one shard, not a record of every value. A pair whose expiry has passed is
  checked against its record when its shard is rewritten (re-dated if the record lives on,
  dropped if it is gone), so the directory holds the live pairs, not every value ever
  indexed. Stores that list their keys (``listing.py``) keep no directory: they list the
  index records themselves.

Writers hold ``index_guard()`` (one process-wide lock per store and namespace; the database
provider adds a transaction). Readers trust nothing: a key is returned only if its entry
exists and its meta record still names that index value, so a stale member (expired,
deleted, re-filed, or left by a racing process) is never returned; ``prune`` removes them.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from agenthub_cache import keys

if TYPE_CHECKING:
    from django.core.cache.backends.base import BaseCache

_ABSENT: Any = object()
#: ``{(index, value): expiry of its record when last written}`` (``0.0``: not known).
Directory = dict[tuple[str, str], float | None]
#: The directory is kept in this many records, a pair in the one ``shard_of`` names, so that
#: a new index value rewrites one of them, not a record of every value.
DIRECTORY_SHARDS = 64
#: Starts the one part of a directory shard's key (``i:~12``): no index name starts with it.
SHARD_MARK = "~"


def shard_of(index: str, value: str) -> int:
    return zlib.crc32(f"{index}\0{value}".encode()) % DIRECTORY_SHARDS


def _record_expiry(members: Mapping[str, float | None]) -> float | None:
    """When a record of these (non-expired) members expires: its longest-lived member's time."""
    expiries = list(members.values())
    if any(expiry is None for expiry in expiries):
        return None
    return max(e for e in expiries if e is not None)


def _timeout_for(members: Mapping[str, float | None]) -> int | None:
    """A record lives as long as its longest-lived member: whole seconds, rounded up (memcached
    would round 1.9 s down to 1, and drop the record before its member)."""
    expires = _record_expiry(members)
    return None if expires is None else max(1, math.ceil(expires - time.time()))


class RecordIndexes:
    """Mixin of ``Provider``: index bookkeeping through get/set/delete of records."""

    namespace: str

    if TYPE_CHECKING:

        @property
        def backend(self) -> BaseCache: ...

        def scope(self) -> str | None: ...
        def stored_key(self, kind: str, *parts: str, scope: str | None) -> str: ...
        def entry_key(self, key: str, scope: str | None) -> str: ...
        def index_guard(self) -> AbstractContextManager[Any]: ...
        def read_guard(self) -> AbstractContextManager[Any]: ...

    # -- writing (callers hold index_guard) ----------------------------------------------------

    def file_entry(
        self, key: str, indexes: Mapping[str, str], timeout: float | None, scope: str | None
    ) -> None:
        """File ``key`` under exactly ``indexes`` (its value is already written)."""
        meta_key = self.stored_key(keys.META, key, scope=scope)
        old: dict[str, str] = self.backend.get(meta_key) or {}
        if not old and not indexes:
            return
        expires = None if timeout is None else time.time() + timeout
        for index, value in old.items():
            if indexes.get(index) != value:
                self._remove_member(index, value, key, scope)
        for index, value in indexes.items():
            self._add_member(index, value, key, expires, scope)
        if indexes:
            self.backend.set(meta_key, dict(indexes), timeout)
        else:
            self.backend.delete(meta_key)

    def unfile_entry(self, key: str, scope: str | None) -> None:
        """Take ``key`` out of every index it is filed under."""
        meta_key = self.stored_key(keys.META, key, scope=scope)
        old: dict[str, str] | None = self.backend.get(meta_key)
        if old:
            for index, value in old.items():
                self._remove_member(index, value, key, scope)
            self.backend.delete(meta_key)

    def retime_entry(self, key: str, timeout: float | None, scope: str | None) -> None:
        """``key`` got a new TTL (touch, persist): its meta and index filings follow it.

        Without this an index would drop a touched entry at its old expiry, and a record
        would expire before its longest-lived member.
        """
        meta_key = self.stored_key(keys.META, key, scope=scope)
        filed: dict[str, str] | None = self.backend.get(meta_key)
        if not filed:
            return
        self.backend.set(meta_key, filed, timeout)
        expires = None if timeout is None else time.time() + timeout
        for index, value in filed.items():
            self._add_member(index, value, key, expires, scope)

    def unfile_entries(self, keys_: Iterable[str], scope: str | None) -> None:
        """``unfile_entry`` for many keys, with one read to find those that have indexes."""
        by_meta = {self.stored_key(keys.META, key, scope=scope): key for key in keys_}
        for meta_key in self.backend.get_many(list(by_meta)):
            self.unfile_entry(by_meta[meta_key], scope)

    def _index_key(self, index: str, value: str, scope: str | None) -> str:
        return self.stored_key(keys.INDEX, index, value, scope=scope)

    def _add_member(
        self, index: str, value: str, key: str, expires: float | None, scope: str | None
    ) -> None:
        record_key = self._index_key(index, value, scope)
        members: dict[str, float | None] = self.backend.get(record_key) or {}
        created = not members
        now = time.time()
        members = {k: e for k, e in members.items() if e is None or e > now}
        members[key] = expires
        self.backend.set(record_key, members, _timeout_for(members))
        if created:
            self.directory_add(index, value, _record_expiry(members), scope)

    def _remove_member(self, index: str, value: str, key: str, scope: str | None) -> None:
        record_key = self._index_key(index, value, scope)
        members: dict[str, float | None] | None = self.backend.get(record_key)
        if not members or key not in members:
            return
        del members[key]
        if members:
            self.backend.set(record_key, members, _timeout_for(members))
        else:  # its last member went (delete, pop, re-filing): the value is no longer indexed
            self.backend.delete(record_key)
            self.directory_remove(index, value, scope)

    def indexes_of(self, key: str) -> dict[str, str]:
        """``{index: value}`` that ``key`` is filed under (empty if none, or if missing)."""
        filed = self.backend.get(self.stored_key(keys.META, key, scope=self.scope()))
        return dict(filed) if isinstance(filed, dict) else {}

    # -- the directory: which (index, value) pairs have a record ------------------------------

    def _shard_key(self, shard: int, scope: str | None) -> str:
        return self.stored_key(keys.INDEX, f"{SHARD_MARK}{shard}", scope=scope)

    def _read_shards(self, shards: Iterable[int], scope: str | None) -> dict[int, Directory]:
        """``{shard: {(index, value): expiry of its record when last written}}``."""
        by_key = {self._shard_key(shard, scope): shard for shard in shards}
        found = self.backend.get_many(list(by_key))
        read: dict[int, Directory] = {shard: {} for shard in by_key.values()}
        for stored, items in found.items():
            shard = read[by_key[stored]]
            for index, value, expiry in items or ():
                shard[(index, value)] = expiry
        return read

    def _write_shard(self, shard: int, scope: str | None, pairs: Directory) -> None:
        stored = self._shard_key(shard, scope)
        if pairs:
            items = [(index, value, expiry) for (index, value), expiry in sorted(pairs.items())]
            self.backend.set(stored, items, None)
        else:
            self.backend.delete(stored)

    def directory_add(
        self, index: str, value: str, expiry: float | None, scope: str | None
    ) -> None:
        """A record was created for (index, value): note it in its shard of the directory
        (a rewrite of 1/``DIRECTORY_SHARDS`` of it, settled as it goes)."""
        shard = shard_of(index, value)
        pairs = self._settle(self._read_shards([shard], scope)[shard], scope)
        pairs[(index, value)] = expiry
        self._write_shard(shard, scope, pairs)

    def directory_remove(self, index: str, value: str, scope: str | None) -> None:
        """(index, value) lost its record: drop it from its shard (one shard rewritten)."""
        shard = shard_of(index, value)
        pairs = self._read_shards([shard], scope)[shard]
        if pairs.pop((index, value), _ABSENT) is not _ABSENT:
            self._write_shard(shard, scope, pairs)

    def _read_directory(self, scope: str | None) -> Directory:
        """Every (index, value) pair noted in the directory, with its noted expiry (and those
        of the one-record directory that earlier releases wrote, until ``prune`` drops it)."""
        directory: Directory = {}
        legacy: list[Any] = self.backend.get(self.stored_key(keys.INDEX, scope=scope)) or []
        for item in legacy:
            index, value, *expiry = item  # the first layout stored bare (index, value) pairs
            directory[(index, value)] = expiry[0] if expiry else 0.0
        for pairs in self._read_shards(range(DIRECTORY_SHARDS), scope).values():
            directory.update(pairs)
        return directory

    def _write_directory(self, scope: str | None, directory: Directory) -> None:
        """Replace the directory by ``directory`` (``prune``), shard by shard."""
        by_shard: dict[int, Directory] = {shard: {} for shard in range(DIRECTORY_SHARDS)}
        for (index, value), expiry in directory.items():
            by_shard[shard_of(index, value)][(index, value)] = expiry
        for shard, pairs in by_shard.items():
            self._write_shard(shard, scope, pairs)
        self.backend.delete(self.stored_key(keys.INDEX, scope=scope))  # the one-record layout

    def _settle(self, directory: Directory, scope: str | None) -> Directory:
        """Each pair whose noted expiry has passed checked against its record: later members
        extend a record past the expiry noted here (such a pair is re-dated); a pair whose
        record is gone is dropped."""
        now = time.time()
        lapsed = {
            self._index_key(index, value, scope): (index, value)
            for (index, value), expiry in directory.items()
            if expiry is not None and expiry <= now
        }
        if lapsed:
            found = self.backend.get_many(list(lapsed))
            for record_key, pair in lapsed.items():
                members = found.get(record_key)
                if members:
                    directory[pair] = _record_expiry(members)
                else:
                    del directory[pair]
        return directory

    def index_directory(self, scope: str | None) -> set[tuple[str, str]]:
        """The (index, value) pairs that have a record now."""
        return set(self._settle(self._read_directory(scope), scope))

    # -- reading -------------------------------------------------------------------------------

    def _live_members(self, index: str, value: str, scope: str | None) -> dict[str, Any]:
        """Entries filed under (index, value) now: checked against their values and metas."""
        members: dict[str, float | None] = (
            self.backend.get(self._index_key(index, value, scope)) or {}
        )
        now = time.time()
        candidates = [k for k, e in members.items() if e is None or e > now]
        if not candidates:
            return {}
        entry_keys = {self.entry_key(k, scope): k for k in candidates}
        meta_keys = {self.stored_key(keys.META, k, scope=scope): k for k in candidates}
        found = self.backend.get_many([*entry_keys, *meta_keys])
        filed = {
            meta_keys[stored]
            for stored, meta in found.items()
            if stored in meta_keys and isinstance(meta, dict) and meta.get(index) == value
        }
        return {
            key: found[stored]
            for stored, key in entry_keys.items()
            if stored in found and key in filed
        }

    def find(self, index: str, value: str) -> list[str]:
        with self.read_guard():
            return list(self._live_members(index, value, self.scope()))

    def get_by_index(self, index: str, value: str) -> dict[str, Any]:
        with self.read_guard():
            return self._live_members(index, value, self.scope())

    def delete_by_index(self, index: str, value: str) -> int:
        scope = self.scope()
        with self.index_guard():
            members = self._live_members(index, value, scope)
            for key in members:
                self.unfile_entry(key, scope)
                self.backend.delete(self.entry_key(key, scope))
            return len(members)

    def prune(self) -> int:
        """Drop members that are expired, gone or re-filed; return how many were dropped."""
        scope = self.scope()
        dropped = 0
        with self.index_guard():
            directory = self._read_directory(scope)
            for index, value in sorted(directory):
                record_key = self._index_key(index, value, scope)
                members: dict[str, float | None] = self.backend.get(record_key) or {}
                live = self._live_members(index, value, scope)
                kept = {k: e for k, e in members.items() if k in live}
                dropped += len(members) - len(kept)
                if kept:
                    self.backend.set(record_key, kept, _timeout_for(kept))
                    directory[(index, value)] = _record_expiry(kept)
                else:
                    self.backend.delete(record_key)
                    del directory[(index, value)]
            self._write_directory(scope, directory)
        return dropped
