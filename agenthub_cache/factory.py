"""Build providers from settings (``CacheFactory``) and services per thread (``namespaces``)."""

from __future__ import annotations

import enum
import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING

from asgiref.local import Local
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import InvalidCacheBackendError
from django.core.cache.backends.locmem import LocMemCache

from agenthub_cache import conf
from agenthub_cache.registry import provider_class_for

if TYPE_CHECKING:
    from agenthub_cache.providers.base import Provider
    from agenthub_cache.service import CacheService


class CacheType(enum.StrEnum):
    """Where a service keeps its data, for code that does not name a ``CACHES`` alias."""

    #: The ``CACHES`` alias from settings (``AGENTHUB_CACHE["CACHE"]`` unless one is named).
    DJANGO = "django"
    #: A private in-process store of this service alone; needs no settings (tests, scripts).
    IN_MEMORY = "in_memory"


_private_stores = itertools.count()


def _private_backend(namespace: str) -> LocMemCache:
    name = f"agenthub-cache-private-{namespace}-{next(_private_stores)}"
    return LocMemCache(name, {"TIMEOUT": None, "OPTIONS": {"MAX_ENTRIES": 1_000_000}})


class CacheFactory:
    """The seed's factory: a provider for a namespace, chosen by the backend behind it."""

    @staticmethod
    def create_cache(
        cache_type: CacheType | str | None = None,
        namespace: str = "default",
        default_ttl: int | None = conf.DEFAULT_TTL,
        cache: str | None = None,
    ) -> Provider:
        """Return the provider for ``namespace`` on ``cache`` (an alias) or ``cache_type``.

        ``default_ttl`` is accepted for the seed's signature; TTL policy lives in the service.
        """
        if cache_type is not None and CacheType(cache_type) is CacheType.IN_MEMORY:
            private = _private_backend(namespace)
            provider = provider_class_for(type(private))
            return provider(private, f"<in-memory {namespace}>", namespace, shared=False)
        alias = cache or conf.get_settings().cache
        try:
            backend = caches[alias]
        except InvalidCacheBackendError as exc:
            known = ", ".join(sorted(settings.CACHES)) or "none"
            raise InvalidCacheBackendError(
                f"Cache namespace {namespace!r}: cache={alias!r} is not an alias in "
                f"settings.CACHES ({known})."
            ) from exc
        return provider_class_for(type(backend))(backend, alias, namespace)


class NamespaceHandler:
    """``namespaces["signup"]``: each configured service built once per thread, like ``caches``."""

    def __init__(self) -> None:
        self._services = Local()

    def __getitem__(self, name: str) -> CacheService:
        from agenthub_cache.service import CacheService

        built: dict[str, CacheService] = getattr(self._services, "built", None) or {}
        service = built.get(name)
        if service is None:
            options = conf.require_namespace(name)
            service = CacheService.from_settings(options)
            built[name] = service
            self._services.built = built
        return service

    def __contains__(self, name: object) -> bool:
        return name in conf.get_settings().namespaces

    def __iter__(self) -> Iterator[str]:
        return iter(conf.get_settings().namespaces)

    def all(self) -> list[CacheService]:
        return [self[name] for name in self]

    def reset(self) -> None:
        """Forget the built services (settings changed); the next access rebuilds them."""
        self._services = Local()

    def __repr__(self) -> str:
        return f"<NamespaceHandler {list(self)!r}>"


namespaces = NamespaceHandler()
