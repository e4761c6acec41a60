"""The stored keys of a generic provider: namespace, generation and kind in front of each part.

A key too long for the store (memcached's 250 bytes, after the backend's own prefix) is
hashed, or refused where the store says so (``hash_long_keys``). The usual key is built on a
fast path that skips the backend's key function once its prefix length is known.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING, ClassVar

from django.core.cache.backends.base import MEMCACHE_MAX_KEY_LENGTH

from agenthub_cache import keys
from agenthub_cache.exceptions import InvalidKey

if TYPE_CHECKING:
    from django.core.cache.backends.base import BaseCache


class StoredKeys:
    """Mixin of generic providers: the key handed to the backend for each part."""

    namespace: str
    alias: str
    _bound: threading.local
    max_key_length: ClassVar[int | None] = MEMCACHE_MAX_KEY_LENGTH
    hash_long_keys: ClassVar[bool] = True

    if TYPE_CHECKING:

        @property
        def backend(self) -> BaseCache: ...

        def cached_scope(self) -> str | None: ...

    @cached_property
    def _prefixes(self) -> dict[str | None, str]:
        """``keys.namespace_prefix`` of each generation seen, built once."""
        return {}

    def stored_key(self, kind: str, *parts: str, scope: str | None) -> str:
        """The key handed to the backend for ``parts`` of ``kind``; long keys hashed or refused."""
        prefixes = self._prefixes
        prefix = prefixes.get(scope)
        if prefix is None:
            if len(prefixes) > 8:  # generations come and go; keep the last few
                prefixes.clear()
            prefix = prefixes[scope] = keys.namespace_prefix(self.namespace, scope)
        built = keys.key_under(prefix, kind, *parts)
        limit = self.max_key_length
        if limit is None or self._stored_length(built) <= limit:
            return built
        if self.hash_long_keys or kind != keys.ENTRY:
            return keys.hashed_key(self.namespace, kind, *parts, generation=scope)
        raise InvalidKey(
            f"Cache namespace {self.namespace!r}: key {parts[0][:40]!r}... is too long for the "
            f"{self.alias!r} cache ({self.max_key_length} bytes after prefixing)."
        )

    def entry_key_fits(self, key: str) -> bool:
        if self.hash_long_keys or self.max_key_length is None:
            return True
        try:
            self.key_of(keys.ENTRY, key, self.cached_scope())
        except InvalidKey:
            return False
        return True

    def _stored_length(self, built: str) -> int:
        """Bytes of ``backend.make_key(built)`` (memcached counts bytes: a non-ASCII
        KEY_PREFIX takes more than one); without calling it when the key function just
        prepends (Django's default does), as ``built`` is ASCII."""
        head = self.key_head()
        if head is None:
            return len(self.backend.make_key(built).encode())
        return head + len(built)

    def key_head(self) -> int | None:
        """Bytes the backend's key function puts in front of every key (``None`` if it does
        more than prepend), found once per thread and backend."""
        backend = self.backend  # binds this thread's backend first
        bound = self._bound
        try:
            head: int | None = bound.key_head
        except AttributeError:
            found = keys.stored_prefix(backend.make_key, self.namespace)
            built = len(keys.namespace_prefix(self.namespace))
            head = bound.key_head = None if found is None else len(found.encode()) - built
        return head

    def entry_key(self, key: str, scope: str | None) -> str:
        return self.key_of(keys.ENTRY, key, scope)

    def key_of(self, kind: str, key: str, scope: str | None) -> str:
        """``stored_key(kind, key)`` of one part, on the hot path: the usual case first."""
        prefix = self._prefixes.get(scope)
        head = self.key_head()
        limit = self.max_key_length
        if prefix is not None and head is not None and limit is not None:
            built = f"{prefix}{kind}:{keys.escape(key)}"
            if head + len(built) <= limit:
                return built
        return self.stored_key(kind, key, scope=scope)
