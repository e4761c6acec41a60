"""redis-py's own ``Lock`` (SET NX PX, token-checked release): the one lock of the Redis provider.

Every lock key the provider takes goes through the functions here: ``service.lock()``
(``RedisLock``, with ``with`` on the sync client and ``async with`` on the event loop's
``redis.asyncio`` client) and ``get_or_set``'s stampede guard (``take``/``free``, run by the
step drivers). Lock keys live under the namespace's prefix, so a flush drops them too.
"""

from __future__ import annotations

import contextlib
import secrets
from types import TracebackType
from typing import TYPE_CHECKING, Any

import redis.asyncio.lock
import redis.lock
from redis.exceptions import LockNotOwnedError

from agenthub_cache.exceptions import LockError
from agenthub_cache.providers.locking import POLL_SECONDS, LockBase

if TYPE_CHECKING:
    from agenthub_cache.providers.redis.provider import RedisProvider


def _options(timeout: float | None, blocking_timeout: float | None = None) -> dict[str, Any]:
    return {
        "timeout": timeout,
        "sleep": POLL_SECONDS,
        "blocking_timeout": blocking_timeout,
        "thread_local": False,
    }


def sync_lock(
    client: Any, key: str, timeout: float | None, blocking_timeout: float | None = None
) -> redis.lock.Lock:
    """redis-py's ``Lock`` on ``key`` (``timeout``: seconds it lives; ``None``: until freed)."""
    return redis.lock.Lock(client, key, **_options(timeout, blocking_timeout))


def async_lock(
    client: Any, key: str, timeout: float | None, blocking_timeout: float | None = None
) -> redis.asyncio.lock.Lock:
    """``sync_lock`` on the event loop's ``redis.asyncio`` client."""
    return redis.asyncio.lock.Lock(client, key, **_options(timeout, blocking_timeout))


def take(client: Any, key: str, token: str, seconds: float) -> bool:
    """Take ``key`` with ``token`` for ``seconds`` if it is free, without waiting."""
    return bool(sync_lock(client, key, seconds).acquire(blocking=False, token=token))


def free(client: Any, key: str, token: str) -> None:
    """Free ``key`` if ``token`` still holds it (expired, it may be someone else's now)."""
    with contextlib.suppress(LockNotOwnedError):
        sync_lock(client, key, None).do_release(token)


async def atake(client: Any, key: str, token: str, seconds: float) -> bool:
    return bool(await async_lock(client, key, seconds).acquire(blocking=False, token=token))


async def afree(client: Any, key: str, token: str) -> None:
    with contextlib.suppress(LockNotOwnedError):
        await async_lock(client, key, None).do_release(token.encode())


class RedisLock(LockBase):
    """Distributed: every process on the same Redis database sees the same lock."""

    def __init__(
        self,
        provider: RedisProvider,
        name: str,
        timeout: float | None,
        blocking_timeout: float | None,
    ) -> None:
        super().__init__(provider, name, timeout, blocking_timeout)
        self.redis_provider = provider
        self.stored_key = provider.layout.lock(name)

    def _not_acquired(self) -> LockError:
        return LockError(
            f"Cache namespace {self.provider.namespace!r}: could not acquire lock "
            f"{self.name!r} within {self.blocking_timeout} s."
        )

    def _held_token(self) -> str:
        token = self._token
        if token is None:
            raise LockError(
                f"Cache namespace {self.provider.namespace!r}: lock {self.name!r} is not held."
            )
        self._token = None
        return token

    def acquire(self, blocking: bool = True) -> bool:
        token = secrets.token_hex(8)
        client = self.redis_provider.connection.client
        held = sync_lock(client, self.stored_key, self.timeout, self.blocking_timeout)
        if held.acquire(blocking=blocking, token=token):
            self._token = token
            return True
        return False

    def release(self) -> None:
        free(self.redis_provider.connection.client, self.stored_key, self._held_token())

    def locked(self) -> bool:
        return bool(self.redis_provider.connection.client.exists(self.stored_key))

    async def aacquire(self, blocking: bool = True) -> bool:
        token = secrets.token_hex(8)
        client = self.redis_provider.connection.async_handle().client
        held = async_lock(client, self.stored_key, self.timeout, self.blocking_timeout)
        if await held.acquire(blocking=blocking, token=token):
            self._token = token
            return True
        return False

    async def arelease(self) -> None:
        token = self._held_token()
        await afree(self.redis_provider.connection.async_handle().client, self.stored_key, token)

    async def __aenter__(self) -> RedisLock:
        if not await self.aacquire():
            raise self._not_acquired()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.arelease()

    def __enter__(self) -> RedisLock:
        if not self.acquire():
            raise self._not_acquired()
        return self
