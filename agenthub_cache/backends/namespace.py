"""``NamespaceCache``: a namespace behind Django's own cache API.

```python
CACHES = {
    "default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://..."},
    "sessions": {"BACKEND": "agenthub_cache.backends.NamespaceCache", "LOCATION": "session"},
}
SESSION_CACHE_ALIAS = "sessions"
```

Everything Django (sessions, ``cache_page``, ``{% cache %}``) or a third-party app stores
through ``caches["sessions"]`` then lives in the namespace ``session``: it gets the namespace's
TTL as its default timeout, follows its ``FAIL_SILENTLY`` policy, and ``cache_namespaces flush
session`` (or ``caches["sessions"].clear()``) drops it and nothing else.

Django's key function (``KEY_PREFIX``, ``VERSION``, ``KEY_FUNCTION``) and its key warnings
apply first; the resulting key is the key inside the namespace, or, where it is too long for the
store behind the namespace (LocMem and database stores hold 250 bytes with the prefixes), its
SHA-256 under ``HASHED_KEY_MARK``: any key Django's own backends take works here too.
``TIMEOUT`` and ``OPTIONS`` are not used (the namespace's TTL is the default; the store behind
the namespace culls), and the system checks say so.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from django.core.exceptions import ImproperlyConfigured

from agenthub_cache.exceptions import NotSupported
from agenthub_cache.factory import namespaces
from agenthub_cache.policy import FOREVER, DjangoTimeout
from agenthub_cache.service import CacheService

_MISSING: Any = object()


#: A key too long for the store is kept in the namespace as this mark and the SHA-256 of
#: Django's key. A key that itself starts with the mark is hashed too, so a hashed key can
#: never be the same as a key kept as it is.
HASHED_KEY_MARK = "~sha256:"

#: Values ``incr`` adds to by reading and writing back (Django's LocMem and DB backends add to
#: any number); an ``int`` is incremented atomically by the namespace.
_OTHER_NUMBERS = (float, Decimal, Fraction)


def _counter_is_int(key: Any, value: Any) -> bool:
    """Whether ``incr`` can count ``value`` atomically (an int) or must add to it (a float)."""
    if value is _MISSING:
        raise ValueError(f"Key '{key}' not found")
    if isinstance(value, bool) or not isinstance(value, (int, *_OTHER_NUMBERS)):
        raise TypeError(
            f"Cannot increment the value of key '{key}': it is {type(value).__name__}, "
            "not a number."
        )
    return isinstance(value, int)


class NamespaceCache(BaseCache):
    """A Django cache backend whose ``LOCATION`` is the name of a configured namespace."""

    def __init__(self, location: str, params: dict[str, Any]) -> None:
        super().__init__(params)
        self.namespace = location
        #: The last service this (per-thread) backend used, for ``close()``: closing must not
        #: build one, since Django closes caches also when the settings behind them went.
        self._used: CacheService | None = None

    def __repr__(self) -> str:
        return f"<NamespaceCache {self.namespace!r}>"

    @property
    def service(self) -> CacheService:
        """This thread's ``CacheService`` of the namespace (``namespaces[LOCATION]``)."""
        if not self.namespace:
            raise ImproperlyConfigured(
                "A NamespaceCache needs LOCATION: the name of a namespace in "
                "settings.AGENTHUB_CACHE['NAMESPACES'] (run 'manage.py check')."
            )
        service = namespaces[self.namespace]
        if service is self._used:
            return service
        if isinstance(service.provider.backend, NamespaceCache):  # once per service built
            raise ImproperlyConfigured(
                f"Cache namespace {self.namespace!r} is stored on the alias "
                f"{service.cache_alias!r}, which is itself a NamespaceCache: a loop. Point the "
                "namespace's CACHE at a real cache (run 'manage.py check')."
            )
        self._used = service
        return service

    # -- keys and timeouts ------------------------------------------------------------------

    @property
    def default_timeout(self) -> float | None:
        """The namespace's TTL: what ``timeout`` left out means here."""
        return self.service.default_ttl

    @default_timeout.setter
    def default_timeout(self, value: float | None) -> None:
        """Ignored: ``BaseCache.__init__`` sets it from ``TIMEOUT``, which is not used (E012)."""

    def _ttl(self, timeout: Any) -> Any:
        """Django's timeout -> the service's ttl: the default is the namespace's TTL. A number
        of seconds is a ``DjangoTimeout``: stored by the Django backend's own rule (where
        DatabaseCache drops a fraction of a second, the namespace API would add one), and one
        longer than the store can hold (``Provider.max_ttl()``: 10 years; memcached: until
        2038) is that longest one, where Django's backends take any."""
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.service.default_ttl
        if timeout is None:
            return FOREVER
        if isinstance(timeout, int | float) and not isinstance(timeout, bool):
            if timeout <= 0:
                return 0  # Django's rule: zero or negative expires at once
            return DjangoTimeout(min(timeout, self.service.provider.max_ttl()))
        return timeout  # not a number: the service says so

    def namespace_key(self, key: Any, version: int | None = None) -> str:
        """The key inside the namespace for Django's ``key``: ``make_key(key, version)``, or
        ``HASHED_KEY_MARK`` and its SHA-256 where that is too long for the store."""
        made = self.make_and_validate_key(key, version=version)
        if not isinstance(made, str):
            return made  # a KEY_FUNCTION's non-str: the service refuses it
        if made.startswith(HASHED_KEY_MARK) or not self.service.provider.entry_key_fits(made):
            try:
                digest = hashlib.sha256(made.encode()).hexdigest()
            except UnicodeEncodeError:
                return made  # not valid text: the service says so
            return HASHED_KEY_MARK + digest
        return made

    def _made(self, keys: Iterable[Any], version: int | None) -> dict[str, Any]:
        """``{namespace key: caller's key}`` in the caller's order."""
        return {self.namespace_key(key, version): key for key in keys}

    # -- the BaseCache API ------------------------------------------------------------------

    def add(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        made = self.namespace_key(key, version)
        return self.service.add(made, value, self._ttl(timeout))

    async def aadd(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        made = self.namespace_key(key, version)
        return await self.service.aadd(made, value, self._ttl(timeout))

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        return self.service.get(self.namespace_key(key, version), default)

    async def aget(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        return await self.service.aget(self.namespace_key(key, version), default)

    def set(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        self.service.set(self.namespace_key(key, version), value, self._ttl(timeout))

    async def aset(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        made = self.namespace_key(key, version)
        await self.service.aset(made, value, self._ttl(timeout))

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        return self.service.touch(self.namespace_key(key, version), self._ttl(timeout))

    async def atouch(
        self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        made = self.namespace_key(key, version)
        return await self.service.atouch(made, self._ttl(timeout))

    def delete(self, key: Any, version: int | None = None) -> bool:
        return self.service.delete(self.namespace_key(key, version))

    async def adelete(self, key: Any, version: int | None = None) -> bool:
        return await self.service.adelete(self.namespace_key(key, version))

    def get_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        made = self._made(keys, version)
        found = self.service.get_many(list(made)) if made else {}
        return {made[key]: value for key, value in found.items()}

    async def aget_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        made = self._made(keys, version)
        found = await self.service.aget_many(list(made)) if made else {}
        return {made[key]: value for key, value in found.items()}

    def set_many(
        self, data: Mapping[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> list[Any]:
        made = self._made(data, version)
        if not made:
            return []
        failed = self.service.set_many(
            {key: data[given] for key, given in made.items()}, self._ttl(timeout)
        )
        return [made[key] for key in failed]

    async def aset_many(
        self, data: Mapping[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> list[Any]:
        made = self._made(data, version)
        if not made:
            return []
        failed = await self.service.aset_many(
            {key: data[given] for key, given in made.items()}, self._ttl(timeout)
        )
        return [made[key] for key in failed]

    def delete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        made = self._made(keys, version)
        if made:
            self.service.delete_many(list(made))

    async def adelete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        made = self._made(keys, version)
        if made:
            await self.service.adelete_many(list(made))

    def has_key(self, key: Any, version: int | None = None) -> bool:
        return self.service.has_key(self.namespace_key(key, version))

    async def ahas_key(self, key: Any, version: int | None = None) -> bool:
        return await self.service.ahas_key(self.namespace_key(key, version))

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> Any:
        """Atomic where the store is. A missing key is a ``ValueError`` and a value that is not
        a number a ``TypeError``, on every store (Django's rules for its own backends).

        A key that expires between the check and the increment is started again at ``delta``
        with the namespace's TTL (Django's Redis backend has the same window). A float (or
        ``Decimal``, ``Fraction``) is added to as Django's LocMem and DB backends do, by a read
        and a write that keeps the entry's expiry: not atomic (the namespace's own ``incr``
        counts ints only).
        """
        made = self.namespace_key(key, version)
        service = self.service
        value = service.get(made, _MISSING)
        if _counter_is_int(key, value):
            return service.incr(made, delta)
        return self._add_to(made, key, value + delta)

    async def aincr(self, key: Any, delta: int = 1, version: int | None = None) -> Any:
        made = self.namespace_key(key, version)
        service = self.service
        value = await service.aget(made, _MISSING)
        if _counter_is_int(key, value):
            return await service.aincr(made, delta)
        return await self._aadd_to(made, key, value + delta)

    def _add_to(self, made: str, key: Any, value: Any) -> Any:
        service = self.service
        try:
            remaining = service.ttl(made)
        except NotSupported:  # the store cannot tell (memcached): Django's BaseCache.incr rule
            remaining = -1
        if remaining == 0:
            raise ValueError(f"Key '{key}' not found")  # expired since it was read
        service.set(made, value, self._remaining(remaining))
        return value

    async def _aadd_to(self, made: str, key: Any, value: Any) -> Any:
        service = self.service
        try:
            remaining = await service.attl(made)
        except NotSupported:
            remaining = -1
        if remaining == 0:
            raise ValueError(f"Key '{key}' not found")
        await service.aset(made, value, self._remaining(remaining))
        return value

    def _remaining(self, remaining: int | None) -> Any:
        """``ttl()``'s answer as the ttl to write back: ``-1`` (unknown) is the default. Clamped
        like a timeout: ``ttl()`` rounds up, so an entry stored for the longest TTL the store
        holds may report a second more."""
        if remaining is None:
            return FOREVER
        return None if remaining < 0 else self._ttl(remaining)

    def decr(self, key: Any, delta: int = 1, version: int | None = None) -> Any:
        return self.incr(key, -delta, version=version)

    async def adecr(self, key: Any, delta: int = 1, version: int | None = None) -> Any:
        return await self.aincr(key, -delta, version=version)

    def get_or_set(
        self, key: Any, default: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> Any:
        """Concurrent misses of one key compute ``default`` once (the service's stampede guard)."""
        made = self.namespace_key(key, version)
        return self.service.get_or_set(made, default, self._ttl(timeout))

    async def aget_or_set(
        self, key: Any, default: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> Any:
        made = self.namespace_key(key, version)
        return await self.service.aget_or_set(made, default, self._ttl(timeout))

    def clear(self) -> None:
        """Drop this namespace (and nothing else of the store behind it)."""
        self.service.clear()

    async def aclear(self) -> None:
        await self.service.aclear()

    def close(self, **kwargs: Any) -> None:
        """Django closes the store's own alias itself; this closes the service's extras."""
        if self._used is not None:
            self._used.close()

    async def aclose(self, **kwargs: Any) -> None:
        if self._used is not None:
            await self._used.aclose()
