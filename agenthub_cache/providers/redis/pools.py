"""``redis.asyncio`` pools equivalent to a backend's sync pool settings.

Every async pool is a ``BlockingConnectionPool``: past ``max_connections`` a task waits for a
free connection, at most the socket timeout, then gets redis-py's ``ConnectionError`` "No
connection available" (which the namespace's failure policy handles); many tasks at once
never fail because of their number. One pool per event loop; the cap holds per loop.

A Sentinel alias (django-redis's ``SentinelConnectionFactory``) gets the same on
``redis.asyncio.sentinel``: a blocking pool whose connections ask the sentinels where the
primary is, so a failover is followed without a restart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse, urlunparse

import redis
import redis.asyncio as aredis
import redis.asyncio.connection as aconnection
import redis.asyncio.sentinel as asentinel

from agenthub_cache.providers.redis.internals import async_retry

#: The cap on each event loop's async pool where the settings give no ``max_connections``
#: (redis-py 8's own default for its async pool).
DEFAULT_MAX_CONNECTIONS = 100
#: Where the settings give no socket timeout (the connections module adds this default).
DEFAULT_SOCKET_TIMEOUT = 5.0


@dataclass(frozen=True)
class SentinelSettings:
    """Where the sentinels are: django-redis's ``SENTINELS`` and ``SENTINEL_KWARGS``."""

    sentinels: tuple[tuple[str, int], ...]
    sentinel_kwargs: tuple[tuple[str, Any], ...] | None = None

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> SentinelSettings:
        kwargs = options.get("SENTINEL_KWARGS")
        return cls(
            tuple((str(host), int(port)) for host, port in options.get("SENTINELS") or ()),
            None if kwargs is None else tuple(sorted(kwargs.items())),
        )


class WaitingConnectionPool(aredis.BlockingConnectionPool):
    """``BlockingConnectionPool`` that skips its condition and timer while nobody waits.

    redis-py's version enters an ``asyncio.Condition`` and arms a timeout for every command,
    even with connections free: measured, 15-45% of an ``aget`` at 64 tasks. Here a call takes
    a free (or new) connection at once when no other task is queued, else queues behind them
    in redis-py's own wait, so waiters are served in turn and never starved by newcomers.
    """

    _queued = 0

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        if not self._queued and self.can_get_connection() and not _in_maintenance(self):
            # no await between the check and the take: atomic on the loop
            connection = self.get_available_connection()  # type: ignore[no-untyped-call]
            try:
                await self.ensure_connection(connection)
            except BaseException:
                await self.release(connection)
                raise
            return connection
        self._queued += 1
        try:
            return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        finally:
            self._queued -= 1

    async def release(self, connection: Any) -> None:
        """Gives ``connection`` back; the condition is entered (to wake a waiter) only if a
        task is queued, before the release or while it waited for the pool's lock."""
        if self._queued:
            await super().release(connection)
            return
        await aredis.ConnectionPool.release(self, connection)
        if self._queued:
            async with self._condition:
                self._condition.notify()


def _in_maintenance(pool: Any) -> bool:
    """redis-py 8's maintenance mode (server push notifications) serializes pool changes."""
    return bool(getattr(pool, "_in_maintenance", False))


class BlockingSentinelConnectionPool(
    asentinel.SentinelConnectionPool,
    WaitingConnectionPool,
):
    """redis-py's async Sentinel pool with ``BlockingConnectionPool``'s wait for a free slot.

    It owns its ``Sentinel`` manager: closing the pool closes the sentinel clients too. (A
    client's ``aclose`` calls the pool's ``aclose`` from redis-py 5.1 on, ``disconnect``
    before; a failover's ``disconnect(inuse_connections=False)`` leaves them open.)
    """

    async def disconnect(self, inuse_connections: bool = True) -> None:
        try:  # a connection broken by a failover may raise as it closes: close the rest
            await super().disconnect(inuse_connections)
        finally:
            if inuse_connections:
                await _close_sentinels(self.sentinel_manager)


async def _close_sentinels(manager: asentinel.Sentinel) -> None:
    """``Sentinel.aclose()``, or each sentinel client's where it has none (redis-py < 5.1)."""
    close = getattr(manager, "aclose", None)
    if close is not None:
        await close()
        return
    for client in manager.sentinels:
        await client.aclose()


def pool_wait(options: dict[str, Any]) -> float:
    """How long a task waits for a free pooled connection: the socket timeout, or less where a
    ``BlockingConnectionPool``'s own ``timeout`` says so."""
    socket_timeout = options.get("socket_timeout") or DEFAULT_SOCKET_TIMEOUT
    own = options.get("timeout")
    return float(socket_timeout if own is None else min(own, socket_timeout))


def _async_kwargs(options: dict[str, Any], module: Any) -> dict[str, Any]:
    """Sync pool options as ``redis.asyncio`` takes them, capped and with the bounded wait."""
    kwargs = {k: v for k, v in options.items() if k != "parser_class"}  # sync parsers only
    connection_class = kwargs.get("connection_class")
    if connection_class is not None:
        kwargs["connection_class"] = getattr(module, connection_class.__name__)
    retry = kwargs.get("retry")
    if isinstance(retry, redis.retry.Retry):
        kwargs["retry"] = async_retry(retry)
    kwargs["max_connections"] = kwargs.get("max_connections") or DEFAULT_MAX_CONNECTIONS
    kwargs["timeout"] = pool_wait(kwargs)
    return kwargs


def async_pool(
    url: str, options: dict[str, Any], sentinel: SentinelSettings | None = None
) -> aredis.ConnectionPool:
    """A ``redis.asyncio`` pool for what the sync pool reaches with ``url`` and ``options``."""
    if sentinel is not None:
        return async_sentinel_pool(url, options, sentinel)
    return WaitingConnectionPool.from_url(url, **_async_kwargs(options, aconnection))


def async_sentinel_pool(
    url: str, options: dict[str, Any], sentinel: SentinelSettings
) -> BlockingSentinelConnectionPool:
    """The primary of the service named by ``url``'s host (``redis://mymaster/0``)."""
    parsed = urlparse(url)
    query = {k: v for k, v in parse_qs(parsed.query).items() if k != "is_master"}
    plain = urlunparse(parsed._replace(query=urlencode(query, doseq=True)))
    from_url = aconnection.parse_url(plain)
    service = from_url.pop("host")
    from_url.pop("port", None)
    kwargs = {**from_url, **_async_kwargs(options, asentinel)}
    sockets = {k: v for k, v in kwargs.items() if k.startswith("socket_")}
    extra = None if sentinel.sentinel_kwargs is None else dict(sentinel.sentinel_kwargs)
    # redis-py types Sentinel.__init__ only from 8.2 on; through Any, mypy passes on every release.
    make_sentinel: Callable[..., asentinel.Sentinel] = asentinel.Sentinel
    manager = make_sentinel(list(sentinel.sentinels), sentinel_kwargs=extra, **sockets)
    return BlockingSentinelConnectionPool(service, manager, **kwargs)  # type: ignore[no-untyped-call]


def sentinel_location(url: str, sentinels: Sequence[tuple[str, int]]) -> str:
    """Where a Sentinel alias connects, without credentials."""
    parsed = urlparse(url)
    nodes = ",".join(f"{host}:{port}" for host, port in sentinels)
    return f"sentinel://{nodes}/{parsed.hostname}{parsed.path or '/0'}"
