"""Which provider serves a namespace: its ``CACHES`` alias, or a private in-process store.

Below the service and the factory: ``CacheService`` binds its provider here, and the factory
builds services (``factory.py``) on top of it.
"""

from __future__ import annotations

import enum
import itertools
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import InvalidCacheBackendError
from django.core.cache.backends.locmem import LocMemCache

from agenthub_cache import conf
from agenthub_cache.registry import provider_class_for

if TYPE_CHECKING:
    from agenthub_cache.providers.base import Provider


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


def bind_provider(
    namespace: str, cache: str | None = None, cache_type: CacheType | str | None = None
) -> Provider:
    """The provider for ``namespace`` on ``cache`` (an alias; the default one if ``None``),
    or on a private store when ``cache_type`` is ``IN_MEMORY``."""
    if cache_type is not None and CacheType(cache_type) is CacheType.IN_MEMORY:
        private = _private_backend(namespace)
        provider = provider_class_for(type(private))
        return provider(private, f"<in-memory {namespace}>", namespace, shared=False)
    alias = cache or conf.get_settings().cache
    try:
        backend = caches[alias]
    except InvalidCacheBackendError as exc:
        if alias in settings.CACHES:  # there, but its BACKEND cannot be imported
            raise InvalidCacheBackendError(
                f"Cache namespace {namespace!r}: the {alias!r} cache cannot be set up: {exc}"
            ) from exc
        known = ", ".join(sorted(settings.CACHES)) or "none"
        raise InvalidCacheBackendError(
            f"Cache namespace {namespace!r}: cache={alias!r} is not an alias in "
            f"settings.CACHES ({known})."
        ) from exc
    return provider_class_for(type(backend))(backend, alias, namespace)
