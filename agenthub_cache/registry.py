"""Which provider serves which Django cache backend.

Keyed by the backend's dotted path, as in ``CACHES[alias]["BACKEND"]``. A backend finds its
provider by walking its class's MRO, so a subclass of ``RedisCache`` gets the Redis provider
and everything falls back to the generic provider registered for ``BaseCache``. Values may be
dotted paths: built-in providers are imported only when a namespace first needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from agenthub_cache.providers.base import Provider

P = TypeVar("P", bound="type[Provider]")

_BUILTINS = {
    "django.core.cache.backends.base.BaseCache": "agenthub_cache.providers.generic.GenericProvider",
    "django.core.cache.backends.locmem.LocMemCache": "agenthub_cache.providers.locmem.LocMemProvider",
    "django.core.cache.backends.db.DatabaseCache": "agenthub_cache.providers.db.DatabaseProvider",
    "django.core.cache.backends.filebased.FileBasedCache": "agenthub_cache.providers.files.FileProvider",
    "django.core.cache.backends.memcached.BaseMemcachedCache": (
        "agenthub_cache.providers.memcached.MemcachedProvider"
    ),
    "django.core.cache.backends.memcached.PyMemcacheCache": (
        "agenthub_cache.providers.memcached.PyMemcacheProvider"
    ),
    "django.core.cache.backends.dummy.DummyCache": "agenthub_cache.providers.dummy.DummyProvider",
    "django.core.cache.backends.redis.RedisCache": "agenthub_cache.providers.redis.provider.RedisProvider",
    "django_redis.cache.RedisCache": "agenthub_cache.providers.redis.provider.RedisProvider",
    "agenthub_cache.backends.cluster.RedisClusterCache": (
        "agenthub_cache.providers.redis.cluster.RedisClusterProvider"
    ),
}

_registry: dict[str, type[Provider] | str] = dict(_BUILTINS)


def dotted_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register_provider(*backends: str) -> Callable[[P], P]:
    """Class decorator: ``@register_provider("myapp.cache.MyCache")`` serves that backend."""

    def decorator(provider: P) -> P:
        for backend in backends:
            _registry[backend] = provider
        return provider

    return decorator


def provider_class_for(backend: type) -> type[Provider]:
    """The provider of the nearest registered class in ``backend``'s MRO."""
    for cls in backend.__mro__:
        entry = _registry.get(dotted_path(cls))
        if entry is None:
            continue
        if isinstance(entry, str):
            entry = _registry[dotted_path(cls)] = import_string(entry)
        return entry
    raise LookupError(f"No cache provider is registered for {dotted_path(backend)}.")
