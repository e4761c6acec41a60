"""A lock and stampede-protected ``get_or_set`` on any cache with an atomic ``add``.

``add`` is atomic on memcached, LocMem, the database cache and Redis, so the lock is
distributed wherever the store is shared; on the file cache it is best effort.
"""

from __future__ import annotations

import math
import secrets
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async

from agenthub_cache import keys
from agenthub_cache.exceptions import LockError

if TYPE_CHECKING:
    from agenthub_cache.providers.base import Provider

_MISSING: Any = object()
POLL_SECONDS = 0.02


class CacheLock:
    """``with service.lock("name"):`` or ``async with``; released only by its owner."""

    def __init__(
        self,
        provider: Provider,
        name: str,
        timeout: float | None,
        blocking_timeout: float | None,
    ) -> None:
        self.provider = provider
        self.name = name
        self.timeout = timeout
        self.blocking_timeout = blocking_timeout
        self._key = provider.stored_key(keys.LOCK, name, scope=None)
        self._token: str | None = None

    def acquire(self, blocking: bool = True) -> bool:
        token = secrets.token_hex(8)
        deadline = (
            None if self.blocking_timeout is None else time.monotonic() + self.blocking_timeout
        )
        while True:
            if self.provider.atomic_add(self._key, token, self._stored_timeout()):
                self._token = token
                return True
            if not blocking or (deadline is not None and time.monotonic() >= deadline):
                return False
            time.sleep(POLL_SECONDS)

    def _stored_timeout(self) -> int | None:
        """Whole seconds, rounded up: memcached would drop a 0.5 s lock at once (anyone could
        then take it), as it would any entry (the service's TTL rule)."""
        return None if self.timeout is None else math.ceil(self.timeout)

    def release(self) -> None:
        if self._token is None:
            raise LockError(
                f"Cache namespace {self.provider.namespace!r}: lock {self.name!r} is not held."
            )
        if self.provider.backend.get(self._key) == self._token:
            self.provider.backend.delete(self._key)
        self._token = None

    def locked(self) -> bool:
        return bool(self.provider.backend.has_key(self._key))

    def __enter__(self) -> CacheLock:
        if not self.acquire():
            raise LockError(
                f"Cache namespace {self.provider.namespace!r}: could not acquire lock "
                f"{self.name!r} within {self.blocking_timeout} s."
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    async def __aenter__(self) -> CacheLock:
        return await sync_to_async(self.__enter__)()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await sync_to_async(self.release)()


def resolve_default(default: Any) -> Any:
    return default() if callable(default) else default


def stampede_get_or_set(
    provider: Provider, key: str, default: Any, timeout: float | None, wait: float
) -> Any:
    """One caller computes a missing value; the others wait up to ``wait`` s for it."""
    value = provider.get(key, _MISSING)
    if value is not _MISSING:
        return value
    guard = provider.lock(f"get_or_set:{key}", timeout=max(wait, 1.0), blocking_timeout=0)
    if guard.acquire(blocking=False):
        try:
            value = provider.get(key, _MISSING)
            if value is _MISSING:
                value = resolve_default(default)
                provider.set(key, value, timeout)
            return value
        finally:
            guard.release()
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        value = provider.get(key, _MISSING)
        if value is not _MISSING:
            return value
    value = resolve_default(default)
    provider.add(key, value, timeout)
    return value
