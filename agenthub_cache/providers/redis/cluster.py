"""The Redis provider on a Redis Cluster (``agenthub_cache.backends.RedisClusterCache``).

The single-node provider, layout, scripts and steps, unchanged, with three differences:

* **Where keys live.** Every key of a namespace carries a hash tag (``keys.tagged_prefix``):
  its entries, metas, index sets and locks share one slot, so every Lua script is atomic on
  the node that owns it and redis-py routes each call by its first key.
* **Single-key calls** go straight to the primary of that slot (``cluster_routing``).
* **Where multi-round-trip steps run.** On the plain client of the primary that owns the
  namespace's slot (``ClusterConnection.node``), where a SCAN sees exactly that node's keys.

A node that fails, or a slot that moves, is an outage for the call that met it (the
namespace's policy: ``CacheUnavailable``, or the default under ``FAIL_SILENTLY``); the slot
map is re-read before the next call, so the service recovers with no restart.
"""

from __future__ import annotations

import asyncio
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, ClassVar, TypeVar

import redis.exceptions as redis_errors
from django.core.cache.backends.base import BaseCache
from redis.exceptions import (
    AskError,
    AuthenticationError,
    ClusterDownError,
    ClusterError,
    RedisClusterException,
    TryAgainError,
)

from agenthub_cache import conf, keys
from agenthub_cache.exceptions import NotSupported
from agenthub_cache.providers.base import Capabilities, Flush, Provider
from agenthub_cache.providers.redis.cluster_async import BoundedAsyncCluster
from agenthub_cache.providers.redis.cluster_client import ClusterConnection
from agenthub_cache.providers.redis.cluster_nodes import NotAClusterError
from agenthub_cache.providers.redis.cluster_routing import slot_of
from agenthub_cache.providers.redis.codec import batch_decoder
from agenthub_cache.providers.redis.connections import UNAVAILABLE
from agenthub_cache.providers.redis.driver import Steps, arun, run
from agenthub_cache.providers.redis.fanout import run_together
from agenthub_cache.providers.redis.flush import SlotListing
from agenthub_cache.providers.redis.flush import clear as clear_steps
from agenthub_cache.providers.redis.layout import KeyLayout, escape
from agenthub_cache.providers.redis.provider import RedisProvider
from agenthub_cache.providers.redis.steps import count as count_steps
from agenthub_cache.providers.redis.steps import delete_by_index as delete_by_index_steps
from agenthub_cache.providers.redis.steps import live_entries as live_entries_steps
from agenthub_cache.providers.redis.steps import prune as prune_steps
from agenthub_cache.providers.redis.steps import stats as stats_steps
from agenthub_cache.providers.scanning import ScanBudget

T = TypeVar("T")

#: redis-py's refusals of a cross-slot transaction in a cluster pipeline (redis-py 6 on; 5.x
#: has neither class, nor such transactions to refuse).
_TRANSACTION_REFUSALS: tuple[type[BaseException], ...] = tuple(
    getattr(redis_errors, name)
    for name in ("CrossSlotTransactionError", "InvalidPipelineStack")
    if hasattr(redis_errors, name)
)

#: What a cluster says while it fails over or reshards: an outage of the call, not a bug.
CLUSTER_UNAVAILABLE: tuple[type[BaseException], ...] = (
    *UNAVAILABLE,
    ClusterDownError,  # CLUSTERDOWN, MASTERDOWN
    ClusterError,  # "TTL exhausted": redirections (ASK/TRYAGAIN mid-move) kept coming
    TryAgainError,
    AskError,  # MOVED/ASK met by a step on a node's own client: the slot moved
    RedisClusterException,  # no startup node reachable, slot not covered
)


