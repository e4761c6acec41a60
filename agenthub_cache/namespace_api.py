"""The part of ``CacheService`` that works on many entries at once.

Secondary indexes (``find``, ``get_by_index``, ``count_by_index``, ``delete_by_index``,
``prune``) and the
namespace as a whole (``keys``, ``count``, ``clear``, ``stats``). Whole-namespace operations
always raise on a store failure, even under ``FAIL_SILENTLY``: an operator must see a failed
flush.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from agenthub_cache.policy import ServicePolicy

if TYPE_CHECKING:
    from agenthub_cache.providers.base import Capabilities
    from agenthub_cache.providers.scanning import ScanBudget


class NamespaceAPI(ServicePolicy):
    """Indexes and the namespace as a whole; ``CacheService`` adds the per-entry API."""

    @property
    def capabilities(self) -> Capabilities:
        return self.provider.capabilities

    # -- secondary indexes --------------------------------------------------------------------

    def find(self, index: str, value: str) -> list[str]:
        """Keys of the live entries filed under ``index`` = ``value``."""
        index, value = self._index(index, value)
        with self._policy("find"):
            return self.provider.find(index, value)
        return []

    async def afind(self, index: str, value: str) -> list[str]:
        index, value = self._index(index, value)
        with self._policy("find"):
            return await self.provider.afind(index, value)
        return []

    def get_by_index(self, index: str, value: str) -> dict[str, Any]:
        """``{key: value}`` of the live entries filed under ``index`` = ``value``."""
        index, value = self._index(index, value)
        with self._policy("get_by_index"):
            return self.provider.get_by_index(index, value)
        return {}

    async def aget_by_index(self, index: str, value: str) -> dict[str, Any]:
        index, value = self._index(index, value)
        with self._policy("get_by_index"):
            return await self.provider.aget_by_index(index, value)
        return {}

    def count_by_index(self, index: str, value: str) -> int:
        """How many live entries are filed under ``index`` = ``value`` (``len(find(...))``:
        the same liveness check, so the count never includes an expired or re-filed entry)."""
        index, value = self._index(index, value)
        with self._policy("count_by_index"):
            return len(self.provider.find(index, value))
        return 0

    async def acount_by_index(self, index: str, value: str) -> int:
        index, value = self._index(index, value)
        with self._policy("count_by_index"):
            return len(await self.provider.afind(index, value))
        return 0

    def delete_by_index(self, index: str, value: str) -> int:
        """Delete the entries filed under ``index`` = ``value`` (and their other filings)."""
        index, value = self._index(index, value)
        with self._policy("delete_by_index") as call:
            deleted = self.provider.delete_by_index(index, value)
            call.deleted(deleted)
            return deleted
        return 0

    async def adelete_by_index(self, index: str, value: str) -> int:
        index, value = self._index(index, value)
        with self._policy("delete_by_index") as call:
            deleted = await self.provider.adelete_by_index(index, value)
            call.deleted(deleted)
            return deleted
        return 0

    def indexes_of(self, key: str) -> dict[str, str]:
        """``{index: value}`` that ``key`` is filed under (for inspection: admin, command)."""
        key = self._key(key)
        with self._admin("indexes_of"):
            return self.provider.indexes_of(key)
        raise AssertionError("unreachable")

    def prune(self) -> int:
        """Reclaim index members whose entries expired, went or were re-filed."""
        with self._policy("prune"):
            return self.provider.prune()
        return 0

    async def aprune(self) -> int:
        with self._policy("prune"):
            return await self.provider.aprune()
        return 0

    # -- the namespace as a whole -------------------------------------------------------------

    def _pattern(self, pattern: object) -> str:
        return self._text(pattern, "pattern")

    def iter_keys(self, pattern: str = "*", *, budget: ScanBudget | None = None) -> Iterator[str]:
        """This namespace's keys matching the glob ``pattern`` (over the key alone).

        ``budget``: stop after that many SCAN calls on Redis (``budget.exhausted`` then says
        the listing stopped short); other stores read only the namespace anyway.
        """
        return self._iter_keys(self._pattern(pattern), budget)

    def _iter_keys(self, pattern: str, budget: ScanBudget | None) -> Iterator[str]:
        with self._admin("keys"):
            if budget is None:
                yield from self.provider.iter_keys(pattern)
            else:
                yield from self.provider.scan_keys(pattern, budget)

    async def aiter_keys(self, pattern: str = "*") -> AsyncIterator[str]:
        for key in await self.akeys(pattern):
            yield key

    def keys(self, pattern: str = "*") -> list[str]:
        """``list(iter_keys(pattern))``."""
        return list(self.iter_keys(pattern))

    async def akeys(self, pattern: str = "*") -> list[str]:
        pattern = self._pattern(pattern)
        with self._admin("keys"):
            return await self.provider.akeys(pattern)
        raise AssertionError("unreachable")

    def count(self) -> int:
        """How many live entries the namespace holds."""
        with self._admin("count"):
            return self.provider.count()
        raise AssertionError("unreachable")

    async def acount(self) -> int:
        with self._admin("count"):
            return await self.provider.acount()
        raise AssertionError("unreachable")

    def clear(self, progress: Callable[[int], None] | None = None) -> int | None:
        """Drop this namespace (entries and indexes) and nothing else; the count if known.

        ``progress(entries_deleted_so_far)`` is called after each batch by providers that
        delete in batches (a flush by generation is one write and never calls it).
        """
        with self._admin("clear"):
            return self.provider.clear(progress)
        raise AssertionError("unreachable")

    async def aclear(self, progress: Callable[[int], None] | None = None) -> int | None:
        with self._admin("clear"):
            return await self.provider.aclear(progress)
        raise AssertionError("unreachable")

    def stats(self) -> dict[str, Any]:
        """Entries, indexes and memory (``None`` where the store cannot tell)."""
        with self._admin("stats"):
            return {**self._description(), **self.provider.stats()}
        raise AssertionError("unreachable")

    async def astats(self) -> dict[str, Any]:
        with self._admin("stats"):
            return {**self._description(), **await self.provider.astats()}
        raise AssertionError("unreachable")

    def _description(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "default_ttl": self.default_ttl,
            **self.provider.describe(),
            "capabilities": self.capabilities.as_dict(),
        }

    def close(self) -> None:
        self.provider.close()

    async def aclose(self) -> None:
        await self.provider.aclose()
