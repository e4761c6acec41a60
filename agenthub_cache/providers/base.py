"""The provider contract: what every provider implements, and what it declares about itself.

A provider wraps one Django cache backend for one namespace and holds the mechanics: how keys
are stored, how indexes are kept, how the namespace is listed and flushed. Timeouts reach it
already resolved, in Django's convention (``None`` = never expire, ``0`` = expire at once).

``Provider`` is abstract: it holds only what every provider shares (its alias and namespace,
the backend bound once per thread, the errors that mean "unavailable") and declares every
operation. The machinery stores without native sets need (namespace generations, index
records, process locks, the thread hop for async) are opt-in mixins, put together in
``generic.GenericProvider``; the Redis provider implements the contract natively.
"""

from __future__ import annotations

import abc
import enum
import math
import pickle
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.signals import setting_changed

from agenthub_cache.registry import dotted_path
from agenthub_cache.validation import MAX_TTL

if TYPE_CHECKING:
    from agenthub_cache.providers.locking import LockBase
    from agenthub_cache.providers.scanning import ScanBudget


class Flush(enum.StrEnum):
    """How ``clear()`` drops a namespace."""

    PREFIX = "prefix"  # list the namespace's keys by prefix and delete them
    SCAN = "scan"  # incremental SCAN + UNLINK on the server
    SLOTS = "slots"  # per owning cluster primary: each slot's keys (CLUSTER GETKEYSINSLOT) deleted
    GENERATION = "generation"  # a new namespace generation: O(1), old entries age out
    NONE = "none"  # nothing is stored


class IndexMode(enum.StrEnum):
    """Who sees an index write as one step."""

    PROCESS = "process"  # the threads of one process
    CROSS_PROCESS = "cross-process"  # every process (serialized by the store)
    ATOMIC = "atomic"  # every client, in one server-side step


class StoreScope(enum.StrEnum):
    """Where the store's data lives, as far as a second process is concerned."""

    SHARED = "shared"  # one store for every process that names the alias
    PROCESS = "process"  # each process has its own (LocMem): a shell cannot reach a server's
    NOTHING = "nothing"  # nothing is kept (DummyCache)


class NotAnInteger(Exception):
    """``incr`` found a value that is not an int (reported as the ``ValueError`` Redis gives)."""


@dataclass(frozen=True)
class Capabilities:
    """What a provider does natively; the management command and README table show these."""

    list_keys: bool = False  # keys()/iter_keys()/count() without NotSupported
    flush: Flush = Flush.GENERATION
    indexes: IndexMode = IndexMode.PROCESS
    ttl: bool = False  # ttl() reads the store's expiry
    distributed_lock: bool = False
    native_async: bool = False

    def __post_init__(self) -> None:  # accept the plain strings of earlier releases
        object.__setattr__(self, "flush", Flush(self.flush))
        object.__setattr__(self, "indexes", IndexMode(self.indexes))

    def as_dict(self) -> dict[str, Any]:
        return {
            f.name: v.value if isinstance(v := getattr(self, f.name), enum.Enum) else v
            for f in fields(self)
        }


#: Bumped when ``CACHES`` changes (``override_settings``): bound backends are bound again.
_binding_epoch = 0


def _rebind_backends(*, setting: str, **kwargs: Any) -> None:
    global _binding_epoch
    if setting == "CACHES":
        _binding_epoch += 1


setting_changed.connect(_rebind_backends, dispatch_uid="agenthub_cache.providers.rebind")


