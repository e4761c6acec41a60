"""The policy every namespace shares, whatever the store: arguments and failures.

``ServicePolicy`` validates arguments (naming the namespace and the argument, before anything
is written), turns ``ttl`` into a Django timeout, and wraps each call to the provider in a
``FailurePolicy``: unreachable stores raise ``CacheUnavailable``, or under ``FAIL_SILENTLY``
become misses with a rate-limited warning; refused commands (out of memory, no permission)
always raise ``CacheRefused``.
"""

from __future__ import annotations

import inspect
import logging
import math
import pickle
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from agenthub_cache import conf, metrics
from agenthub_cache.exceptions import CacheRefused, CacheUnavailable, InvalidKey

if TYPE_CHECKING:
    from agenthub_cache.metrics import NamespaceMetrics
    from agenthub_cache.providers.base import Provider

logger = logging.getLogger("agenthub_cache")


class _Forever:
    def __repr__(self) -> str:
        return "FOREVER"

    def __reduce__(self) -> str:
        return "FOREVER"


#: ``ttl=FOREVER``: the entry never expires (``ttl=None`` means the namespace default).
FOREVER: Final = _Forever()


class DjangoTimeout(float):
    """A timeout given through Django's cache API (``NamespaceCache``): stored by the Django
    backend's own rule, which Django's cache tests check (``Provider.django_drops_fraction``),
    where the namespace API would add a second so that an entry lives at least its TTL."""

    __slots__ = ()


#: At most one "cache unavailable" warning per namespace in this many seconds.
WARNING_INTERVAL = 10.0
_last_warning: dict[str, float] = {}
#: Index names found valid: names are a schema, a handful per project, so the check runs once
#: per name (cleared past ``INDEX_NAMES_KEPT``, should a caller build them from data).
_VALID_INDEX_NAMES: set[str] = set()
INDEX_NAMES_KEPT = 1024
#: The default a service passes to the provider's reads, to tell a miss from a stored value.
MISS: Final[Any] = object()


def brief(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut short: a 10 kB argument must not make a 10 kB error message.

    The length given is the value's own (a str's characters, not its quoted ``repr``).
    """
    text = repr(value)
    if len(text) <= limit:
        return text
    size = len(value) if isinstance(value, str | bytes) else len(text)
    return f"{text[: limit - 5]}...{text[-1]} ({size} chars)"


#: What a serializer raises for a value it cannot encode: pickle's own error, ``TypeError``
#: ("cannot pickle '_thread.lock' object", "not JSON serializable"), ``AttributeError`` (a local
#: object), ``UnicodeEncodeError`` (pylibmc, or pymemcache with a serde other than its pickle
#: serde, stores a str as UTF-8; a lone surrogate has none).
#: The same types also come from plain bugs, so each is checked against the values written.
SERIALIZATION_ERRORS = (pickle.PicklingError, TypeError, AttributeError, UnicodeEncodeError)


class FailurePolicy:
    """Turns store errors into the §5 policy; suppresses them only under ``FAIL_SILENTLY``.

    ``values`` are what a write stores: an error is reported as a value that "cannot be
    serialized" only if the provider's serializer fails on one of them too; otherwise (a bug in
    a provider or a backend) it surfaces as itself.

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
        "values",
        "writes",
    )

    def __init__(
        self,
        service: ServicePolicy,
        operation: str,
        values: Iterable[Any] | None = None,
        silenceable: bool = True,
    ) -> None:
        self.service = service
        self.operation = operation
        self.writes = values is not None
        self.values = values
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
        if isinstance(exc, provider.refused_errors + provider.error_replies):
            raise CacheRefused(
                f"Cache namespace {service.namespace!r}: the {service.cache_alias!r} cache "
                f"refused {self.operation}(): {exc}"
            ) from exc
        if isinstance(exc, SERIALIZATION_ERRORS) and self._refused_by_serializer():
            raise ValueError(
                f"Cache namespace {service.namespace!r}: {self.operation}() got a value that "
                f"cannot be serialized: {exc}"
            ) from exc
        return False

    def _refused_by_serializer(self) -> bool:
        for value in self.values or ():
            try:
                self.service.provider.check_serializable(value)
            except Exception:
                return True
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

    def __init__(self, default: Any, namespace: str = "") -> None:
        self.default = default
        self.namespace = namespace
        #: What the calls returned: the values ``get_or_set`` may have tried to store.
        self.values: list[Any] = []

    def __call__(self) -> Any:
        try:
            value = self.default() if callable(self.default) else self.default
        except Exception as exc:
            raise CallerFailed(exc) from exc
        if inspect.isawaitable(value):  # e.g. a lambda around an async function
            if inspect.iscoroutine(value):
                value.close()  # never awaited, and never pickled
            raise CallerFailed(
                TypeError(
                    f"Cache namespace {self.namespace!r}: get_or_set()'s default returned an "
                    "awaitable: pass the async function itself to aget_or_set(), which awaits it."
                )
            )
        self.values.append(value)
        return value


