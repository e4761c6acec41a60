"""``GuardedLock``, what ``CacheService.lock()`` returns: the provider's own lock, with its store
errors put through the namespace's failure policy (``policy.FailurePolicy``).
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agenthub_cache.policy import FailurePolicy
    from agenthub_cache.providers.locking import LockBase


class GuardedLock:
    """``service.lock()``: the provider's lock, with store errors through the failure policy.

    Never silenced, even under ``FAIL_SILENTLY``: a caller told it holds a lock it never got
    would lose the mutual exclusion it asked for. Anything else is the provider lock's own.
    """

    def __init__(self, lock: LockBase, policy: FailurePolicy) -> None:
        self._lock = lock
        self._policy = policy

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lock, name)

    def acquire(self, blocking: bool = True) -> bool:
        with self._policy:
            return self._lock.acquire(blocking)
        raise AssertionError("unreachable")

    def release(self) -> None:
        with self._policy:
            self._lock.release()

    def locked(self) -> bool:
        with self._policy:
            return self._lock.locked()
        raise AssertionError("unreachable")

    def __enter__(self) -> GuardedLock:
        with self._policy:
            self._lock.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._policy:
            self._lock.__exit__(exc_type, exc, tb)

    async def __aenter__(self) -> GuardedLock:
        with self._policy:
            await self._lock.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._policy:
            await self._lock.__aexit__(exc_type, exc, tb)
