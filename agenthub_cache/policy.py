"""The policy every namespace shares, whatever the store: arguments and failures.

``ServicePolicy`` validates arguments (naming the namespace and the argument, before anything
is written), turns ``ttl`` into a Django timeout, and wraps each call to the provider in a
``FailurePolicy``: unreachable stores raise ``CacheUnavailable``, or under ``FAIL_SILENTLY``
become misses with a rate-limited warning; refused commands always raise.
"""

from __future__ import annotations

import logging
import math
import pickle
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from agenthub_cache import conf, metrics
from agenthub_cache.exceptions import CacheUnavailable, InvalidKey

if TYPE_CHECKING:
    from agenthub_cache.metrics import NamespaceMetrics
    from agenthub_cache.providers.base import Provider
    from agenthub_cache.providers.locking import CacheLock

logger = logging.getLogger("agenthub_cache")


class _Forever:
    def __repr__(self) -> str:
        return "FOREVER"

    def __reduce__(self) -> str:
        return "FOREVER"


#: ``ttl=FOREVER``: the entry never expires (``ttl=None`` means the namespace default).
FOREVER: Final = _Forever()
#: At most one "cache unavailable" warning per namespace in this many seconds.
WARNING_INTERVAL = 10.0
_last_warning: dict[str, float] = {}
#: The default a service passes to the provider's reads, to tell a miss from a stored value.
MISS: Final[Any] = object()


