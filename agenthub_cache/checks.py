"""System checks for ``AGENTHUB_CACHE``: every mistake an error, every hazard a warning.

The checks ``AppConfig.ready()`` registers, with every id in one list (``IDS``) so that ids
stay unique; tests assert them. The settings themselves are validated in ``validation``,
``NamespaceCache`` aliases in ``checks_namespace_cache`` and ``RedisClusterCache`` aliases in
``checks_cluster``; this module warns of what each alias's store cannot keep (W001-W006),
of ``METRICS: "redis"`` off Redis (E013) and, deploying, of Redis eviction (W003).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from agenthub_cache import conf
from agenthub_cache.checks_aliases import backend_class
from agenthub_cache.checks_cluster import (
    CLUSTER_BACKEND,
    E015,
    E016,
    check_cluster_settings,
    is_cluster,
)
from agenthub_cache.checks_namespace_cache import E009, E010, E011, E012, namespace_cache_errors
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
    E014,
    ERROR_IDS,
    declared_namespaces,
    settings_errors,
)

#: E009-E012 (NamespaceCache aliases) are in checks_namespace_cache.py.
E013 = "agenthub_cache.E013"  # METRICS="redis" on a cache that is not Redis
W001 = "agenthub_cache.W001"  # namespace on DummyCache
W002 = "agenthub_cache.W002"  # namespace on LocMemCache
W003 = "agenthub_cache.W003"  # Redis eviction policy may evict index sets (Redis provider)
W004 = "agenthub_cache.W004"  # pymemcache retries that silently turn an outage into misses
W005 = "agenthub_cache.W005"  # DB/file/LocMem cache culling at Django's default MAX_ENTRIES
#: E014 (bad SLOTS) is in validation.py; E015 and E016 (Redis Cluster) in checks_cluster.py.
W006 = "agenthub_cache.W006"  # SLOTS > 1 on an alias that is not a Redis Cluster
IDS = (
    *(*ERROR_IDS, E009, E010, E011, E012, E013, E015, E016),
    *(W001, W002, W003, W004, W005, W006),
)

#: Django's default ``OPTIONS["MAX_ENTRIES"]`` (W005 warns at or below it).
DJANGO_MAX_ENTRIES = 300

_WHERE = f"settings.{conf.SETTING}"

#: ``CACHES[alias]["OPTIONS"]`` for ``PyMemcacheCache`` that make an outage an error (W004).
PYMEMCACHE_OPTIONS = {"retry_attempts": 0, "dead_timeout": 5}


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
        backend = backend_class(alias)
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
        slotted = [n for n in names if conf.get_settings().namespaces[n].slots > 1]
        if slotted and not is_cluster(backend):
            warnings.append(
                Warning(
                    f"Cache namespace(s) {', '.join(map(repr, slotted))} on the alias {alias!r} "
                    "set SLOTS above 1, which only spreads keys over a Redis Cluster; here it "
                    "changes nothing.",
                    hint=f"Remove SLOTS, or use {CLUSTER_BACKEND.rsplit('.', 2)[0]}."
                    "RedisClusterCache for the alias.",
                    id=W006,
                )
            )
        max_entries = _culls_early(alias, backend)
        if max_entries is not None:
            warnings.append(_cull_warning(alias, which, max_entries))
    return warnings


def _sums_metrics(backend: type[Any]) -> bool:
    """Whether the provider of ``backend`` declares it can hold ``METRICS: "redis"`` totals."""
    try:
        return provider_class_for(backend).sums_metrics
    except (ImportError, LookupError):  # no redis-py: no Redis cache either
        return False


def metrics_errors() -> list[CheckMessage]:
    """E013: ``METRICS: "redis"`` on a namespace whose cache is not Redis (reported beside
    ``settings_errors()`` wherever the namespace's alias is readable)."""
    errors: list[CheckMessage] = []
    for ns in (declared_namespaces() or {}).values():
        if ns.options.get("METRICS") != "redis" or ns.cache is None:
            continue
        backend = backend_class(ns.cache)
        if backend is None or _sums_metrics(backend):
            continue  # a backend that cannot be loaded is Django's own check's to report
        errors.append(
            Error(
                f"{_WHERE}['NAMESPACES'][{ns.name!r}]['METRICS'] is 'redis', but the cache "
                f"alias {ns.cache!r} is not Redis.",
                hint="Use METRICS: True (per process) on this cache, or put the namespace on "
                "Redis.",
                id=E013,
            )
        )
    return errors


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors = [
        *settings_errors(),
        *namespace_cache_errors(),
        *metrics_errors(),
        *check_cluster_settings(),
    ]
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
        backend = backend_class(alias)
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
    "E013",
    "E014",
    "IDS",
    "PYMEMCACHE_OPTIONS",
    "W001",
    "W002",
    "W003",
    "W004",
    "W005",
    "W006",
    "check_hazards",
    "check_redis_eviction",
    "check_settings",
    "metrics_errors",
    "settings_errors",
]
