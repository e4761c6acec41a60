"""``service.lock()`` on Redis: redis-py's own ``Lock`` (SET NX PX, token-checked release).

The same lock object works with ``with`` (sync client) and ``async with`` (the event loop's
``redis.asyncio`` client); it lives under the namespace's prefix, so a flush drops it too.
"""

from __future__ import annotations

import contextlib
import secrets
from types import TracebackType
from typing import TYPE_CHECKING

import redis.asyncio.lock
import redis.lock
from redis.exceptions import LockNotOwnedError

from agenthub_cache.exceptions import LockError
from agenthub_cache.providers.locking import POLL_SECONDS, LockBase

if TYPE_CHECKING:
    from agenthub_cache.providers.redis.provider import RedisProvider


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

    def _options(self) -> dict[str, float | bool | None]:
        return {
            "timeout": self.timeout,
            "sleep": POLL_SECONDS,
            "blocking_timeout": self.blocking_timeout,
            "thread_local": False,
        }

    def _sync_lock(self) -> redis.lock.Lock:
        client = self.redis_provider.connection.client
        return redis.lock.Lock(client, self.stored_key, **self._options())  # type: ignore[arg-type]

    def _async_lock(self) -> redis.asyncio.lock.Lock:
        client = self.redis_provider.connection.async_handle().client
        return redis.asyncio.lock.Lock(client, self.stored_key, **self._options())  # type: ignore[arg-type]

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
        if self._sync_lock().acquire(blocking=blocking, token=token):
            self._token = token
            return True
        return False

    def release(self) -> None:
        token = self._held_token()
        # Not owned any more: it expired (``timeout``) and may be someone else's now.
        with contextlib.suppress(LockNotOwnedError):
            self._sync_lock().do_release(token)

    def locked(self) -> bool:
        return bool(self.redis_provider.connection.client.exists(self.stored_key))

    async def aacquire(self, blocking: bool = True) -> bool:
        token = secrets.token_hex(8)
        if await self._async_lock().acquire(blocking=blocking, token=token):
            self._token = token
            return True
        return False

    async def arelease(self) -> None:
        token = self._held_token()
        with contextlib.suppress(LockNotOwnedError):
            await self._async_lock().do_release(token.encode())

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
