"""The async client of a Redis Cluster: one ``BoundedAsyncCluster`` per event loop.

* Its commands and pipelines wait for a free place at its ``Gate`` (at most
  ``max_connections`` in flight) instead of failing with redis-py's ``MaxConnectionsError``:
  concurrency is not an outage.
* ``execute_on_slot`` sends a command whose slot the caller knows straight to that slot's
  primary (``cluster_routing``); ``ClusterHandle`` sends the scripts' EVALSHA that way.
* Its slot map is read on the loop (``ready``), never by the sync client: one task reads it,
  the others wait for that read and share its outcome (a failure is not tried again by each
  waiter in turn).
* ``node_of`` gives the plain ``redis.asyncio`` client of one node, on which the single-node
  steps run (every key of a hash tag lives on the node that owns its slot). It draws on the
  cluster client's own connections to that node (``_NodePool``) and takes a place at the same
  gate for each command or pipeline: so ``max_connections`` caps what a loop has in
  flight over all nodes together, and no node ever holds more connections than that.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aredis
import redis.asyncio.cluster as acluster
from redis.exceptions import NoScriptError

from agenthub_cache.providers.redis.cluster_nodes import aanswering, node_name, reading_slots
from agenthub_cache.providers.redis.cluster_routing import retried, routes_directly
from agenthub_cache.providers.redis.cluster_settings import ClusterSpec
from agenthub_cache.providers.redis.connections import AsyncHandle
from agenthub_cache.providers.redis.gate import Gate
from agenthub_cache.providers.redis.scripts import SOURCES

_holding: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "agenthub_cluster_slot", default=False
)


class BoundedAsyncCluster(acluster.RedisCluster):
    """``redis.asyncio`` RedisCluster whose commands and pipelines wait for a free place.

    At most ``limit`` commands (or pipelines) are in flight at once, so no node ever needs
    more than ``limit`` connections; the rest wait up to ``wait`` seconds, then raise
    ``redis.TimeoutError`` (an outage, under the namespace's policy). redis-py's own pool
    would raise ``MaxConnectionsError`` at once: concurrency is not an outage.
    """

    def __init__(
        self, *args: Any, limit: int, wait: float, spec: ClusterSpec, **kwargs: Any
    ) -> None:
        # The nodes' own limit is never reached: the gate admits at most ``limit``.
        kwargs["max_connections"] = 2**31
        super().__init__(*args, **kwargs)
        self._limit, self._wait, self._spec = limit, wait, spec
        self._gate = Gate(limit)
        self._init_lock = asyncio.Lock()
        #: A step met a failed node or a moved slot: re-read the slot map before the next.
        self._stale = False
        #: Reads of the slot map tried so far, and the last one's failure (None: it worked).
        self._reads = 0
        self._failure: BaseException | None = None
        #: Each node's plain client, with the node object it was made for.
        self._node_handles: dict[str, tuple[Any, AsyncHandle]] = {}
        #: The startup nodes as given (the first read asks only those that answer), and
        #: whether a read has worked yet.
        self._given_startup = dict(self.nodes_manager.startup_nodes)
        self._has_read = False
        #: Whether keyed commands may go straight to their slot's primary (``execute_on_slot``).
        self._direct = routes_directly(self)

    def mark_stale(self) -> None:
        self._stale = True

    async def ready(self) -> None:
        """Read the slot map if it is due (first use, redis-py asks, or ``mark_stale``), on
        the loop, by one task at a time. A task that waited while another read it shares
        that read's outcome: an unreachable cluster costs the waiters no read of their own."""
        if not (self._initialize or self._stale):
            return
        reads = self._reads
        async with self._init_lock:
            if self._reads != reads and self._failure is not None:
                raise self._failure  # the read this task waited for failed
            if not (self._initialize or self._stale):
                return  # another task read it
            self._reads += 1
            try:
                with reading_slots(self._spec):
                    if not self._has_read:  # redis-py would ask each node in turn
                        answered = {node_name(*node) for node in await aanswering(self._spec)}
                        given = self._given_startup
                        self.nodes_manager.startup_nodes = {
                            name: node for name, node in given.items() if node.name in answered
                        } or dict(given)
                    if self._initialize:
                        await self.initialize()
                    else:
                        await self.nodes_manager.initialize()
            except BaseException as exc:
                self._failure = exc
                raise
            if not self._has_read:  # redis-py keeps the connection it asked on, beside the
                live = self.nodes_manager.nodes_cache  # node's own: one over the cap
                for node in self._given_startup.values():
                    if live.get(node.name) is not node:
                        await node.disconnect()
            self._stale, self._failure, self._has_read = False, None, True

    async def admit(self) -> bool:
        """Wait for a free place at the gate (``False``: this task already holds one, for a
        command inside a pipeline it runs). Then make sure the slot map has been read: a
        read holds a place too, so it never needs a connection past the cap."""
        if _holding.get():
            return False
        gate = self._gate
        if not gate.enter_now():  # free: no timer, no coroutine
            try:
                async with asyncio.timeout(self._wait):
                    await gate.wait()
            except TimeoutError:
                raise redis.exceptions.TimeoutError(
                    f"no free connection to the Redis Cluster within {self._wait} s "
                    f"({self._limit} in use)"
                ) from None
        if self._initialize or self._stale:  # redis-py 8.1 breaks if tasks initialize at once
            try:
                await self.ready()
            except BaseException:
                gate.leave()
                raise
        return True

    def leave(self, admitted: bool) -> None:
        if admitted:
            self._gate.leave()

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        admitted = await self.admit()
        token = _holding.set(True)
        try:
            return await super().execute_command(*args, **kwargs)
        except TypeError as exc:
            raise _closed_transport(exc) from exc
        finally:
            _holding.reset(token)
            self.leave(admitted)

    async def execute_on_slot(self, slot: int | None, *args: Any, **kwargs: Any) -> Any:
        """``execute_command(*args, **kwargs)`` for a command whose keys all live in ``slot``
        (the caller's guarantee): straight to the slot's primary by redis-py's per-node send,
        the generic path where that is not enough (``cluster_routing``) or the slot is not
        known (``None``). While a connection is free it takes its place at the gate at once,
        and sets no context variable: the per-node send runs no command of this client's
        inside it (and ``admit`` still sees a pipeline's or command's own place)."""
        if slot is None or self._initialize or self._stale or not self._direct:
            return await self.execute_command(*args, **kwargs)
        gate = self._gate
        admitted = gate.enter_now() or await self.admit()
        try:
            node = self.nodes_manager.get_node_from_slot(slot)
            return await self._execute_command(node, *args, **kwargs)
        except TypeError as exc:
            raise _closed_transport(exc) from exc
        except Exception as exc:
            if not retried(self, exc):
                raise
        finally:
            if admitted:
                gate.leave()
        return await self.execute_command(*args, **kwargs)  # redis-py's retries, after its refresh

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        if shard_hint:
            return super().pipeline(transaction, shard_hint)
        if transaction:  # redis-py 5.x's ClusterPipeline takes the client alone
            return _BoundedPipeline(self, transaction)  # type: ignore[abstract]
        return _BoundedPipeline(self)  # type: ignore[abstract]

    # -- the nodes, for the single-node steps ------------------------------------------------

    async def node_of(self, key: str) -> tuple[str, AsyncHandle]:
        """The name (``host:port``) and plain client of the primary that owns ``key``'s slot
        now, the slot map read on the loop first where it is due."""
        self.leave(await self.admit())  # reads the slot map if due, holding a place
        node = self.get_node_from_key(key)
        if node is None:  # redis-py raises SlotNotCoveredError first; typed as Optional
            raise redis.exceptions.ClusterDownError(f"no node serves the slot of {key!r}")
        found = self._node_handles.get(node.name)
        if found is None or found[0] is not node:  # new, or redis-py replaced the node
            client = aredis.Redis(connection_pool=_NodePool(self, node))
            scripts = {name: client.register_script(src) for name, src in SOURCES.items()}
            found = self._node_handles[node.name] = (node, AsyncHandle(client, scripts))
        return node.name, found[1]

    async def aclose(self) -> None:
        self._node_handles = {}  # their connections are the nodes', closed here
        await super().aclose()


@dataclass(eq=False)
class ClusterHandle(AsyncHandle):
    """This loop's ``BoundedAsyncCluster`` with its scripts: each EVALSHA goes straight to
    the primary of its keys' slot (every key of one call carries the entry's hash tag)."""

    async def _evalsha(self, name: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        client: BoundedAsyncCluster = self.client  # type: ignore[assignment]
        script, slot = self.scripts[name], client.keyslot(keys[0])
        try:
            return await client.execute_on_slot(
                slot, "EVALSHA", script.sha, len(keys), *keys, *args
            )
        except NoScriptError:
            script.sha = await client.script_load(script.script)
            return await client.execute_on_slot(
                slot, "EVALSHA", script.sha, len(keys), *keys, *args
            )


class _NodePool(aredis.ConnectionPool):
    """One node's connections of a ``BoundedAsyncCluster``, as the pool of a plain client.

    Each command or pipeline first takes a place at the cluster client's gate (waiting as
    the client's own commands do), then one of the node's connections, and gives both back
    when done. The cluster client owns the connections: closing this pool closes nothing.
    """

    def __init__(self, cluster: BoundedAsyncCluster, node: Any) -> None:
        super().__init__(connection_class=node.connection_class, **node.connection_kwargs)
        self._cluster, self._node = cluster, node
        self._admitted: dict[int, bool] = {}

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        admitted = await self._cluster.admit()
        try:
            connection = self._node.acquire_connection()
        except BaseException:
            self._cluster.leave(admitted)
            raise
        self._admitted[id(connection)] = admitted
        reconnect = getattr(self._node, "disconnect_if_needed", None)  # redis-py >= 8
        if reconnect is not None:
            try:
                await reconnect(connection)
            except BaseException:
                await self.release(connection)
                raise
        return connection

    async def release(self, connection: Any) -> None:
        give_back = getattr(self._node, "release", None)  # redis-py >= 6
        if give_back is not None:
            give_back(connection)
        else:
            self._node._free.append(connection)
        self._cluster.leave(self._admitted.pop(id(connection), False))

    async def disconnect(self, inuse_connections: bool = True) -> None:
        """The cluster client's connections: it closes them."""

    async def aclose(self) -> None:
        """The cluster client's connections: it closes them."""


class _BoundedPipeline(acluster.ClusterPipeline):
    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> Any:
        # redis-py 6+ names it cluster_client; 5.x, _client
        client: BoundedAsyncCluster = getattr(self, "cluster_client", None) or self._client  # type: ignore[attr-defined]
        admitted = await client.admit()
        token = _holding.set(True)
        try:
            return await super().execute(raise_on_error, allow_redirections)
        except TypeError as exc:
            raise _closed_transport(exc) from exc
        finally:
            _holding.reset(token)
            client.leave(admitted)


def _closed_transport(exc: TypeError) -> BaseException:
    """redis-py 8.1's async cluster can write on a connection whose transport a failed node
    already closed, and asyncio then raises ``TypeError`` (``_write_ready`` is None): that is
    a lost connection (an outage for this call), not a bad argument. Any other TypeError is
    returned unchanged."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = tb.tb_frame.f_code.co_filename if tb is not None else ""
    if where.endswith(("selector_events.py", "transports.py", "proactor_events.py")):
        return redis.exceptions.ConnectionError(f"connection lost mid-write ({exc})")
    return exc


def async_client(spec: ClusterSpec) -> BoundedAsyncCluster:
    """A new async cluster client of ``spec``, for the running event loop."""
    startup = [acluster.ClusterNode(host, port) for host, port in spec.nodes]
    return BoundedAsyncCluster(
        startup_nodes=startup,
        limit=spec.max_connections,
        wait=spec.socket_timeout,
        spec=spec,
        **spec.client_kwargs(),
    )
