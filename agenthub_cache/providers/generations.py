"""Namespace generations: scoping and O(1) flush for stores that cannot list their keys.

The namespace's *generation* is a random token stored under one key; it is part of every other
key of the namespace. A flush writes a new token (O(1)): the old entries become unreachable at
once and age out (or are evicted by the store's LRU).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from agenthub_cache import keys

if TYPE_CHECKING:
    from django.core.cache.backends.base import BaseCache


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

    def generation_key(self) -> str:
        return keys.build_key(self.namespace, keys.GENERATION)

    def scope(self) -> str | None:
        """The namespace generation now in force."""
        gen_key = self.generation_key()
        generation = self.backend.get(gen_key)
        if generation is None:
            with self._lock:  # the file cache's add() is not atomic: one creator per process
                self.backend.add(gen_key, new_generation(), None)
                generation = self.backend.get(gen_key)
        return str(generation) if generation is not None else new_generation()

    def clear(self, progress: Callable[[int], None] | None = None) -> int | None:
        """Start a new generation: O(1); the old entries expire on their own.

        A flush by generation is one write and never calls ``progress``.
        """
        self.backend.set(self.generation_key(), new_generation(), None)
        return None