class RedisClusterProvider(RedisProvider):
    """Native provider for ``agenthub_cache.backends.RedisClusterCache``."""

    #: As the single-node provider's, but the flush lists the owned slots, not the node.
    capabilities: ClassVar[Capabilities] = replace(RedisProvider.capabilities, flush=Flush.SLOTS)
    #: Checked before ``error_replies`` (``ResponseError``, inherited: OOM, NOPERM, CROSSSLOT
    #: are ``CacheRefused``), so CLUSTERDOWN, TRYAGAIN and MOVED/ASK stay an outage.
    unavailable_errors: tuple[type[BaseException], ...] = CLUSTER_UNAVAILABLE
    #: Refusals, never silenced: bad credentials, a LOCATION that is no cluster (a
    #: misconfiguration: waiting does not fix it), cross-slot calls (a bug, not an outage).
    refused_errors: tuple[type[BaseException], ...] = (
        AuthenticationError,
        NotAClusterError,
        *_TRANSACTION_REFUSALS,
    )

    def __init__(self, backend: BaseCache, alias: str, namespace: str) -> None:
        Provider.__init__(self, backend, alias, namespace)
        cluster: Any = backend
        self.connection: ClusterConnection = cluster.connection  # type: ignore[assignment]
        #: One layout per hash tag (``SLOTS``); an entry's tag derives from its key.
        self.layouts = [
            KeyLayout(backend, namespace, keys.tagged_prefix(namespace, tag))
            for tag in range(conf.slots_of(namespace))
        ]
        self.layout = self.layouts[0]
        for layout in self.layouts:
            self._check_tag(layout)
            layout.slot = slot_of(layout.listed_prefix())
        self.encode, self.decode = cluster.encode, cluster.decode
        self.decode_all = batch_decoder(self.decode)

    @property
    def _client(self) -> Any:  # type: ignore[override]
        return self.connection.client

    def _run(self, name: str, keys_: Sequence[Any], args: Sequence[Any]) -> Any:
        return self.connection.run_script(name, keys_, args)

    def _layout_for(self, key: str) -> KeyLayout:
        layouts = self.layouts
        if len(layouts) == 1:
            return layouts[0]
        return layouts[zlib.crc32(escape(key).encode()) % len(layouts)]

    def _by_layout(self, items: list[tuple[str, Any]]) -> list[tuple[KeyLayout, list[Any]]]:
        if len(self.layouts) == 1:
            return [(self.layout, items)]
        grouped: dict[int, list[Any]] = {}
        for item in items:
            grouped.setdefault(id(self._layout_for(item[0])), []).append(item)
        by_id = {id(layout): layout for layout in self.layouts}
        return [(by_id[layout_id], group) for layout_id, group in grouped.items()]

    def get(self, key: str, default: Any = None) -> Any:
        layout = self._layout_for(key)
        stored = layout.entry(escape(key))
        raw = self.connection.on_slot(layout.slot, "GET", stored, keys=[stored])
        return default if raw is None else self.decode(raw)

    async def aget(self, key: str, default: Any = None) -> Any:
        layout = self._layout_for(key)
        cluster: BoundedAsyncCluster = self.connection.async_handle().client  # type: ignore[assignment]
        raw = await cluster.execute_on_slot(layout.slot, "GET", layout.entry(escape(key)))
        return default if raw is None else self.decode(raw)

    def _check_tag(self, layout: KeyLayout) -> None:
        """The backend's key function must keep the tag as the key's first ``{...}``."""
        stored = layout.prefix
        tag = layout.built_prefix[layout.built_prefix.index("{") :]
        if stored is None or stored.find("{") != stored.find(tag):
            raise NotSupported(
                f"Cache namespace {self.namespace!r}: the {self.alias!r} cache's KEY_PREFIX or "
                "KEY_FUNCTION puts a '{' before the namespace's hash tag (or does not keep "
                "prefixes), so its keys would not share a cluster slot. Use a KEY_PREFIX "
                "without braces and Django's default KEY_FUNCTION."
            )

    @staticmethod
    def eviction_policy(backend: BaseCache) -> str | None:
        """The first ``allkeys-*`` ``maxmemory-policy`` among the primaries, else any one."""
        try:
            cluster: Any = backend
            client = cluster.connection.client
            replies = client.config_get("maxmemory-policy", target_nodes=client.PRIMARIES)
        except Exception:  # unreachable or misconfigured: the other checks say so
            return None
        policies = [
            str(reply.get("maxmemory-policy"))
            for reply in (replies.values() if isinstance(replies, dict) else [replies])
            if isinstance(reply, dict) and reply.get("maxmemory-policy")
        ]
        if not policies:
            return None
        return next((p for p in policies if p.startswith("allkeys-")), policies[0])

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "slots": len(self.layouts)}

    # -- where steps run: on the primary of each tag's slot --------------------------------

    def _drive(self, steps: Steps[T], layout: KeyLayout | None = None) -> T:
        tag = (layout or self.layout).listed_prefix()
        try:
            return run(self.connection.node(tag), steps)
        except self.unavailable_errors:
            self.connection.mark_stale()
            raise

    async def _adrive(self, steps: Steps[T], layout: KeyLayout | None = None) -> T:
        """As ``_drive``, with the node found on the loop by its async cluster client (never
        the sync one, which would block the loop while it reads the slot map)."""
        tag = (layout or self.layout).listed_prefix()
        try:
            _, node = await self.connection.anode(tag)
            return await arun(node, steps)
        except self.unavailable_errors:
            self.connection.amark_stale()
            raise

    def _each(self, make: Callable[[KeyLayout], Steps[T]]) -> list[T]:
        """``make(layout)``'s steps for every tag: the tags of one node in lockstep, one
        pipeline per round (``run_together``), node after node. Results in tag order."""
        if len(self.layouts) == 1:
            return [self._drive(make(self.layout), self.layout)]
        by_node: dict[str, list[int]] = {}
        for n, layout in enumerate(self.layouts):
            by_node.setdefault(self.connection.node(layout.listed_prefix()).location, []).append(n)
        results: list[Any] = [None] * len(self.layouts)
        try:
            for tags in by_node.values():
                node = self.connection.node(self.layouts[tags[0]].listed_prefix())
                found = run_together(node, [make(self.layouts[n]) for n in tags])
                for n, result in zip(tags, found, strict=True):
                    results[n] = result
        except self.unavailable_errors:
            self.connection.mark_stale()
            raise
        return results

    async def _aeach(self, make: Callable[[KeyLayout], Steps[T]]) -> list[T]:
        """Every tag's steps at once, on the event loop (so across nodes in parallel)."""
        return list(
            await asyncio.gather(*(self._adrive(make(layout), layout) for layout in self.layouts))
        )

    @staticmethod
    def _listing(layout: KeyLayout) -> SlotListing:
        """Flush lists a tag's keys by its slot (measured: ~40x the keys/s of a SCAN of the
        node when the namespace is a small part of it; see benchmarks/RESULTS.md)."""
        return SlotListing(slot_of(layout.listed_prefix()))

    def _by_node(self) -> dict[str, list[KeyLayout]]:
        nodes: dict[str, list[KeyLayout]] = {}
        for layout in self.layouts:
            nodes.setdefault(self.connection.node(layout.listed_prefix()).location, []).append(
                layout
            )
        return nodes

    # -- multi-key reads across tags -------------------------------------------------------

    def get_many(self, keys_: Iterable[str]) -> dict[str, Any]:
        if len(self.layouts) == 1:
            return super().get_many(keys_)
        keys_ = list(keys_)
        stored, client = [self._entry(key) for key in keys_], self._client
        return self._decode_many(keys_, client.mget_nonatomic(stored) if stored else [])

    async def aget_many(self, keys_: Iterable[str]) -> dict[str, Any]:
        if len(self.layouts) == 1:
            return await super().aget_many(keys_)
        keys_ = list(keys_)
        stored = [self._entry(key) for key in keys_]
        client: Any = self.connection.async_handle().client
        return self._decode_many(keys_, await client.mget_nonatomic(stored) if stored else [])

    # -- indexes and the namespace: every tag ----------------------------------------------

    def find(self, index: str, value: str) -> list[str]:
        found = self._each(lambda layout: live_entries_steps(layout, index, value))
        return [k for keys_, raws in found for k, raw in zip(keys_, raws, strict=True) if raw]

    def get_by_index(self, index: str, value: str) -> dict[str, Any]:
        found = self._each(lambda layout: live_entries_steps(layout, index, value))
        return {k: v for keys_, raws in found for k, v in self._decode_many(keys_, raws).items()}

    def delete_by_index(self, index: str, value: str) -> int:
        return sum(self._each(lambda layout: delete_by_index_steps(layout, index, value)))

    def prune(self) -> int:
        return sum(self._each(prune_steps))

    def count(self) -> int:
        return sum(self._each(count_steps))

    def iter_keys(self, pattern: str = "*") -> Iterator[str]:
        return self._scan_layouts(pattern, None)

    def scan_keys(self, pattern: str, budget: ScanBudget) -> Iterator[str]:
        return self._scan_layouts(pattern, budget)

    def _scan_layouts(self, pattern: str, budget: ScanBudget | None) -> Iterator[str]:
        """Each hash tag's keys on the node that owns it; one ``budget`` for them all."""
        for layout in self.layouts:
            client = self.connection.node(layout.listed_prefix()).client
            yield from self._keys_in(layout, client, pattern, budget)
            if budget is not None and budget.exhausted:
                return

    def clear(self, progress: Callable[[int], None] | None = None) -> int:
        """Each owning primary in a thread of its own; on each, its tags one after another,
        by the single-node flush (SCAN + pipelined deletes: no long stall)."""
        nodes = self._by_node()
        done: dict[str, int] = {}
        guard = threading.Lock()

        def report(node: str) -> Callable[[int], None]:
            def note(deleted: int) -> None:
                with guard:
                    done[node] = deleted
                    total = sum(done.values())
                if progress is not None:
                    progress(total)

            return note

        def flush(node: str) -> int:
            deleted, notify = 0, report(node)
            for layout in nodes[node]:
                steps = clear_steps(layout, _offset(notify, deleted), self._listing(layout))
                deleted += self._drive(steps, layout)
            return deleted

        if len(nodes) == 1:
            return flush(next(iter(nodes)))
        with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
            return sum(pool.map(flush, nodes))

    def stats(self) -> dict[str, Any]:
        found = self._each(lambda layout: stats_steps(layout, index_values=True))
        where = [self.connection.node(layout.listed_prefix()).location for layout in self.layouts]
        return self._merge_stats(list(zip(where, found, strict=True)))

    def _merge_stats(self, parts: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        """The namespace's figures, and the same per node (``nodes``). An index value filed
        in several tags (one index set in each) counts once, in the total and on each node;
        ``index_names`` is the union of the tags' names."""
        total: dict[str, Any] = {}
        nodes: dict[str, dict[str, Any]] = {}
        values: set[bytes] = set()
        node_values: dict[str, set[bytes]] = {}
        names: set[str] = set()
        node_names: dict[str, set[str]] = {}
        for location, found in parts:
            node = nodes.setdefault(location, {})
            tag_values = found.pop("index_values")
            values |= tag_values
            node_values.setdefault(location, set()).update(tag_values)
            tag_names = found.pop("index_names")
            names.update(tag_names)
            node_names.setdefault(location, set()).update(tag_names)
            for name, number in found.items():
                total[name] = total.get(name, 0) + number
                node[name] = node.get(name, 0) + number
        total["indexes"], total["index_names"] = len(values), sorted(names)
        for location, node in nodes.items():
            node["indexes"] = len(node_values[location])
            node["index_names"] = sorted(node_names[location])
        return {**total, "nodes": nodes}

    async def afind(self, index: str, value: str) -> list[str]:
        found = await self._aeach(lambda layout: live_entries_steps(layout, index, value))
        return [k for keys_, raws in found for k, raw in zip(keys_, raws, strict=True) if raw]

    async def aget_by_index(self, index: str, value: str) -> dict[str, Any]:
        found = await self._aeach(lambda layout: live_entries_steps(layout, index, value))
        return {k: v for keys_, raws in found for k, v in self._decode_many(keys_, raws).items()}

    async def adelete_by_index(self, index: str, value: str) -> int:
        return sum(await self._aeach(lambda layout: delete_by_index_steps(layout, index, value)))

    async def aprune(self) -> int:
        return sum(await self._aeach(prune_steps))

    async def acount(self) -> int:
        return sum(await self._aeach(count_steps))

    async def akeys(self, pattern: str = "*") -> list[str]:
        found: list[str] = []
        for layout in self.layouts:
            _, node = await self.connection.anode(layout.listed_prefix())
            found += await self._akeys_in(layout, node.client, pattern)
        return found

    async def aclear(self, progress: Callable[[int], None] | None = None) -> int:
        done = [0] * len(self.layouts)

        def report(n: int) -> Callable[[int], None]:
            def note(deleted: int) -> None:
                done[n] = deleted
                if progress is not None:
                    progress(sum(done))

            return note

        counts = await asyncio.gather(
            *(
                self._adrive(clear_steps(layout, report(n), self._listing(layout)), layout)
                for n, layout in enumerate(self.layouts)
            )
        )
        return sum(counts)

    async def astats(self) -> dict[str, Any]:
        found = await self._aeach(lambda layout: stats_steps(layout, index_values=True))
        where = [
            (await self.connection.anode(layout.listed_prefix()))[0] for layout in self.layouts
        ]
        return self._merge_stats(list(zip(where, found, strict=True)))


def _offset(notify: Callable[[int], None], base: int) -> Callable[[int], None]:
    """``notify(base + n)``: progress of one tag's flush, after the tags before it."""
    return lambda deleted: notify(base + deleted)
