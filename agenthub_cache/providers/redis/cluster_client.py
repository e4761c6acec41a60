"""Clients of a Redis Cluster, built from a ``RedisClusterCache``'s ``ClusterSpec``, shared per
process (the spec itself comes from the alias's settings, in ``cluster_settings``).

* **sync**: one ``redis.cluster.RedisCluster`` per distinct configuration; redis-py follows
  MOVED/ASK and refreshes its slot map. Operations of several round trips run on the plain
  ``redis.Redis`` client of the primary that owns the namespace's slot (``node``): every key of
  one hash tag lives there, so the single-node steps run unchanged.
* **async**: one ``redis.asyncio.cluster.RedisCluster`` per event loop (closed with the loop,
  like the single-node clients), whose connections are bounded: a task that finds every
  connection busy *waits* for one, up to the socket timeout, instead of failing with
  ``MaxConnectionsError`` (redis-py's own behaviour).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import weakref
from collections.abc import AsyncGenerator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio as aredis
import redis.asyncio.cluster as acluster
import redis.cluster as scluster
from redis.commands.core import Script
from redis.exceptions import NoScriptError, RedisClusterException, ResponseError

from agenthub_cache.providers.redis.cluster_settings import ClusterSpec
from agenthub_cache.providers.redis.connections import AsyncHandle, Connection
from agenthub_cache.providers.redis.pools import WaitingConnectionPool, pool_wait
from agenthub_cache.providers.redis.scripts import SOURCES

# -- a LOCATION that is no cluster: a misconfiguration, not an outage ---------------------------


class NotAClusterError(RedisClusterException):
    """A startup node answered, but it is a Redis server without cluster support. Nothing
    will change that but the settings or the server's configuration: a refusal
    (``CacheRefused``, never silenced by ``FAIL_SILENTLY``), not an outage."""


def _not_a_cluster(exc: RedisClusterException, spec: ClusterSpec) -> NotAClusterError | None:
    """``exc`` (from reading the slot map) as a ``NotAClusterError`` naming the fix, if a node
    said it has no cluster support; else None. redis-py raises "Cluster mode is not enabled"
    (5.x: after INFO; 8.x: from the ``ResponseError`` of CLUSTER SLOTS) wrapped in "cannot be
    connected", so the whole chain is looked at."""
    seen: BaseException | None = exc
    while seen is not None:
        text = str(seen)
        if "Cluster mode is not enabled" in text or (
            isinstance(seen, ResponseError) and "cluster support disabled" in text
        ):
            return NotAClusterError(
                f"the startup nodes {spec.location} of this RedisClusterCache are Redis "
                "servers without cluster support (cluster mode is not enabled). Point "
                "LOCATION at nodes of a Redis Cluster, or start the servers with "
                "cluster-enabled yes and form a cluster; for a single Redis server use "
                "django_redis.cache.RedisCache instead."
            )
        seen = seen.__cause__ or seen.__context__
    return None


@contextlib.contextmanager
def _reading_slots(spec: ClusterSpec) -> Iterator[None]:
    """Around whatever reads the slot map: a node without cluster support is named as such."""
    try:
        yield
    except NotAClusterError:
        raise
    except RedisClusterException as exc:
        found = _not_a_cluster(exc, spec)
        if found is None:
            raise
        raise found from exc


# -- async: wait for a connection instead of failing -------------------------------------------

_holding: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "agenthub_cluster_slot", default=False
)


class BoundedAsyncCluster(acluster.RedisCluster):
    """``redis.asyncio`` RedisCluster whose commands and pipelines wait for a free slot.

    At most ``limit`` commands (or pipelines) are in flight at once, so no node ever needs
    more than ``limit`` connections; the rest wait up to ``wait`` seconds, then raise
    ``redis.TimeoutError`` (an outage, under the namespace's policy). redis-py's own pool
    would raise ``MaxConnectionsError`` at once: concurrency is not an outage.
    """

    def __init__(
        self, *args: Any, limit: int, wait: float, spec: ClusterSpec, **kwargs: Any
    ) -> None:
        # The nodes' own limit is never reached: the semaphore admits at most ``limit``.
        kwargs["max_connections"] = 2**31
        super().__init__(*args, **kwargs)
        self._limit, self._wait, self._spec = limit, wait, spec
        self._slots: asyncio.Semaphore | None = None
        self._init_lock = asyncio.Lock()

    async def admit(self) -> bool:
        """Wait for a free slot (``False``: this task already holds one, for a command inside
        a pipeline it runs). Then make sure the client is initialized, by one task at a time."""
        if _holding.get():
            return False
        slots = self._slots
        if slots is None:
            slots = self._slots = asyncio.Semaphore(self._limit)
        if slots.locked():
            try:
                async with asyncio.timeout(self._wait):
                    await slots.acquire()
            except TimeoutError:
                raise redis.exceptions.TimeoutError(
                    f"no free connection to the Redis Cluster within {self._wait} s "
                    f"({self._limit} in use)"
                ) from None
        else:
            await slots.acquire()  # free: returns at once, without a timer
        if self._initialize:  # redis-py 8.1 breaks when tasks first use a client at once
            try:
                async with self._init_lock:
                    with _reading_slots(self._spec):
                        await self.initialize()
            except BaseException:
                slots.release()
                raise
        return True

    def leave(self, admitted: bool) -> None:
        if admitted and self._slots is not None:
            self._slots.release()

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

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        if shard_hint:
            return super().pipeline(transaction, shard_hint)
        return _BoundedPipeline(self, transaction)  # type: ignore[abstract]


