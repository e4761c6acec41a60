"""System checks for ``AGENTHUB_CACHE``: every mistake an error, every hazard a warning.

Ids are stable; tests assert them. Registered in ``AppConfig.ready()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from django.conf import settings
from django.core.checks import CheckMessage, Warning
from django.utils.module_loading import import_string

from agenthub_cache import conf
from agenthub_cache.providers.base import StoreScope
from agenthub_cache.registry import provider_class_for
from agenthub_cache.validation import (
    E001,
    E002,
    E003,
    E004,
    E005,
    E006,
    E007,
    E008,
    ERROR_IDS,
    settings_errors,
)

W001 = "agenthub_cache.W001"  # namespace on DummyCache
W002 = "agenthub_cache.W002"  # namespace on LocMemCache
W003 = "agenthub_cache.W003"  # Redis eviction policy may evict index sets (Redis provider)
W004 = "agenthub_cache.W004"  # pymemcache retries that silently turn an outage into misses
W005 = "agenthub_cache.W005"  # DB/file/LocMem cache culling at Django's default MAX_ENTRIES
IDS = (*ERROR_IDS, W001, W002, W003, W004, W005)

#: Django's default ``OPTIONS["MAX_ENTRIES"]`` (W005 warns at or below it).
DJANGO_MAX_ENTRIES = 300

#: ``CACHES[alias]["OPTIONS"]`` for ``PyMemcacheCache`` that make an outage an error (W004).
PYMEMCACHE_OPTIONS = {"retry_attempts": 0, "dead_timeout": 5}


def _backend_class(alias: str) -> type[Any] | None:
    try:
        backend: type[Any] = import_string(str(settings.CACHES[alias]["BACKEND"]))
    except (ImportError, KeyError, TypeError):
        return None  # Django's own cache checks report a broken CACHES entry
    return backend


def _store_scope(backend: type[Any] | None) -> StoreScope | None:
    """Where the provider of ``backend`` says its data lives (``None``: it cannot be loaded)."""
    if backend is None:
        return None
    try:
        return provider_class_for(backend).store_scope
    except (ImportError, LookupError):
        return None


def _silences_outages(alias: str) -> bool:
    """pymemcache's HashClient answers "miss" (reads) and drops writes, raising nothing, for
    ``retry_timeout`` seconds after a failure while it has retries left, and always with
    ``ignore_exc``: an outage the app could neither report nor silence by its own policy."""
    options = cast(Mapping[str, Any], settings.CACHES[alias].get("OPTIONS") or {})
    return bool(options.get("ignore_exc")) or options.get("retry_attempts", 2) != 0


def _culls_early(alias: str, backend: type[Any] | None) -> int | None:
    """The alias's ``MAX_ENTRIES`` if it is a culling cache (database, file, LocMem) left at
    Django's default of 300 or below, else ``None``."""
    from django.core.cache.backends.db import DatabaseCache
    from django.core.cache.backends.filebased import FileBasedCache
    from django.core.cache.backends.locmem import LocMemCache

    if backend is None or not issubclass(backend, DatabaseCache | FileBasedCache | LocMemCache):
        return None
    options = cast(Mapping[str, Any], settings.CACHES[alias].get("OPTIONS") or {})
    try:
        max_entries = int(options.get("MAX_ENTRIES", DJANGO_MAX_ENTRIES))
    except (TypeError, ValueError):
        return None  # Django's own cache reports a MAX_ENTRIES it cannot read
    return max_entries if max_entries <= DJANGO_MAX_ENTRIES else None


def _cull_warning(alias: str, which: str, max_entries: int) -> CheckMessage:
    return Warning(
        f"{which}: the cache holds at most MAX_ENTRIES = {max_entries} entries (Django's "
        "default is 300) and then culls a share of them at random. Every indexed entry takes "
        "more than one (its value, its index filing, the index records), so a few hundred "
        "entries are enough for culling to drop values and index records: count() falls and "
        "find() misses entries that were written a moment ago.",
        hint=f"Set settings.CACHES[{alias!r}]['OPTIONS'] = {{'MAX_ENTRIES': 100_000}}, or "
        "more than the namespaces on it will ever hold at once.",
        id=W005,
    )


