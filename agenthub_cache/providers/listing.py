"""Base of providers whose store can list keys by prefix: no generation, flush by prefix."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator
from typing import ClassVar

from agenthub_cache import keys
from agenthub_cache.exceptions import NotSupported
from agenthub_cache.providers.base import Capabilities, Flush
from agenthub_cache.providers.generations import NoGeneration
from agenthub_cache.providers.generic import GenericProvider
from agenthub_cache.providers.indexes import Directory

#: Stored keys deleted per call to ``delete_stored`` by ``clear`` (progress is reported per batch).
CLEAR_BATCH = 1000


class ListingProvider(NoGeneration, GenericProvider):
    """Subclasses say how to list and delete the stored keys under a prefix."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        list_keys=True, flush=Flush.PREFIX, ttl=True
    )
    hash_long_keys = False  # a hashed key could not be listed back

    def stored_prefix(self) -> str:
        """The namespace prefix as the backend stores it (with KEY_PREFIX and version)."""
        stored = keys.stored_prefix(self.backend.make_key, self.namespace)
        if stored is None:
            raise NotSupported(
                f"Cache namespace {self.namespace!r}: the {self.alias!r} cache's KEY_FUNCTION does "
                "not keep key prefixes, so the namespace cannot be listed or flushed."
            )
        return stored

    def list_stored(self, prefix: str, live_only: bool) -> list[str]:
        """Stored keys that start with ``prefix`` (exactly, case-sensitively)."""
        raise NotImplementedError

    def delete_stored(self, stored_keys: list[str]) -> int:
        """Delete these stored keys; return how many existed."""
        raise NotImplementedError

    # -- indexes: the stored records are the directory -----------------------------------------

    def directory_add(
        self, index: str, value: str, expiry: float | None, scope: str | None
    ) -> None:
        """Nothing to note where ``_read_directory`` lists the index records."""
        if self.key_head() is None:  # a KEY_FUNCTION that hides prefixes: keep a directory
            super().directory_add(index, value, expiry, scope)

    def directory_remove(self, index: str, value: str, scope: str | None) -> None:
        """Nothing to drop: the deleted record was the directory's entry."""
        if self.key_head() is None:
            super().directory_remove(index, value, scope)

    def _read_directory(self, scope: str | None) -> Directory:
        if self.key_head() is None:
            return super()._read_directory(scope)
        prefix = self.stored_prefix()
        head = f"{keys.INDEX}:"
        directory: Directory = {}
        for stored in self.list_stored(prefix + head, live_only=True):
            pair = keys.index_pair_from_stored(stored[len(prefix) :])
            if pair is not None:
                directory[pair] = 0.0  # not noted: ``_settle`` reads the record
        return directory

    def _write_directory(self, scope: str | None, directory: Directory) -> None:
        """Nothing to write: ``prune`` deletes the dead records themselves."""
        if self.key_head() is None:
            super()._write_directory(scope, directory)

    def iter_keys(self, pattern: str = "*") -> Iterator[str]:
        prefix = self.stored_prefix()
        for stored in self.list_stored(prefix, live_only=True):
            key = keys.entry_key_from_stored(stored[len(prefix) :])
            if key is not None and fnmatch.fnmatchcase(key, pattern):
                yield key

    def clear(self, progress: Callable[[int], None] | None = None) -> int:
        """Delete every stored key of the namespace (entries, records, locks), and no key
        of another shape that someone else put under its prefix.

        Deletes in batches of ``CLEAR_BATCH`` keys, calling ``progress(entries_deleted_so_far)``
        after each. Returns how many live entries there were.
        """
        prefix = self.stored_prefix()
        with self.index_guard():
            live = {
                k
                for k in self.list_stored(prefix, live_only=True)
                if keys.entry_key_from_stored(k[len(prefix) :]) is not None
            }
            stored = [
                k
                for k in self.list_stored(prefix, live_only=False)
                if keys.written_by_app(k[len(prefix) :])
            ]
            deleted = 0
            for start in range(0, len(stored), CLEAR_BATCH):
                batch = stored[start : start + CLEAR_BATCH]
                self.delete_stored(batch)
                deleted += sum(1 for k in batch if k in live)
                if progress is not None:
                    progress(deleted)
        return len(live)