class _BoundedPipeline(acluster.ClusterPipeline):
    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> Any:
        client: BoundedAsyncCluster = self.cluster_client  # type: ignore[assignment]
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


def _sync_client(spec: ClusterSpec) -> Any:
    """A new ``redis.cluster.RedisCluster`` of ``spec`` (its methods are untyped)."""
    startup = [scluster.ClusterNode(host, port) for host, port in spec.nodes]  # type: ignore[no-untyped-call]
    return scluster.RedisCluster(
        startup_nodes=startup, max_connections=spec.max_connections, **spec.client_kwargs()
    )


def _async_client(spec: ClusterSpec) -> BoundedAsyncCluster:
    """A new async cluster client of ``spec``, for the running event loop."""
    startup = [acluster.ClusterNode(host, port) for host, port in spec.nodes]
    return BoundedAsyncCluster(
        startup_nodes=startup,
        limit=spec.max_connections,
        wait=spec.socket_timeout,
        spec=spec,
        **spec.client_kwargs(),
    )


# -- the shared connection ----------------------------------------------------------------------


@dataclass(eq=False)
class ClusterConnection:
    """One cluster configuration: its sync client, per-node connections, per-loop async clients.

    The sync client is created on first use, so that an unreachable cluster fails the call
    that needs it (an outage, under the namespace's policy), not the service's creation.
    """

    spec: ClusterSpec
    _client: Any = None  # redis.cluster.RedisCluster (its methods are untyped)
    _scripts: dict[str, Script] = field(default_factory=dict)
    _nodes: dict[str, Connection] = field(default_factory=dict)
    _stale: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    #: The last loop's handle, for the common case of one loop (no dict lookups).
    _last: tuple[asyncio.AbstractEventLoop, AsyncHandle] | None = None

    @property
    def client(self) -> Any:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    with _reading_slots(self.spec):
                        created = _sync_client(self.spec)
                    self._scripts = {n: created.register_script(s) for n, s in SOURCES.items()}
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
        """EVALSHA on the primary of the keys' slot (redis-py routes by KEYS[1])."""
        script = self.scripts[name]
        try:
            return self.client.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:
            script.sha = self.client.script_load(script.script)
            return self.client.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)

    def mark_stale(self) -> None:
        """A node failed or moved a slot: re-read the slot map before the next ``node``."""
        self._stale = True

    def node(self, key: str) -> Connection:
        """A plain single-node connection to the primary that owns ``key``'s slot now."""
        if self._stale:
            self._stale = False
            with _reading_slots(self.spec):
                self.client.nodes_manager.initialize()
        node = self.client.get_node_from_key(key)
        found = self._nodes.get(node.name)
        if found is None:
            redis_client = self.client.get_redis_connection(node)
            spec, host, port = self.spec, node.host, node.port

            def make_async_pool() -> aredis.ConnectionPool:
                # The single-node rule (pools.py): past max_connections a task waits for a
                # free connection, at most the socket timeout.
                kwargs = spec.client_kwargs()
                kwargs.update(max_connections=spec.max_connections, timeout=pool_wait(kwargs))
                return WaitingConnectionPool(host=host, port=port, **kwargs)

            found = Connection(
                f"{self.signature}@{node.name}", node.name, redis_client, make_async_pool
            )
            found = self._nodes.setdefault(node.name, found)  # another thread's, if it won
        return found

    def anode(self, key: str) -> AsyncHandle:
        """This loop's client of the primary that owns ``key``'s slot now (the sync slot map
        says which; redis-py keeps it current)."""
        return self.node(key).async_handle()

    def async_handle(self) -> AsyncHandle:
        """The running loop's async cluster client (created once per loop)."""
        loop = asyncio.get_running_loop()
        last = self._last
        if last is not None and last[0] is loop:
            return last[1]
        handles = _async_handles.setdefault(loop, {})
        handle = handles.get(self.signature)
        if handle is None:
            client: Any = _async_client(self.spec)
            scripts = {name: client.register_script(src) for name, src in SOURCES.items()}
            handle = handles.setdefault(self.signature, AsyncHandle(client, scripts))
            _arm_close(loop)
        self._last = (loop, handle)
        return handle

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        self._last = None
        handle = _async_handles.get(loop, {}).pop(self.signature, None)
        if handle is not None:
            await handle.client.aclose()
        for connection in list(self._nodes.values()):
            await connection.aclose()


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
