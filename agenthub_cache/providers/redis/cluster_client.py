"""Clients of a Redis Cluster, built from a ``RedisClusterCache``'s ``ClusterSpec``, shared per
process (the spec itself comes from the alias's settings, in ``cluster_settings``).

* **sync**: one ``redis.cluster.RedisCluster`` per distinct configuration; redis-py follows
  MOVED/ASK and refreshes its slot map. A single-key call whose slot the caller knows goes
  straight to that slot's primary (``on_slot``, see ``cluster_routing``). Operations of
  several round trips run on the plain ``redis.Redis`` client of the primary that owns the
  namespace's slot (``node``): every key of one hash tag lives there, so the single-node steps
  run unchanged.
* **async**: one ``BoundedAsyncCluster`` (``cluster_async``) per event loop, closed with the
  loop like the single-node clients. Everything async, the slot map and the node of a step
  included, is found on the loop by that client (``anode``): nothing async waits on the sync
  client.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import threading
import weakref
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aredis
import redis.cluster as scluster
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from agenthub_cache.exceptions import NotSupported
from agenthub_cache.providers.redis.cluster_async import (
    BoundedAsyncCluster,
    ClusterHandle,
    async_client,
)
from agenthub_cache.providers.redis.cluster_nodes import answering, reading_slots
from agenthub_cache.providers.redis.cluster_routing import retried, routes_directly
from agenthub_cache.providers.redis.cluster_settings import ClusterSpec
from agenthub_cache.providers.redis.connections import AsyncHandle, Connection
from agenthub_cache.providers.redis.declared import declared_again
from agenthub_cache.providers.redis.scripts import SOURCES


def _sync_client(spec: ClusterSpec) -> Any:
    """A new ``redis.cluster.RedisCluster`` of ``spec`` (its methods are untyped), from the
    startup nodes that answer (all asked at once: one timeout, however many hang)."""
    nodes = answering(spec)
    startup = [scluster.ClusterNode(host, port) for host, port in nodes]  # type: ignore[no-untyped-call]
    return scluster.RedisCluster(
        startup_nodes=startup, max_connections=spec.max_connections, **spec.client_kwargs()
    )


# -- the shared connection ----------------------------------------------------------------------


@dataclass(eq=False)
class ClusterConnection:
    """One cluster configuration: its sync client, per-node connections, per-loop async clients.

    The sync client is created on first use, so that an unreachable cluster fails the call
    that needs it (an outage, under the namespace's policy), not the service's creation.
    Threads that wait while another creates it share that attempt's outcome: while the
    cluster is unreachable, each fails after at most one attempt's time, not one per waiter.
    """

    spec: ClusterSpec
    _client: Any = None  # redis.cluster.RedisCluster (its methods are untyped)
    _scripts: dict[str, Script] = field(default_factory=dict)
    _nodes: dict[str, Connection] = field(default_factory=dict)
    _stale: bool = False
    #: Whether keyed commands may go straight to their slot's primary (``on_slot``).
    _direct: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    #: Attempts to create the sync client so far, and the last one's failure.
    _attempts: int = 0
    _failure: BaseException | None = None
    #: The last loop's handle, for the common case of one loop (no dict lookups).
    _last: tuple[asyncio.AbstractEventLoop, AsyncHandle] | None = None

    @property
    def client(self) -> Any:
        client = self._client
        if client is None:
            attempts = self._attempts
            with self._lock:
                if self._client is None:
                    failure = self._failure
                    if self._attempts != attempts and failure is not None:
                        raise copy.copy(failure) from failure  # the attempt this one waited for
                    self._attempts += 1
                    try:
                        with reading_slots(self.spec):
                            created = _sync_client(self.spec)
                    except BaseException as exc:
                        self._failure = exc
                        raise
                    self._failure = None
                    self._scripts = {n: created.register_script(s) for n, s in SOURCES.items()}
                    self._direct = routes_directly(created)
                    self._client = created
                client = self._client
        return client

    @property
    def scripts(self) -> dict[str, Script]:
        self.client  # noqa: B018  (creates them with the client)
        return self._scripts

    @property
    def signature(self) -> str:
        return self.spec.signature

    @property
    def location(self) -> str:
        return f"cluster {self.spec.location}"

    def run_script(self, name: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """EVALSHA on the primary of the keys' slot (redis-py routes by the KEYS, all in the
        entry's hash tag), sent again with the index keys it asks to have declared."""
        reply = self._evalsha(name, keys, args)
        attempt = 0
        while (more := declared_again(name, keys, reply, attempt)) is not None:
            keys, attempt = more, attempt + 1
            reply = self._evalsha(name, keys, args)
        return reply

    def _evalsha(self, name: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        script, slot = self.scripts[name], self.client.keyslot(keys[0])
        try:
            return self.on_slot(slot, "EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:
            script.sha = self.client.script_load(script.script)
            return self.on_slot(slot, "EVALSHA", script.sha, len(keys), *keys, *args)

    def on_slot(self, slot: int | None, *args: Any, **kwargs: Any) -> Any:
        """``client.execute_command(*args, **kwargs)`` for a command whose keys all live in
        ``slot`` (the caller's guarantee): straight to the slot's primary by redis-py's
        per-node send, the generic path where that is not enough (``cluster_routing``) or
        the slot is not known (``None``)."""
        client = self.client
        if (
            slot is None
            or not self._direct
            or getattr(client.nodes_manager, "_refresh_requested", False)
        ):
            return client.execute_command(*args, **kwargs)
        try:
            node = client.nodes_manager.get_node_from_slot(slot)
            return client._execute_command(node, *args, **kwargs)
        except Exception as exc:
            if not retried(client, exc):
                raise
        return client.execute_command(*args, **kwargs)  # redis-py's retries, after its refresh

    def mark_stale(self) -> None:
        """A node failed or moved a slot: re-read the slot map before the next ``node``."""
        self._stale = True

    def node(self, key: str) -> Connection:
        """A plain single-node connection to the primary that owns ``key``'s slot now (sync
        only: the async steps run on ``anode``)."""
        if self._stale:
            self._stale = False
            with reading_slots(self.spec):
                self.client.nodes_manager.initialize()
        node = self.client.get_node_from_key(key)
        found = self._nodes.get(node.name)
        if found is None:
            redis_client = self.client.get_redis_connection(node)
            found = Connection(
                f"{self.signature}@{node.name}", node.name, redis_client, _no_async_pool
            )
            found = self._nodes.setdefault(node.name, found)  # another thread's, if it won
        return found

    async def anode(self, key: str) -> tuple[str, AsyncHandle]:
        """The name and this loop's plain client of the primary that owns ``key``'s slot
        now, found on the loop by the loop's async cluster client."""
        cluster: BoundedAsyncCluster = self.async_handle().client  # type: ignore[assignment]
        return await cluster.node_of(key)

    def amark_stale(self) -> None:
        """A step on this loop met a failed node or a moved slot: the loop's async client
        re-reads the slot map before the next ``anode``."""
        cluster: BoundedAsyncCluster = self.async_handle().client  # type: ignore[assignment]
        cluster.mark_stale()

    def async_handle(self) -> AsyncHandle:
        """The running loop's async cluster client (created once per loop)."""
        loop = asyncio.get_running_loop()
        last = self._last
        if last is not None and last[0] is loop:
            return last[1]
        handles = _async_handles.setdefault(loop, {})
        handle = handles.get(self.signature)
        if handle is None:
            client: Any = async_client(self.spec)
            scripts = {name: client.register_script(src) for name, src in SOURCES.items()}
            handle = handles.setdefault(self.signature, ClusterHandle(client, scripts))
            _arm_close(loop)
        self._last = (loop, handle)
        return handle

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        self._last = None
        handle = _async_handles.get(loop, {}).pop(self.signature, None)
        if handle is not None:
            await handle.client.aclose()  # and its nodes' clients


def _no_async_pool() -> aredis.ConnectionPool:
    raise NotSupported("a cluster node's async client comes from ClusterConnection.anode()")


_async_handles: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, AsyncHandle]] = (
    weakref.WeakKeyDictionary()
)
_parked: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncGenerator[None, None]] = (
    weakref.WeakKeyDictionary()
)


def _arm_close(loop: asyncio.AbstractEventLoop) -> None:
    """Close this loop's cluster clients when it shuts down its async generators."""
    if loop in _parked:
        return

    async def closer() -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            for handle in _async_handles.pop(loop, {}).values():
                await handle.client.aclose()
            for connection in _connections.values():  # let the finished loop be collected
                last = connection._last
                if last is not None and last[0] is loop:
                    connection._last = None

    generator = closer()
    with contextlib.suppress(StopIteration):
        generator.__anext__().send(None)  # registers it with the loop and parks it
    _parked[loop] = generator


_connections: dict[str, ClusterConnection] = {}
_guard = threading.Lock()


def cluster_connection(spec: ClusterSpec) -> ClusterConnection:
    """The process-wide connection of this cluster configuration."""
    found = _connections.get(spec.signature)
    if found is not None:
        return found
    with _guard:
        found = _connections.get(spec.signature)
        if found is None:
            found = _connections[spec.signature] = ClusterConnection(spec)
    return found
