"""The Redis provider on a Redis Cluster (``agenthub_cache.backends.RedisClusterCache``).

The single-node provider, layout, scripts and steps, unchanged, with two differences:

* **Where keys live.** Every key of a namespace carries a hash tag (``keys.tagged_prefix``):
  its entries, metas, index sets and locks share one slot, so every Lua script is atomic on
  the node that owns it and redis-py routes each call by its first key.
* **Where multi-round-trip steps run.** On the plain client of the primary that owns the
  namespace's slot (``ClusterConnection.node``), where a SCAN sees exactly that node's keys.

A node that fails, or a slot that moves, is an outage for the call that met it (the
namespace's policy: ``CacheUnavailable``, or the default under ``FAIL_SILENTLY``); the slot
map is re-read before the next call, so the service recovers with no restart.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.core.cache.backends.base import BaseCache
from redis.exceptions import (
    AskError,
    AuthenticationError,
    ClusterDownError,
    CrossSlotTransactionError,
    InvalidPipelineStack,
    RedisClusterException,
    TryAgainError,
)

from agenthub_cache import keys
from agenthub_cache.exceptions import NotSupported
from agenthub_cache.providers.base import Provider
from agenthub_cache.providers.redis.cluster_client import ClusterConnection
from agenthub_cache.providers.redis.connections import UNAVAILABLE
from agenthub_cache.providers.redis.layout import KeyLayout
from agenthub_cache.providers.redis.provider import RedisProvider
from agenthub_cache.providers.redis.steps import Steps, arun, run

T = TypeVar("T")

#: What a cluster says while it fails over or reshards: an outage of the call, not a bug.
CLUSTER_UNAVAILABLE: tuple[type[BaseException], ...] = (
    *UNAVAILABLE,
    ClusterDownError,  # CLUSTERDOWN, MASTERDOWN
    TryAgainError,
    AskError,  # MOVED/ASK met by a step on a node's own client: the slot moved
    RedisClusterException,  # no startup node reachable, slot not covered
)


class RedisClusterProvider(RedisProvider):
    """Native provider for ``agenthub_cache.backends.RedisClusterCache``."""

    unavailable_errors: tuple[type[BaseException], ...] = CLUSTER_UNAVAILABLE
    #: Refusals, never silenced: bad credentials, and cross-slot calls (a bug, not an outage).
    refused_errors: tuple[type[BaseException], ...] = (
        AuthenticationError,
        CrossSlotTransactionError,
        InvalidPipelineStack,
    )

    def __init__(self, backend: BaseCache, alias: str, namespace: str) -> None:
        Provider.__init__(self, backend, alias, namespace)
        cluster: Any = backend
        self.connection: ClusterConnection = cluster.connection  # type: ignore[assignment]
        self.layout = KeyLayout(backend, namespace, keys.tagged_prefix(namespace, 0))
        self._check_tag(self.layout)
        self.encode, self.decode = cluster.encode, cluster.decode
        self._client = self.connection.client
        self._run = self.connection.run_script

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
        return {**super().describe(), "slots": 1}

    # -- where steps run ------------------------------------------------------------------

    def _node_key(self) -> str:
        return self.layout.listed_prefix()

    def _drive(self, steps: Steps[T]) -> T:
        try:
            return run(self.connection.node(self._node_key()), steps)
        except self.unavailable_errors:
            self.connection.mark_stale()
            raise

    async def _adrive(self, steps: Steps[T]) -> T:
        try:
            return await arun(self.connection.anode(self._node_key()), steps)
        except self.unavailable_errors:
            self.connection.mark_stale()
            raise

    def _scan_client(self) -> Any:
        return self.connection.node(self._node_key()).client

    def _ascan_client(self) -> Any:
        return self.connection.anode(self._node_key()).client

    def stats(self) -> dict[str, Any]:
        found = super().stats()
        node = self.connection.node(self._node_key())
        return {**found, "nodes": {node.location: dict(found)}}

    async def astats(self) -> dict[str, Any]:
        found = await super().astats()
        node = self.connection.node(self._node_key())
        return {**found, "nodes": {node.location: dict(found)}}