def brief(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut short: a 10 kB argument must not make a 10 kB error message."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-1]} ({len(text)} chars)"


class FailurePolicy:
    """Turns store errors into the §5 policy; suppresses them only under ``FAIL_SILENTLY``.

    Also records the call in the namespace's metrics (latency, error kind), unless they are
    off; ``read``/``wrote``/``deleted`` add what the service learns from the result.
    """

    __slots__ = (
        "deletes",
        "hits",
        "metrics",
        "misses",
        "operation",
        "service",
        "sets",
        "silenceable",
        "started",
        "writes",
    )

    def __init__(
        self, service: ServicePolicy, operation: str, writes: bool = False, silenceable: bool = True
    ) -> None:
        self.service = service
        self.operation = operation
        self.writes = writes
        self.silenceable = silenceable
        self.metrics = service._metrics
        self.started = self.hits = self.misses = self.sets = self.deletes = 0

    def __enter__(self) -> FailurePolicy:
        if self.metrics is not None:
            self.started = time.perf_counter_ns()
        return self

    # What the service learns from a result; recorded with the call in ``__exit__``.

    def read(self, value: Any, default: Any) -> Any:
        """``value`` from a read given ``MISS`` as its default: counts a hit or a miss."""
        if value is MISS:
            self.misses += 1
            return default
        self.hits += 1
        return value

    def read_many(self, asked: int, found: dict[str, Any]) -> dict[str, Any]:
        self.hits += len(found)
        self.misses += asked - len(found)
        return found

    def wrote(self, entries: int) -> None:
        self.sets += entries

    def deleted(self, entries: int) -> None:
        self.deletes += entries

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if self.metrics is not None:
            error = None
            if exc is not None and not isinstance(exc, CallerFailed):
                error = metrics.error_kind(exc, self.service.provider.is_unavailable(exc))
            self.metrics.observe(
                self.operation,
                time.perf_counter_ns() - self.started,
                error,
                self.hits,
                self.misses,
                self.sets,
                self.deletes,
            )
            self.hits = self.misses = self.sets = self.deletes = 0  # GuardedLock reuses it
        if exc is None:
            return False
        service, provider = self.service, self.service.provider
        if provider.is_unavailable(exc):
            if service.fail_silently and self.silenceable:
                service._warn_unavailable(self.operation, exc)
                return True
            raise CacheUnavailable(
                f"Cache namespace {service.namespace!r}: the {service.cache_alias!r} cache is "
                f"unavailable during {self.operation}(): {exc}"
            ) from exc
        if self.writes and isinstance(exc, provider.refused_value_errors):
            raise ValueError(
                f"Cache namespace {service.namespace!r}: the {service.cache_alias!r} cache "
                f"refused the value given to {self.operation}() (too large?): {exc}"
            ) from exc
        if self.writes and isinstance(
            exc, (pickle.PicklingError, TypeError, AttributeError, UnicodeEncodeError)
        ):  # UnicodeEncodeError: pymemcache stores str as UTF-8, and a lone surrogate has none
            raise ValueError(
                f"Cache namespace {service.namespace!r}: {self.operation}() got a value that "
                f"cannot be serialized: {exc}"
            ) from exc
        return False


class CallerFailed(Exception):
    """Carries an error of the caller's own ``default`` callable past the failure policy."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


class CallerDefault:
    """``get_or_set``'s ``default``: what it raises is the caller's error, never the store's.

    Without this a ``TypeError`` in the caller's function would be reported as a value that
    "cannot be serialized", and its ``ConnectionError`` as the cache being unavailable (and,
    under ``FAIL_SILENTLY``, swallowed and the function run a second time).
    """

    def __init__(self, default: Any) -> None:
        self.default = default

    def __call__(self) -> Any:
        if not callable(self.default):
            return self.default
        try:
            return self.default()
        except Exception as exc:
            raise CallerFailed(exc) from exc


class GuardedLock:
    """``service.lock()``: the provider's lock, with store errors through the failure policy.

    Never silenced, even under ``FAIL_SILENTLY``: a caller told it holds a lock it never got
    would lose the mutual exclusion it asked for. Anything else is the provider lock's own.
    """

    def __init__(self, lock: CacheLock, policy: FailurePolicy) -> None:
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


class ServicePolicy:
    """Base of ``CacheService``: argument checks and the failure policy."""

    namespace: str
    default_ttl: int | None
    fail_silently: bool
    cache_alias: str
    provider: Provider
    #: This namespace's metrics in this process; None when ``METRICS`` is off.
    _metrics: NamespaceMetrics | None = None

    def _error(self, argument: str, problem: str) -> InvalidKey:
        return InvalidKey(f"Cache namespace {self.namespace!r}: {argument} {problem}")

    def _text(self, value: object, argument: str) -> str:
        if not isinstance(value, str):
            raise self._error(argument, f"must be a str, not {type(value).__name__}.")
        if not value.isascii():  # ASCII is valid text; only the rest may hold lone surrogates
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise self._error(argument, f"{brief(value)} is not valid Unicode text.") from None
        return value

    def _key(self, key: object, argument: str = "key") -> str:
        text = self._text(key, argument)
        if text == "":
            raise self._error(argument, "must not be empty.")
        return text if type(text) is str else str(text)  # a str subclass (StrEnum) as plain str

    def _keys(self, keys: Iterable[object], argument: str = "keys") -> list[str]:
        if isinstance(keys, str):
            raise self._error(argument, "must be an iterable of keys, not one str.")
        return [self._key(key, argument) for key in keys]

    def _index(self, index: object, value: object) -> tuple[str, str]:
        if not conf.is_valid_name(index):
            raise self._error(
                "index name",
                f"{brief(index)} is invalid: use 1-64 of [A-Za-z0-9_.-], starting with a letter or digit.",
            )
        return str(index), self._text(value, f"value of index {brief(index)}")

    def _indexes(self, indexes: Mapping[str, str] | None) -> dict[str, str] | None:
        if indexes is None:
            return None
        if not isinstance(indexes, Mapping):
            raise self._error("indexes", "must be a dict of index name to value.")
        return dict(self._index(name, value) for name, value in indexes.items())

    def _timeout(self, ttl: object, argument: str = "ttl") -> float | None:
        """``None`` -> the namespace default; ``FOREVER`` -> no expiry; else seconds (0 expires)."""
        if ttl is None:
            return self.default_ttl
        if ttl is FOREVER:
            return None
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not math.isfinite(ttl):
            raise ValueError(
                f"Cache namespace {self.namespace!r}: {argument} must be a number of seconds, "
                f"None (the namespace default) or FOREVER, not {brief(ttl)}."
            )
        if ttl < 0:
            raise ValueError(
                f"Cache namespace {self.namespace!r}: {argument} must not be negative, got {brief(ttl)}."
            )
        return ttl

    def _delta(self, delta: object) -> int:
        if isinstance(delta, bool) or not isinstance(delta, int):
            raise ValueError(
                f"Cache namespace {self.namespace!r}: delta must be an int, not {brief(delta)}."
            )
        return delta

    def _policy(self, operation: str, writes: bool = False) -> FailurePolicy:
        return FailurePolicy(self, operation, writes)

    def _admin(self, operation: str) -> FailurePolicy:
        """Whole-namespace operations always raise: an operator must see a failed flush."""
        return FailurePolicy(self, operation, silenceable=False)

    def _warn_unavailable(self, operation: str, exc: BaseException) -> None:
        now = time.monotonic()
        if now - _last_warning.get(self.namespace, -math.inf) >= WARNING_INTERVAL:
            _last_warning[self.namespace] = now
            logger.warning(
                "Cache namespace %r: %r cache unavailable during %s(); failing silently: %s",
                self.namespace,
                self.cache_alias,
                operation,
                exc,
            )
