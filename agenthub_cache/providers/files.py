"""FileBasedCache: generation flush (it cannot list), TTL read from each file's header.

The generation is one file like any entry's; a flush replaces it (Django writes a temp file
and renames it over the old one). So this process checks its cached generation with one
``stat`` of that file (inode, size, mtime), instead of opening and unpickling it on every
read; any replacement, by any process, changes what ``stat`` returns.
"""

from __future__ import annotations

import os
import pickle
import time
import zlib
from collections.abc import Callable, Mapping
from hashlib import md5
from typing import Any, ClassVar, cast

from agenthub_cache import keys
from agenthub_cache.providers.base import Capabilities, Flush
from agenthub_cache.providers.generic import GenericProvider
from agenthub_cache.providers.pickling import check_picklable

#: ``(store, namespace)`` -> (the generation file's stat signature, the generation).
_seen: dict[tuple[str, str], tuple[tuple[int, int, int], str]] = {}


class FileProvider(GenericProvider):
    capabilities: ClassVar[Capabilities] = Capabilities(flush=Flush.GENERATION, ttl=True)

    def set_many(self, mapping: Mapping[str, Any], timeout: float | None) -> list[str]:
        check_picklable(mapping.values())  # a rejected batch writes nothing
        return super().set_many(mapping, timeout)

    def _file(self, stored: str) -> str:
        path: str = cast(Any, self.backend)._key_to_file(stored)
        return path

    def _generation_file(self) -> str:
        """The generation's file, found once per thread and backend."""
        backend: Any = self.backend  # binds this thread's backend (forgetting the old one's)
        bound = self._bound
        try:
            path: str = bound.generation_file
        except AttributeError:
            path = bound.generation_file = backend._key_to_file(self.generation_key())
        return path

    def _signature(self) -> tuple[int, int, int] | None:
        try:
            found = os.stat(self._generation_file())
        except OSError:
            return None
        return (found.st_ino, found.st_size, found.st_mtime_ns)

    def scope(self) -> str | None:
        """The generation, re-read only when its file changed since this process read it."""
        where = (self.store_id, self.namespace)
        signature = self._signature()
        seen = _seen.get(where)
        if signature is not None and seen is not None and seen[0] == signature:
            return seen[1]
        generation = super().scope()
        signature = self._signature()  # taken after the read: a later change shows next time
        if generation is not None and signature is not None:
            _seen[where] = (signature, generation)
        return generation

    def cached_scope(self) -> str | None:
        return self.scope()  # a stat: cheap enough for every write to be current

    def clear(self, progress: Callable[[int], None] | None = None) -> int | None:
        _seen.pop((self.store_id, self.namespace), None)
        return super().clear(progress)

    def read_entry(self, key: str, default: Any = None) -> Any:
        """What ``FileBasedCache.get`` does, on the file of a key that is valid by construction:
        without validating it again (Django's key warnings walk every character: ~2 µs)."""
        backend: Any = self.backend
        stored = backend.make_key(self.entry_key(key, self.scope()))
        digest = md5(stored.encode(), usedforsecurity=False).hexdigest()
        try:
            with open(os.path.join(backend._dir, digest + backend.cache_suffix), "rb") as f:
                if not backend._is_expired(f):
                    return pickle.loads(zlib.decompress(f.read()))
        except FileNotFoundError:
            pass
        return default

    def read_entries(self, keys_: list[str]) -> dict[str, Any]:
        generation = self.scope()  # a stat, then one file per entry
        by_stored = {self.entry_key(key, generation): key for key in keys_}
        found = self.backend.get_many(list(by_stored))
        return {by_stored[stored]: value for stored, value in found.items()}

    def maybe_filed(self, key: str, scope: str | None) -> bool:
        """Whether the meta record's file exists (a ``stat``, not an open and unpickle)."""
        return os.path.exists(self._file(self.key_of(keys.META, key, scope)))

    def stored_ttl(self, stored: str) -> float | None:
        """FileBasedCache writes the expiry (epoch seconds or None) as the file's first pickle."""
        try:
            with open(self._file(stored), "rb") as f:
                expires: float | None = pickle.load(f)
        except (FileNotFoundError, EOFError, pickle.UnpicklingError):
            return 0.0
        return None if expires is None else max(0.0, expires - time.time())
