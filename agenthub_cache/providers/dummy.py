"""DummyCache stores nothing; the provider says so truthfully (and a system check warns)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import ClassVar

from agenthub_cache.providers.base import Capabilities, Flush, StoreScope
from agenthub_cache.providers.generations import NoGeneration
from agenthub_cache.providers.generic import GenericProvider


class DummyProvider(NoGeneration, GenericProvider):
    capabilities: ClassVar[Capabilities] = Capabilities(list_keys=True, flush=Flush.NONE, ttl=True)
    store_scope: ClassVar[StoreScope] = StoreScope.NOTHING
    max_key_length = None

    def never_indexed(self, scope: str | None) -> bool:
        return True  # nothing is kept, so nothing is ever filed

    def prepare_filing(self, scope: str | None) -> None:
        """Nothing is kept: nobody to wait for."""

    def iter_keys(self, pattern: str = "*") -> Iterator[str]:
        return iter(())

    def clear(self, progress: Callable[[int], None] | None = None) -> int:
        return 0

    def stored_ttl(self, stored: str) -> float | None:
        return 0.0
