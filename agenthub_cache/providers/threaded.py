"""Async twins by Django's own thread hop, for providers whose store has no async client."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from asgiref.sync import sync_to_async

from agenthub_cache.providers.base import Provider


class ThreadedAsync(Provider):
    """Each ``aX`` runs ``X`` through ``sync_to_async`` (one thread, as Django's caches do)."""

    async def aget(self, key: str, default: Any = None) -> Any:
        return await sync_to_async(self.get)(key, default)

    async def aget_many(self, keys_: Iterable[str]) -> dict[str, Any]:
        return await sync_to_async(self.get_many)(list(keys_))

    async def aset(
        self, key: str, value: Any, timeout: float | None, indexes: Mapping[str, str] | None = None
    ) -> bool:
        return await sync_to_async(self.set)(key, value, timeout, indexes)

    async def aadd(
        self, key: str, value: Any, timeout: float | None, indexes: Mapping[str, str] | None = None
    ) -> bool:
        return await sync_to_async(self.add)(key, value, timeout, indexes)

    async def aset_many(self, mapping: Mapping[str, Any], timeout: float | None) -> list[str]:
        return await sync_to_async(self.set_many)(mapping, timeout)

    async def adelete(self, key: str) -> bool:
        return await sync_to_async(self.delete)(key)

    async def adelete_many(self, keys_: Iterable[str]) -> int:
        return await sync_to_async(self.delete_many)(list(keys_))

    async def ahas_key(self, key: str) -> bool:
        return await sync_to_async(self.has_key)(key)

    async def apop(self, key: str, default: Any = None) -> Any:
        return await sync_to_async(self.pop)(key, default)

    async def aincr(self, key: str, delta: int, timeout: float | None) -> int:
        return await sync_to_async(self.incr)(key, delta, timeout)

    async def attl(self, key: str) -> float | None:
        return await sync_to_async(self.ttl)(key)

    async def atouch(self, key: str, timeout: float | None) -> bool:
        return await sync_to_async(self.touch)(key, timeout)

    async def aget_or_set(self, key: str, default: Any, timeout: float | None, wait: float) -> Any:
        return await sync_to_async(self.get_or_set)(key, default, timeout, wait)

    async def akeys(self, pattern: str = "*") -> list[str]:
        return await sync_to_async(lambda: list(self.iter_keys(pattern)))()

    async def acount(self) -> int:
        return await sync_to_async(self.count)()

    async def aclear(self, progress: Callable[[int], None] | None = None) -> int | None:
        return await sync_to_async(self.clear)(progress)

    async def astats(self) -> dict[str, Any]:
        return await sync_to_async(self.stats)()

    async def afind(self, index: str, value: str) -> list[str]:
        return await sync_to_async(self.find)(index, value)

    async def aget_by_index(self, index: str, value: str) -> dict[str, Any]:
        return await sync_to_async(self.get_by_index)(index, value)

    async def adelete_by_index(self, index: str, value: str) -> int:
        return await sync_to_async(self.delete_by_index)(index, value)

    async def aprune(self) -> int:
        return await sync_to_async(self.prune)()

    async def aclose(self) -> None:
        await sync_to_async(self.close)()
