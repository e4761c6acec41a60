"""Connections of the Redis provider, built from the Django backend's own settings.

One ``Connection`` per distinct server configuration in the process, shared by every
namespace on it:

* **sync**: the backend's own client on its own pool, kept (never a second pool beside it).
  With django-redis that pool is process-wide; Django's ``RedisCache`` makes a client per
  call on a pool per backend object (one per thread), and the app keeps one such client, on
  the pool of the backend that first reached the server.
* **async**: one ``redis.asyncio.Redis`` per event loop, on a pool built from the same URL and
  options. Each loop's clients are closed when the loop shuts down its async generators
  (``asyncio.run``, ``asyncio.Runner``, pytest-asyncio, uvicorn, asgiref all do), or earlier
  by ``RedisProvider.aclose()``; so several ``asyncio.run()`` in a row just work.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio as aredis
from django.core.cache.backends.base import BaseCache
from redis.commands.core import AsyncScript, Script
from redis.exceptions import NoScriptError

from agenthub_cache.exceptions import NotSupported
from agenthub_cache.providers.redis import internals
from agenthub_cache.providers.redis.declared import declared_again
from agenthub_cache.providers.redis.pools import (
    DEFAULT_SOCKET_TIMEOUT,
    SentinelSettings,
    async_pool,
    sentinel_location,
)
from agenthub_cache.providers.redis.scripts import SOURCES

#: redis-py's "server unreachable / timed out" errors (AuthenticationError is a subclass).
UNAVAILABLE: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
    TimeoutError,
)


@dataclass(eq=False)
class AsyncHandle:
    """This event loop's client on one connection, with its scripts."""

    client: aredis.Redis
    scripts: dict[str, AsyncScript]

    async def run_script(self, name: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """EVALSHA one of ``SOURCES`` (loading it again after a SCRIPT FLUSH or restart), sent
        again with the index keys it asks to have declared (``declared.declared_again``)."""
        reply = await self._evalsha(name, keys, args)
        attempt = 0
        while (more := declared_again(name, keys, reply, attempt)) is not None:
            keys, attempt = more, attempt + 1
            reply = await self._evalsha(name, keys, args)
        return reply

    async def _evalsha(self, name: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        script, execute = self.scripts[name], self.client.execute_command
        try:
            return await execute("EVALSHA", script.sha, len(keys), *keys, *args)  # type: ignore[no-untyped-call]
        except NoScriptError:
            script.sha = await self.client.script_load(script.script)
            return await execute("EVALSHA", script.sha, len(keys), *keys, *args)  # type: ignore[no-untyped-call]


@dataclass(eq=False)
class Connection:
    """One server configuration: its sync client and a factory of per-loop async clients."""

    signature: str
    location: str
    client: redis.Redis
    make_async_pool: Callable[[], aredis.ConnectionPool]
    scripts: dict[str, Script] = field(init=False)
    _last: tuple[asyncio.AbstractEventLoop, AsyncHandle] | None = None

    def __post_init__(self) -> None:
        self.scripts = {name: self.client.register_script(src) for name, src in SOURCES.items()}
        self._execute: Callable[..., Any] = self.client.execute_command

    def run_script(self, name: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """EVALSHA one of ``SOURCES`` (loading it again after a SCRIPT FLUSH or restart), sent
        again with the index keys it asks to have declared (``declared.declared_again``).

        Straight to ``execute_command``: ``Script.__call__`` costs ~2 µs more per call.
        """
        reply = self._evalsha(name, keys, args)
        attempt = 0
        while (more := declared_again(name, keys, reply, attempt)) is not None:
            keys, attempt = more, attempt + 1
            reply = self._evalsha(name, keys, args)
        return reply

    def _evalsha(self, name: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        script = self.scripts[name]
        try:
            return self._execute("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:
            script.sha = self.client.script_load(script.script)
            return self._execute("EVALSHA", script.sha, len(keys), *keys, *args)

    def async_handle(self) -> AsyncHandle:
        """The running loop's client on this connection (created, and its close armed, once)."""
        loop = asyncio.get_running_loop()
        last = self._last
        if last is not None and last[0] is loop:
            return last[1]
        handle = _loop_handles(loop).get(self.signature)
        if handle is None:
            client = aredis.Redis(connection_pool=self.make_async_pool())
            # The sources this connection's sync scripts were registered from, so both run
            # the same scripts (tests run the pre-Redis-7 branches through one connection).
            scripts = {n: client.register_script(s.script) for n, s in self.scripts.items()}
            handle = _loop_handles(loop).setdefault(self.signature, AsyncHandle(client, scripts))
        self._last = (loop, handle)
        return handle

    async def aclose(self) -> None:
        """Close the running loop's client on this connection (a later call opens a new one)."""
        loop = asyncio.get_running_loop()
        self._last = None
        handle = _loop_handles(loop).pop(self.signature, None)
        if handle is not None:
            await handle.client.aclose(close_connection_pool=True)


# -- per-loop clients, closed at loop shutdown ------------------------------------------------

_handles: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, AsyncHandle]] = (
    weakref.WeakKeyDictionary()
)
_closers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncGenerator[None, None]] = (
    weakref.WeakKeyDictionary()
)
_guard = threading.Lock()


def _loop_handles(loop: asyncio.AbstractEventLoop) -> dict[str, AsyncHandle]:
    handles = _handles.get(loop)
    if handles is not None:
        return handles
    with _guard:
        for old in [old for old in _handles if old.is_closed()]:  # loops closed without
            _handles.pop(old, None)  # shutting down async generators: forget them
            _closers.pop(old, None)
        handles = _handles.setdefault(loop, {})
        if loop not in _closers:
            closer = _close_at_shutdown(handles)
            # The first step registers it with the loop (the firstiter hook) and parks it.
            with contextlib.suppress(StopIteration):
                closer.__anext__().send(None)
            _closers[loop] = closer
    return handles


async def _close_at_shutdown(handles: dict[str, AsyncHandle]) -> AsyncGenerator[None, None]:
    """Parked in the loop's async generators; ``shutdown_asyncgens()`` runs the ``finally``."""
    try:
        yield
    finally:
        loop = asyncio.get_running_loop()
        while handles:
            _, handle = handles.popitem()
            with contextlib.suppress(*UNAVAILABLE):  # a broken socket: close the others too
                await handle.client.aclose(close_connection_pool=True)
        with _guard:
            _handles.pop(loop, None)
            _closers.pop(loop, None)
            for connection in _connections.values():  # let the finished loop be collected
                last = connection._last
                if last is not None and last[0] is loop:
                    connection._last = None


# -- from Django backends to connections ------------------------------------------------------

_connections: dict[str, Connection] = {}


#: Where a backend's OPTIONS set no socket timeouts, the provider's connections use these
#: (seconds; redis-py before 7 would wait forever on a server that stopped answering). So no
#: call waits longer than about connect + one reply per round trip; set lower ones in OPTIONS.
DEFAULT_SOCKET_CONNECT_TIMEOUT = 5.0


def _with_timeouts(options: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """``options`` with the default timeouts where unset, and whether any was added."""
    added = {
        name: default
        for name, default in (
            ("socket_timeout", DEFAULT_SOCKET_TIMEOUT),
            ("socket_connect_timeout", DEFAULT_SOCKET_CONNECT_TIMEOUT),
        )
        if options.get(name) is None
    }
    return {**options, **added}, bool(added)


@dataclass(frozen=True)
class _Spec:
    """A backend's server settings: the first (primary) URL, pool class and pool options."""

    kind: str
    url: str
    pool_class: type[Any]
    options: dict[str, Any]
    sync_client: Callable[[], redis.Redis]
    sentinel: SentinelSettings | None = None

    @property
    def signature(self) -> str:
        options = sorted(self.options.items(), key=repr)
        return repr((self.kind, self.url, self.pool_class, options, self.sentinel))

    def location(self, pool: Any) -> str:
        """Where the pool connects, without credentials."""
        if self.sentinel is not None:
            return sentinel_location(self.url, self.sentinel.sentinels)
        kwargs = getattr(pool, "connection_kwargs", {})
        if "path" in kwargs:
            return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
        return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"


def connection_for(backend: BaseCache) -> Connection:
    """The shared ``Connection`` for this backend's server settings."""
    spec = _spec(backend)
    signature = spec.signature
    found = _connections.get(signature)
    if found is not None:
        return found
    with _guard:
        found = _connections.get(signature)
        if found is None:
            client = spec.sync_client()
            found = _connections[signature] = Connection(
                signature, spec.location(client.connection_pool), client, _async_pool_factory(spec)
            )
    return found


def _spec(backend: BaseCache) -> _Spec:
    from django.core.cache.backends.redis import RedisCache

    if isinstance(backend, RedisCache):
        return _django_spec(backend)
    return _django_redis_spec(backend)


def _django_spec(backend: Any) -> _Spec:
    parts = internals.django_redis_cache(backend)
    options, defaulted = _with_timeouts(parts.pool_options)

    def sync_client() -> redis.Redis:
        # The backend's own client on its own pool (RedisCacheClient.get_client), not a
        # second pool beside it: the alias's max_connections caps every sync connection the
        # app makes through it.
        own: redis.Redis = parts.cache_client.get_client(write=True)
        if defaulted:
            _default_timeouts(own.connection_pool, options)
        return own

    return _Spec("django", parts.url, parts.pool_class, options, sync_client)


def _django_redis_spec(backend: Any) -> _Spec:
    from django_redis.client import HerdClient, ShardClient

    client = backend.client
    if isinstance(client, HerdClient | ShardClient):
        raise NotSupported(
            f"The Redis provider does not support django-redis's {type(client).__name__} "
            "(it changes where keys go or how values are stored); use DefaultClient."
        )
    parts = internals.django_redis_client(client)
    factory = client.connection_factory
    params, defaulted = _with_timeouts(factory.make_connection_params(parts.url))
    options = {**params, **factory.pool_cls_kwargs}
    del options["url"]

    def sync_client() -> redis.Redis:
        # The backend's own client, on its (process-wide) pool: one pool, so the alias's
        # max_connections caps every sync connection to it, the backend's and the app's.
        own: redis.Redis = client.get_client(write=True)
        if defaulted:
            _default_timeouts(own.connection_pool, params)
        return own

    sentinel = None
    if _sentinel(factory.pool_cls) and parts.options.get("SENTINELS"):
        sentinel = SentinelSettings.from_options(parts.options)
    kind = f"django_redis:{type(client).__qualname__}"
    return _Spec(kind, parts.url, factory.pool_cls, options, sync_client, sentinel)


def _default_timeouts(pool: Any, options: dict[str, Any]) -> None:
    """Give the backend's own pool the default socket timeouts its OPTIONS left unset (without
    them a server that stops answering would hold a call forever on redis-py before 7). Only
    connections the pool opens from now on get them. ``update_connection_kwargs`` is redis-py's
    public way from 7.0; before it, ``connection_kwargs`` (a public attribute on every version
    from 5.0.2) is the same dict."""
    unset = {
        name: options[name]
        for name in ("socket_timeout", "socket_connect_timeout")
        if pool.connection_kwargs.get(name) is None
    }
    update = getattr(pool, "update_connection_kwargs", None)
    if update is not None:
        update(**unset)
    else:
        pool.connection_kwargs.update(unset)


def _sentinel(pool_class: type[Any]) -> bool:
    from redis.sentinel import SentinelConnectionPool

    return issubclass(pool_class, SentinelConnectionPool)


def _async_pool_factory(spec: _Spec) -> Callable[[], aredis.ConnectionPool]:
    if spec.sentinel is None and _sentinel(spec.pool_class):
        message = (
            "The Redis provider's async methods reach Sentinel through django-redis's "
            "SentinelConnectionFactory (OPTIONS CONNECTION_FACTORY and SENTINELS); this "
            f"backend's pool {spec.pool_class.__name__} names no sentinels."
        )

        def refuse() -> aredis.ConnectionPool:
            raise NotSupported(message)

        return refuse
    return lambda: async_pool(spec.url, spec.options, spec.sentinel)


def server_settings(backend: BaseCache) -> tuple[str, dict[str, Any]] | None:
    """The backend's (first) URL and pool options, for a throw-away client of its server
    (``probes``); ``None`` where the URL alone does not say where the server is (Sentinel)."""
    spec = _spec(backend)
    if _sentinel(spec.pool_class):
        return None
    return spec.url, spec.options
