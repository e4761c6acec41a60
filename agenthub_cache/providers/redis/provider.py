"""The Redis provider: django-redis and Django's own ``RedisCache``, natively.

* One round trip per single-key operation, on one client per pool (``connections``), with
  the backend's key function (``layout``) and its own serializer/compressor, so
  ``caches[alias].get(backend_key)`` and the app read each other's values. Each call's
  KEYS and ARGV are built once for the sync and async twins (``calls``).
* Value and index membership change together in one Lua script (``scripts``).
* Listing and flushing by incremental SCAN + pipelined UNLINK; never KEYS or FLUSHDB.
* Every ``aX`` runs on ``redis.asyncio`` on the running loop's own client: no thread hop.
  Operations of several round trips are written once as steps (``steps``, run by ``driver``).
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar, TypeVar

from django.core.cache.backends.base import BaseCache
from redis.exceptions import AuthenticationError, ResponseError

from agenthub_cache import keys
from agenthub_cache.providers.base import Capabilities, Flush, IndexMode, Provider
from agenthub_cache.providers.redis.calls import ScriptCalls, px
from agenthub_cache.providers.redis.codec import batch_decoder, codec_for
from agenthub_cache.providers.redis.connections import UNAVAILABLE, connection_for
from agenthub_cache.providers.redis.declared import StillRefiled
from agenthub_cache.providers.redis.driver import Steps, arun, run
from agenthub_cache.providers.redis.flush import clear as clear_steps
from agenthub_cache.providers.redis.layout import KeyLayout, escape
from agenthub_cache.providers.redis.lock import RedisLock
from agenthub_cache.providers.redis.probes import eviction_policy
from agenthub_cache.providers.redis.steps import count as count_steps
from agenthub_cache.providers.redis.steps import delete_by_index as delete_by_index_steps
from agenthub_cache.providers.redis.steps import get_or_set as get_or_set_steps
from agenthub_cache.providers.redis.steps import live_entries as live_entries_steps
from agenthub_cache.providers.redis.steps import prune as prune_steps
from agenthub_cache.providers.redis.steps import stats as stats_steps
from agenthub_cache.providers.scanning import SCAN_COUNT, ScanBudget

T = TypeVar("T")


_ENTRY = keys.ENTRY.encode()


def _value_error(exc: ResponseError, namespace: str, key: str) -> ValueError | ResponseError:
    message = str(exc)
    if "not an integer" in message or "overflow" in message:
        return ValueError(
            f"Cache namespace {namespace!r}: cannot increment {key!r}: "
            f"its value is not an integer or would overflow ({message})."
        )
    return exc


#: What is left where the backend's KEY_FUNCTION hides key prefixes: every single-key
#: operation and the indexes, but no listing, counting or flush.
NOT_LISTABLE = (
    "not listable: the cache's KEY_FUNCTION does not keep key prefixes, so keys, count, "
    "prune and flush are not supported"
)


class RedisProvider(ScriptCalls, Provider):
    """Native provider for ``django_redis.cache.RedisCache`` and Django's ``RedisCache``."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        list_keys=True,
        flush=Flush.SCAN,
        indexes=IndexMode.ATOMIC,
        ttl=True,
        distributed_lock=True,
        native_async=True,
    )
    max_key_length: ClassVar[int | None] = None  # Redis keys may be 512 MB
    hash_long_keys: ClassVar[bool] = False
    sums_metrics: ClassVar[bool] = True
    #: ``StillRefiled``: other clients kept re-filing a call's entries (a transient outage).
    unavailable_errors: tuple[type[BaseException], ...] = (*UNAVAILABLE, StillRefiled)
    #: A wrong password is a refusal, not an outage: it raises even under ``FAIL_SILENTLY``.
    refused_errors: tuple[type[BaseException], ...] = (AuthenticationError,)
    #: OOM, NOPERM, any other error reply: ``CacheRefused``, never silenced.
    error_replies: tuple[type[BaseException], ...] = (ResponseError,)

    def __init__(self, backend: BaseCache, alias: str, namespace: str) -> None:
        super().__init__(backend, alias, namespace)
        self.connection = connection_for(backend)
        self.layout = KeyLayout(backend, namespace)
        if self.layout.prefix is None:  # a KEY_FUNCTION that hides prefixes: no SCAN can list
            self.capabilities = UNLISTED  # type: ignore[misc]
        self.encode, self.decode = codec_for(backend)
        self.decode_all = batch_decoder(self.decode)
        self._client = self.connection.client
        self._run = self.connection.run_script

    @staticmethod
    def eviction_policy(backend: BaseCache) -> str | None:
        """The server's ``maxmemory-policy`` (system check W003); ``None`` if unreachable."""
        return eviction_policy(backend)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "location": self.connection.location}

    def check_serializable(self, value: Any) -> None:
        self.encode(value)  # the backend's own serializer (pickle, JSON, msgpack)

    def scope(self) -> str | None:
        return None  # Redis lists keys: no generation

    def _drive(self, steps: Steps[T], layout: KeyLayout | None = None) -> T:
        """Run multi-round-trip ``steps`` (over ``layout``'s keys) on the server."""
        return run(self.connection, steps)

    async def _adrive(self, steps: Steps[T], layout: KeyLayout | None = None) -> T:
        return await arun(self.connection.async_handle(), steps)

    # -- single entries ---------------------------------------------------------------------

    def make_key(self, key: str) -> str:
        return f"{self._layout_for(key).built_prefix}{keys.ENTRY}:{escape(key)}"

    def get(self, key: str, default: Any = None) -> Any:
        raw = self._client.get(self._entry(key))
        return default if raw is None else self.decode(raw)

    def get_many(self, keys_: Iterable[str]) -> dict[str, Any]:
        keys_ = keys_ if isinstance(keys_, list) else list(keys_)
        return self._decode_many(keys_, self._client.mget(self.layout.entry_keys(keys_)))

    def set(
        self, key: str, value: Any, timeout: float | None, indexes: Mapping[str, str] | None = None
    ) -> bool:
        stored, args = self._set_call(key, value, timeout, indexes, False)
        return bool(self._run("set", stored, args))

    def add(
        self, key: str, value: Any, timeout: float | None, indexes: Mapping[str, str] | None = None
    ) -> bool:
        stored, args = self._set_call(key, value, timeout, indexes, True)
        return bool(self._run("set", stored, args))

    def set_many(self, mapping: Mapping[str, Any], timeout: float | None) -> list[str]:
        for stored, args in self._set_many_calls(mapping, timeout):
            self._run("set_many", stored, args)
        return []

    def delete(self, key: str) -> bool:
        return bool(self._run("delete", *self._keyed_call(key)))

    def delete_many(self, keys_: Iterable[str]) -> int:
        return sum(int(self._run("delete", *call)) for call in self._keyed_calls(keys_))

    def has_key(self, key: str) -> bool:
        return bool(self._client.exists(self._entry(key)))

    def pop(self, key: str, default: Any = None) -> Any:
        raw = self._run("pop", *self._keyed_call(key))
        return default if raw is None else self.decode(raw)

    def incr(self, key: str, delta: int, timeout: float | None) -> int:
        try:
            return int(self._run("incr", *self._keyed_call(key, delta, px(timeout))))
        except ResponseError as exc:
            raise _value_error(exc, self.namespace, key) from exc

    def ttl(self, key: str) -> float | None:
        return self._seconds(int(self._client.pttl(self._entry(key))))

    def touch(self, key: str, timeout: float | None) -> bool:
        return bool(self._run("touch", *self._keyed_call(key, px(timeout))))

    def get_or_set(self, key: str, default: Any, timeout: float | None, wait: float) -> Any:
        layout = self._layout_for(key)
        steps = get_or_set_steps(layout, key, default, wait, self.decode, self._store(key, timeout))
        return self._drive(steps, layout)

    def lock(self, name: str, timeout: float | None, blocking_timeout: float | None) -> RedisLock:
        return RedisLock(self, name, timeout, blocking_timeout)

    # -- indexes and the namespace as a whole -----------------------------------------------

    def find(self, index: str, value: str) -> list[str]:
        keys_, values = self._drive(live_entries_steps(self.layout, index, value))
        return [key for key, raw in zip(keys_, values, strict=True) if raw is not None]

    def get_by_index(self, index: str, value: str) -> dict[str, Any]:
        keys_, values = self._drive(live_entries_steps(self.layout, index, value))
        return self._decode_many(keys_, values)

    def delete_by_index(self, index: str, value: str) -> int:
        return self._drive(delete_by_index_steps(self.layout, index, value))

    def prune(self) -> int:
        return self._drive(prune_steps(self.layout))

    def iter_keys(self, pattern: str = "*") -> Iterator[str]:
        return self._keys_in(self.layout, self._client, pattern)

    def scan_keys(self, pattern: str, budget: ScanBudget) -> Iterator[str]:
        return self._keys_in(self.layout, self._client, pattern, budget)

    @staticmethod
    def _keys_in(
        layout: KeyLayout, client: Any, pattern: str, budget: ScanBudget | None = None
    ) -> Iterator[str]:
        """The keys matching ``pattern`` that SCAN on ``client`` finds in ``layout`` (at most
        ``budget``'s calls, if given)."""
        seen = set()
        match, count = layout.entries_match(pattern), SCAN_COUNT if budget is None else budget.count
        cursor: int | None = None
        while cursor != 0:
            if budget is not None and not budget.take():
                return
            cursor, found = client.scan(cursor or 0, match=match, count=count)
            for stored in found:
                if stored not in seen and layout.kind_of(stored) == _ENTRY:
                    seen.add(stored)
                    key = layout.key_of(stored)
                    if fnmatch.fnmatchcase(key, pattern):
                        yield key

    def count(self) -> int:
        return self._drive(count_steps(self.layout))

    def indexes_of(self, key: str) -> dict[str, str]:
        """The meta hash maps each index name to its index key, which ends in the value (an
        index key of the key's own layout: on a cluster, of its hash tag)."""
        member, layout = escape(key), self._layout_for(key)
        filed = self._client.hgetall(layout.meta(member))
        found = {}
        for raw_name, raw_index in filed.items():
            name, index = _text(raw_name), _text(raw_index)
            head = layout.index(name, "")
            found[name] = keys.unescape(index[len(head) :]) if index.startswith(head) else "?"
        return found

    def clear(self, progress: Callable[[int], None] | None = None) -> int:
        """Delete the namespace; ``progress(entries_deleted_so_far)`` after each batch."""
        return self._drive(clear_steps(self.layout, progress))

    def stats(self) -> dict[str, Any]:
        if self.layout.prefix is None:
            return self._unlisted_stats()
        return self._drive(stats_steps(self.layout))

    def _unlisted_stats(self) -> dict[str, Any]:
        return {"entries": None, "indexes": None, "memory_bytes": None, "listing": NOT_LISTABLE}

    def close(self) -> None:
        """Nothing to do: the pool is shared by every namespace on this server."""

    # -- async twins ------------------------------------------------------------------------

    async def aget(self, key: str, default: Any = None) -> Any:
        raw = await self.connection.async_handle().client.get(self._entry(key))
        return default if raw is None else self.decode(raw)

    async def aget_many(self, keys_: Iterable[str]) -> dict[str, Any]:
        keys_ = keys_ if isinstance(keys_, list) else list(keys_)
        client = self.connection.async_handle().client
        return self._decode_many(keys_, await client.mget(self.layout.entry_keys(keys_)))

    async def aset(
        self, key: str, value: Any, timeout: float | None, indexes: Mapping[str, str] | None = None
    ) -> bool:
        stored, args = self._set_call(key, value, timeout, indexes, False)
        return bool(await self.connection.async_handle().run_script("set", stored, args))

    async def aadd(
        self, key: str, value: Any, timeout: float | None, indexes: Mapping[str, str] | None = None
    ) -> bool:
        stored, args = self._set_call(key, value, timeout, indexes, True)
        return bool(await self.connection.async_handle().run_script("set", stored, args))

    async def aset_many(self, mapping: Mapping[str, Any], timeout: float | None) -> list[str]:
        handle = self.connection.async_handle()
        for stored, args in self._set_many_calls(mapping, timeout):
            await handle.run_script("set_many", stored, args)
        return []

    async def adelete(self, key: str) -> bool:
        handle = self.connection.async_handle()
        return bool(await handle.run_script("delete", *self._keyed_call(key)))

    async def adelete_many(self, keys_: Iterable[str]) -> int:
        handle = self.connection.async_handle()
        return sum([int(await handle.run_script("delete", *c)) for c in self._keyed_calls(keys_)])

    async def ahas_key(self, key: str) -> bool:
        return bool(await self.connection.async_handle().client.exists(self._entry(key)))

    async def apop(self, key: str, default: Any = None) -> Any:
        raw = await self.connection.async_handle().run_script("pop", *self._keyed_call(key))
        return default if raw is None else self.decode(raw)

    async def aincr(self, key: str, delta: int, timeout: float | None) -> int:
        handle = self.connection.async_handle()
        try:
            return int(await handle.run_script("incr", *self._keyed_call(key, delta, px(timeout))))
        except ResponseError as exc:
            raise _value_error(exc, self.namespace, key) from exc

    async def attl(self, key: str) -> float | None:
        return self._seconds(
            int(await self.connection.async_handle().client.pttl(self._entry(key)))
        )

    async def atouch(self, key: str, timeout: float | None) -> bool:
        handle = self.connection.async_handle()
        return bool(await handle.run_script("touch", *self._keyed_call(key, px(timeout))))

    async def aget_or_set(self, key: str, default: Any, timeout: float | None, wait: float) -> Any:
        layout = self._layout_for(key)
        steps = get_or_set_steps(layout, key, default, wait, self.decode, self._store(key, timeout))
        return await self._adrive(steps, layout)

    async def afind(self, index: str, value: str) -> list[str]:
        steps = live_entries_steps(self.layout, index, value)
        keys_, values = await self._adrive(steps)
        return [key for key, raw in zip(keys_, values, strict=True) if raw is not None]

    async def aget_by_index(self, index: str, value: str) -> dict[str, Any]:
        steps = live_entries_steps(self.layout, index, value)
        keys_, values = await self._adrive(steps)
        return self._decode_many(keys_, values)

    async def adelete_by_index(self, index: str, value: str) -> int:
        steps = delete_by_index_steps(self.layout, index, value)
        return await self._adrive(steps)

    async def aprune(self) -> int:
        return await self._adrive(prune_steps(self.layout))

    async def akeys(self, pattern: str = "*") -> list[str]:
        return await self._akeys_in(self.layout, self.connection.async_handle().client, pattern)

    @staticmethod
    async def _akeys_in(layout: KeyLayout, client: Any, pattern: str) -> list[str]:
        found = dict[bytes, None]()
        async for stored in client.scan_iter(match=layout.entries_match(pattern), count=1000):
            if layout.kind_of(stored) == _ENTRY:
                found[stored] = None
        return [k for k in map(layout.key_of, found) if fnmatch.fnmatchcase(k, pattern)]

    async def acount(self) -> int:
        return await self._adrive(count_steps(self.layout))

    async def aclear(self, progress: Callable[[int], None] | None = None) -> int:
        return await self._adrive(clear_steps(self.layout, progress))

    async def astats(self) -> dict[str, Any]:
        if self.layout.prefix is None:
            return self._unlisted_stats()
        return await self._adrive(stats_steps(self.layout))

    async def aclose(self) -> None:
        """Close this event loop's connections to the server (reopened on next use)."""
        await self.connection.aclose()


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


UNLISTED = dataclasses.replace(RedisProvider.capabilities, list_keys=False, flush=Flush.NONE)