class Provider(abc.ABC):
    """The contract: every §3 operation, sync and async, for one namespace of one alias."""

    capabilities: ClassVar[Capabilities] = Capabilities()
    #: Where the data lives (system check W001/W002, the command's LocMem note).
    store_scope: ClassVar[StoreScope] = StoreScope.SHARED
    #: The store can sum every process's metrics of a namespace (``METRICS: "redis"``: a hash
    #: that ``metrics_redis`` increments through the provider's redis-py client; check E013).
    sums_metrics: ClassVar[bool] = False
    #: What to check when the store is unavailable, beyond "is it up" (the command's hint).
    unavailable_hint: ClassVar[str] = ""
    #: Longest key (after the backend's own prefix and version) the store accepts.
    max_key_length: ClassVar[int | None] = None
    #: Replace over-long keys by a digest instead of refusing them (stores that cannot list).
    hash_long_keys: ClassVar[bool] = False
    #: The store's counters cannot go below zero (memcached's own rule).
    counters_floor_at_zero: ClassVar[bool] = False
    #: The store expires entries at whole seconds (memcached's clock ticks once a second;
    #: Django's DatabaseCache drops the expiry's fraction), so an entry stored for N seconds may
    #: go up to a second early: it is stored for one second more (it lives N to N+1 s), and
    #: ``ttl()`` reports the N.
    whole_second_expiry: ClassVar[bool] = False
    #: Dropping the fraction is the Django backend's own rule (DatabaseCache), and Django's cache
    #: tests hold it to that (an entry set for 1 s is gone for ``add()`` 2 s later): a timeout
    #: given through Django's cache API (``NamespaceCache``) gets no extra second.
    django_drops_fraction: ClassVar[bool] = False
    #: Errors that mean "the store is unreachable or timed out" (``FAIL_SILENTLY`` covers these).
    unavailable_errors: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)
    #: Among those, the ones that are a refusal (bad credentials): ``CacheRefused``, never silenced.
    refused_errors: tuple[type[BaseException], ...] = ()
    #: The store's error replies (it answered, and said no: out of memory, no permission):
    #: ``CacheRefused``, never silenced. Checked after ``unavailable_errors``, so a reply that
    #: means "try later" (a cluster that is down) can still be listed there.
    error_replies: tuple[type[BaseException], ...] = ()
    #: Errors with which the store refuses a value it cannot hold (too large): a ``ValueError``.
    refused_value_errors: tuple[type[BaseException], ...] = ()
    #: Errors with which the store's own ``incr`` refuses a value that is not a number.
    not_an_integer_errors: tuple[type[BaseException], ...] = ()

    def max_ttl(self) -> int:
        """The longest TTL, in seconds, this store can hold now (the service refuses more)."""
        return MAX_TTL

    def entry_key_fits(self, key: str) -> bool:
        """Whether the store takes ``key`` as an entry key: ``False`` only where a key too long
        for the store is refused (``InvalidKey``) rather than hashed."""
        return True

    def stored_seconds(self, ttl: float, *, django_rule: bool = False) -> int:
        """The whole seconds to store for ``ttl``, so that the entry lives at least that long.

        Rounded up, and one second more where the store expires entries at whole seconds,
        unless ``django_rule`` (a timeout given through Django's cache API) asks for the Django
        backend's own rule and that rule is to drop the fraction.
        """
        if ttl <= 0:
            return 0
        extra = self.whole_second_expiry and not (django_rule and self.django_drops_fraction)
        return math.ceil(ttl) + (1 if extra else 0)

    def __init__(
        self, backend: BaseCache, alias: str, namespace: str, *, shared: bool = True
    ) -> None:
        self._own_backend = None if shared else backend
        self._backend_class = type(backend)
        self._bound = threading.local()
        self.alias = alias
        self.namespace = namespace

    @property
    def backend(self) -> BaseCache:
        """This thread's backend object, bound on first use in each thread (Django's cache
        clients are not shared across threads), and again after ``CACHES`` changes."""
        if self._own_backend is not None:
            return self._own_backend
        bound = self._bound
        if getattr(bound, "epoch", None) != _binding_epoch:
            vars(bound).clear()  # with what was derived from the old backend
            bound.backend, bound.epoch = caches[self.alias], _binding_epoch
        backend: BaseCache = bound.backend
        return backend

    def is_unavailable(self, error: BaseException) -> bool:
        """``error`` means the store is unreachable or timed out, and is not a refusal."""
        return isinstance(error, self.unavailable_errors) and not isinstance(
            error, self.refused_errors
        )

    def check_serializable(self, value: Any) -> None:
        """Raise what the store's serializer raises for ``value`` (pickle, as Django's own
        backends use); the service asks this to tell a bad value from a provider's bug."""
        pickle.dumps(value, pickle.HIGHEST_PROTOCOL)

    def describe(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "backend": dotted_path(self._backend_class),
            "provider": dotted_path(type(self)),
        }

    # -- single entries -----------------------------------------------------------------------

    @abc.abstractmethod
    def make_key(self, key: str) -> str:
        """The key to read this entry through ``caches[alias]`` (before its KEY_PREFIX)."""

    @abc.abstractmethod
    def get(self, key: str, default: Any = None) -> Any: ...

    @abc.abstractmethod
    def get_many(self, keys_: Iterable[str]) -> dict[str, Any]: ...

    @abc.abstractmethod
    def set(
        self, key: str, value: Any, timeout: float | None, indexes: Mapping[str, str] | None = None
    ) -> bool: ...

    @abc.abstractmethod
    def add(
        self, key: str, value: Any, timeout: float | None, indexes: Mapping[str, str] | None = None
    ) -> bool: ...

    @abc.abstractmethod
    def set_many(self, mapping: Mapping[str, Any], timeout: float | None) -> list[str]: ...

    @abc.abstractmethod
    def delete(self, key: str) -> bool: ...

    @abc.abstractmethod
    def delete_many(self, keys_: Iterable[str]) -> int: ...

    @abc.abstractmethod
    def has_key(self, key: str) -> bool: ...

    @abc.abstractmethod
    def pop(self, key: str, default: Any = None) -> Any:
        """Get and delete; of racing callers, exactly one gets the value."""

    @abc.abstractmethod
    def incr(self, key: str, delta: int, timeout: float | None) -> int:
        """Start a missing key at 0 with ``timeout``, then add ``delta`` keeping its expiry."""

    @abc.abstractmethod
    def ttl(self, key: str) -> float | None:
        """Seconds left, ``None`` for no expiry, ``0`` if missing; or ``NotSupported``."""

    @abc.abstractmethod
    def touch(self, key: str, timeout: float | None) -> bool: ...

    @abc.abstractmethod
    def get_or_set(self, key: str, default: Any, timeout: float | None, wait: float) -> Any:
        """``default`` is a callable; concurrent misses call it once, the others wait."""

    @abc.abstractmethod
    def lock(self, name: str, timeout: float | None, blocking_timeout: float | None) -> LockBase:
        """A lock for ``with`` and ``async with``, under the namespace's prefix."""

    # -- secondary indexes ----------------------------------------------------------------------

    @abc.abstractmethod
    def find(self, index: str, value: str) -> list[str]: ...

    @abc.abstractmethod
    def get_by_index(self, index: str, value: str) -> dict[str, Any]: ...

    @abc.abstractmethod
    def delete_by_index(self, index: str, value: str) -> int: ...

    @abc.abstractmethod
    def prune(self) -> int:
        """Drop index members that are expired, gone or re-filed; return how many."""

    @abc.abstractmethod
    def indexes_of(self, key: str) -> dict[str, str]:
        """``{index: value}`` that ``key`` is filed under (empty if none, or if missing)."""

    # -- the namespace as a whole --------------------------------------------------------------

    @abc.abstractmethod
    def iter_keys(self, pattern: str = "*") -> Iterator[str]:
        """The namespace's keys matching the glob ``pattern``; or ``NotSupported``."""

    def scan_keys(self, pattern: str, budget: ScanBudget) -> Iterator[str]:
        """``iter_keys`` that stops when ``budget`` runs out (stores that walk their whole
        keyspace to list: Redis); here, where a listing reads only the namespace, ``iter_keys``."""
        return self.iter_keys(pattern)

    @abc.abstractmethod
    def count(self) -> int: ...

    @abc.abstractmethod
    def clear(self, progress: Callable[[int], None] | None = None) -> int | None:
        """Drop the namespace; the number of entries dropped, or ``None`` where unknowable.

        Providers that delete in batches call ``progress(entries_deleted_so_far)`` after each.
        """

    @abc.abstractmethod
    def stats(self) -> dict[str, Any]:
        """``entries``, ``indexes``, ``index_names``, ``memory_bytes`` (``None`` where the
        store cannot tell)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release what the provider holds beyond the backend."""

    # -- async twins ---------------------------------------------------------------------------

    @abc.abstractmethod
    async def aget(self, key: str, default: Any = None) -> Any: ...

    @abc.abstractmethod
    async def aget_many(self, keys_: Iterable[str]) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def aset(
        self, key: str, value: Any, timeout: float | None, indexes: Mapping[str, str] | None = None
    ) -> bool: ...

    @abc.abstractmethod
    async def aadd(
        self, key: str, value: Any, timeout: float | None, indexes: Mapping[str, str] | None = None
    ) -> bool: ...

    @abc.abstractmethod
    async def aset_many(self, mapping: Mapping[str, Any], timeout: float | None) -> list[str]: ...

    @abc.abstractmethod
    async def adelete(self, key: str) -> bool: ...

    @abc.abstractmethod
    async def adelete_many(self, keys_: Iterable[str]) -> int: ...

    @abc.abstractmethod
    async def ahas_key(self, key: str) -> bool: ...

    @abc.abstractmethod
    async def apop(self, key: str, default: Any = None) -> Any: ...

    @abc.abstractmethod
    async def aincr(self, key: str, delta: int, timeout: float | None) -> int: ...

    @abc.abstractmethod
    async def attl(self, key: str) -> float | None: ...

    @abc.abstractmethod
    async def atouch(self, key: str, timeout: float | None) -> bool: ...

    @abc.abstractmethod
    async def aget_or_set(
        self, key: str, default: Any, timeout: float | None, wait: float
    ) -> Any: ...

    @abc.abstractmethod
    async def afind(self, index: str, value: str) -> list[str]: ...

    @abc.abstractmethod
    async def aget_by_index(self, index: str, value: str) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def adelete_by_index(self, index: str, value: str) -> int: ...

    @abc.abstractmethod
    async def aprune(self) -> int: ...

    @abc.abstractmethod
    async def akeys(self, pattern: str = "*") -> list[str]: ...

    @abc.abstractmethod
    async def acount(self) -> int: ...

    @abc.abstractmethod
    async def aclear(self, progress: Callable[[int], None] | None = None) -> int | None: ...

    @abc.abstractmethod
    async def astats(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def aclose(self) -> None: ...