def is_async_callable(default: object) -> bool:
    """``default`` is an async function (or an object whose ``__call__`` is one)."""
    return callable(default) and (
        inspect.iscoroutinefunction(default) or inspect.iscoroutinefunction(type(default).__call__)
    )


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
        if type(key) is str and key and key.isascii():  # the usual key: valid as it is
            return key
        text = self._text(key, argument)
        if text == "":
            raise self._error(argument, "must not be empty.")
        return text if type(text) is str else str(text)  # a str subclass (StrEnum) as plain str

    def _keys(self, keys: Iterable[object], argument: str = "keys") -> list[str]:
        if isinstance(keys, str):
            raise self._error(argument, "must be an iterable of keys, not one str.")
        key_of = self._key  # a non-empty ASCII str is valid as it is: checked inline too
        return [
            key if type(key) is str and key and key.isascii() else key_of(key, argument)
            for key in keys
        ]

    def _index(self, index: object, value: object) -> tuple[str, str]:
        if not conf.is_valid_name(index):
            raise self._error(
                "index name",
                f"{brief(index)} is invalid: use 1-64 of [A-Za-z0-9_.-], starting with a letter or digit.",
            )
        if type(index) is str:
            if len(_VALID_INDEX_NAMES) >= INDEX_NAMES_KEPT:
                _VALID_INDEX_NAMES.clear()
            _VALID_INDEX_NAMES.add(index)
        if type(value) is not str or not value.isascii():  # ASCII str is valid text as it is
            value = self._text(value, f"value of index {brief(index)}")
        return str(index), value

    def _indexes(self, indexes: Mapping[str, str] | None) -> dict[str, str] | None:
        if indexes is None:
            return None
        if not isinstance(indexes, Mapping):
            raise self._error("indexes", "must be a dict of index name to value.")
        checked: dict[str, str] = {}
        known = _VALID_INDEX_NAMES
        for name, value in indexes.items():
            # The usual index: a name checked before, an ASCII str value (valid as it is).
            if type(name) is str and name in known and type(value) is str and value.isascii():
                checked[name] = value
            else:
                name_, checked_value = self._index(name, value)
                checked[name_] = checked_value
        return checked

    def _timeout(self, ttl: object, argument: str = "ttl") -> int | None:
        """``None`` -> the namespace default; ``FOREVER`` -> no expiry; else whole seconds.

        Checked before any I/O: a number of seconds from 0 (expires at once) to the most the
        store can hold. The store keeps the entry at least that long, a fraction rounded up
        (``Provider.stored_seconds``): ``ttl=0.5`` lives 1 s on every store (the database
        cache and memcached would otherwise drop it at once), and ``ttl()`` reports that. A
        ``DjangoTimeout`` (from ``NamespaceCache``) is stored by the Django backend's own rule.
        """
        if ttl is None:
            ttl = self.default_ttl
            return None if ttl is None else self.provider.stored_seconds(ttl)
        if ttl is FOREVER:
            return None
        limit = self.provider.max_ttl()
        if (
            isinstance(ttl, bool)
            or not isinstance(ttl, int | float)
            or not math.isfinite(ttl)
            or ttl < 0
            or ttl > limit
        ):
            raise ValueError(
                f"Cache namespace {self.namespace!r}: {argument} must be a number of seconds "
                f"from 0 to {limit} (the most the {self.cache_alias!r} cache can hold; FOREVER "
                f"never expires) or None (the namespace default), not {brief(ttl)}."
            )
        return self.provider.stored_seconds(ttl, django_rule=isinstance(ttl, DjangoTimeout))

    def _wait(self, wait: object) -> float:
        if (
            isinstance(wait, bool)
            or not isinstance(wait, int | float)
            or not math.isfinite(wait)
            or wait < 0
        ):
            raise ValueError(
                f"Cache namespace {self.namespace!r}: wait must be a number of seconds >= 0, "
                f"not {brief(wait)}."
            )
        return wait

    def _delta(self, delta: object, argument: str = "delta") -> int:
        if isinstance(delta, bool) or not isinstance(delta, int):
            raise ValueError(
                f"Cache namespace {self.namespace!r}: {argument} must be an int, not {brief(delta)}."
            )
        return delta

    def _policy(self, operation: str, values: Iterable[Any] | None = None) -> FailurePolicy:
        """The failure policy of one call; ``values``: what it writes, for error translation."""
        return FailurePolicy(self, operation, values)

    # The hot paths (``get``, ``set`` and their async twins) do what ``with self._policy(...)``
    # does without building a ``FailurePolicy`` per call: at 64 tasks on uvloop that object cost
    # about 3 of the 7 µs a namespace ``aget`` added to a raw one. Only a failure builds one.

    def _read(self, started: int, value: Any, default: Any) -> Any:
        """What ``get`` returns for ``value`` (``MISS`` or what the provider read), recorded as
        a ``get`` started at ``started`` (``perf_counter_ns``)."""
        metrics, hit = self._metrics, value is not MISS
        if metrics is not None:
            metrics.observe("get", time.perf_counter_ns() - started, None, hit, not hit, 0, 0)
        return value if hit else default

    def _wrote(self, operation: str, started: int, stored: bool) -> bool:
        """``stored``, recorded as an ``operation`` started at ``started``."""
        metrics = self._metrics
        if metrics is not None:
            metrics.observe(operation, time.perf_counter_ns() - started, None, 0, 0, stored, 0)
        return stored

    def _failed(
        self, operation: str, started: int, exc: BaseException, values: Iterable[Any] | None = None
    ) -> bool:
        """The failure policy for an ``operation`` started at ``started`` that raised ``exc``
        (``values``: what it wrote): True when it is silenced (return the default), False to
        re-raise it; or raises the error it translates ``exc`` to."""
        call = FailurePolicy(self, operation, values)
        call.started = started
        return call.__exit__(type(exc), exc, exc.__traceback__)

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