def check_hazards() -> list[CheckMessage]:
    """Warnings for aliases whose backend cannot keep the app's promises (one per alias)."""
    from django.core.cache.backends.memcached import PyMemcacheCache

    by_alias: dict[str, list[str]] = {}
    for ns in conf.get_settings().namespaces.values():
        by_alias.setdefault(ns.cache, []).append(ns.name)
    warnings: list[CheckMessage] = []
    for alias, names in by_alias.items():
        backend = _backend_class(alias)
        scope = _store_scope(backend)
        which = f"Cache namespace(s) {', '.join(map(repr, names))} on the alias {alias!r}"
        if scope is StoreScope.NOTHING:
            warnings.append(
                Warning(
                    f"{which}: a DummyCache keeps nothing that is stored.",
                    hint="Point the namespaces at a real cache in settings.CACHES.",
                    id=W001,
                )
            )
        elif scope is StoreScope.PROCESS:
            warnings.append(
                Warning(
                    f"{which}: a LocMemCache is private to each process, so a flush from a "
                    "management command cannot reach the server's processes.",
                    hint="Use a shared cache (Redis, memcached, DatabaseCache) outside development.",
                    id=W002,
                )
            )
        elif (
            backend is not None
            and issubclass(backend, PyMemcacheCache)
            and _silences_outages(alias)
        ):
            warnings.append(
                Warning(
                    f"{which}: with pymemcache's default retries (or ignore_exc), a memcached "
                    "that goes down makes reads miss and writes vanish without an error for a "
                    "while, so CacheUnavailable and FAIL_SILENTLY cannot apply.",
                    hint=f"Add {PYMEMCACHE_OPTIONS!r} to settings.CACHES[{alias!r}]['OPTIONS']: "
                    "every call then fails at once while the server is down, and the server is "
                    "tried again after dead_timeout seconds.",
                    id=W004,
                )
            )
        max_entries = _culls_early(alias, backend)
        if max_entries is not None:
            warnings.append(_cull_warning(alias, which, max_entries))
    return warnings


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors = settings_errors()
    return errors if errors else check_hazards()


def check_redis_eviction(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W003: a Redis whose ``maxmemory-policy`` is ``allkeys-*`` may evict index sets.

    Registered as a deployment check (``manage.py check --deploy``): it asks each server once,
    with a one-second timeout, and a server that cannot be reached is not a check failure
    (the app reports an unreachable cache when it is used).
    """
    from django.core.cache import caches

    if settings_errors():
        return []
    app_settings = conf.get_settings()
    by_alias: dict[str, list[str]] = {app_settings.cache: []}
    for ns in app_settings.namespaces.values():
        by_alias.setdefault(ns.cache, []).append(ns.name)
    warnings: list[CheckMessage] = []
    for alias, names in sorted(by_alias.items()):
        backend = _backend_class(alias)
        if backend is None:
            continue
        probe = getattr(provider_class_for(backend), "eviction_policy", None)
        policy = probe(caches[alias]) if probe is not None else None
        if policy is not None and policy.startswith("allkeys-"):
            which = f"namespaces {', '.join(sorted(names))}" if names else "ad hoc namespaces"
            warnings.append(
                Warning(
                    f"The Redis behind the cache alias {alias!r} ({which}) has "
                    f"maxmemory-policy {policy!r}: under memory pressure it may evict the sorted "
                    "sets that hold secondary indexes, so find()/get_by_index() would miss "
                    "entries that still exist.",
                    hint="Use 'noeviction' on a Redis that holds indexed namespaces (writes then "
                    "fail loudly instead of dropping data), or at least a 'volatile-*' policy, "
                    "which evicts only keys with a TTL; run 'cache_namespaces prune NAME' after "
                    "evictions.",
                    id=W003,
                )
            )
    return warnings


__all__ = [
    "E001",
    "E002",
    "E003",
    "E004",
    "E005",
    "E006",
    "E007",
    "E008",
    "IDS",
    "PYMEMCACHE_OPTIONS",
    "W001",
    "W002",
    "W003",
    "W004",
    "check_hazards",
    "check_redis_eviction",
    "check_settings",
    "settings_errors",
]
