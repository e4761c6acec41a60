"""System checks for ``AGENTHUB_CACHE``: every mistake an error, every hazard a warning.

Ids are stable; tests assert them. Registered in ``AppConfig.ready()``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, cast

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
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
    E014,
    ERROR_IDS,
    settings_errors,
)

E009 = "agenthub_cache.E009"  # a namespace's CACHE is a NamespaceCache alias (a loop)
E010 = "agenthub_cache.E010"  # NamespaceCache LOCATION missing or not a valid namespace name
E011 = "agenthub_cache.E011"  # NamespaceCache LOCATION names no configured namespace
E012 = "agenthub_cache.E012"  # NamespaceCache given options it does not use (TIMEOUT, OPTIONS)
E013 = "agenthub_cache.E013"  # METRICS="redis" on a cache that is not Redis
W001 = "agenthub_cache.W001"  # namespace on DummyCache
W002 = "agenthub_cache.W002"  # namespace on LocMemCache
W003 = "agenthub_cache.W003"  # Redis eviction policy may evict index sets (Redis provider)
W004 = "agenthub_cache.W004"  # pymemcache retries that silently turn an outage into misses
W005 = "agenthub_cache.W005"  # DB/file/LocMem cache culling at Django's default MAX_ENTRIES
#: E014 (bad SLOTS) is in validation.py.
E015 = "agenthub_cache.E015"  # a RedisClusterCache alias with a bad LOCATION (db other than 0...)
E016 = "agenthub_cache.E016"  # a RedisClusterCache alias unreachable / not a cluster (deploy)
W006 = "agenthub_cache.W006"  # SLOTS > 1 on an alias that is not a Redis Cluster
IDS = (
    *(*ERROR_IDS, E009, E010, E011, E012, E013, E015, E016),
    *(W001, W002, W003, W004, W005, W006),
)

#: Django's default ``OPTIONS["MAX_ENTRIES"]`` (W005 warns at or below it).
DJANGO_MAX_ENTRIES = 300

_WHERE = f"settings.{conf.SETTING}"

#: The adapter backend (``agenthub_cache.backends.NamespaceCache``), by the path of its class:
#: matched along the MRO of each alias's backend, so the checks never import it themselves.
NAMESPACE_CACHE = "agenthub_cache.backends.namespace.NamespaceCache"
#: ``CACHES`` keys a NamespaceCache ignores: the namespace's TTL is its default timeout, and the
#: alias the namespace lives on culls and holds the client options.
NAMESPACE_CACHE_UNUSED = {
    "TIMEOUT": "Set the default timeout as the namespace's TTL: "
    "settings.AGENTHUB_CACHE['NAMESPACES'][{name!r}]['TTL'].",
    "OPTIONS": "Put OPTIONS (MAX_ENTRIES, client options) on the cache alias the namespace lives "
    "on, settings.CACHES[{cache!r}].",
}

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


#: The app's own cluster backend, by dotted path (checks import no backend module).
CLUSTER_BACKEND = "agenthub_cache.backends.cluster.RedisClusterCache"
#: Seconds each startup node gets to answer the deployment probe (E016).
CLUSTER_PROBE_TIMEOUT = 1.0


def _is_cluster(backend: type[Any] | None) -> bool:
    return backend is not None and any(
        f"{cls.__module__}.{cls.__qualname__}" == CLUSTER_BACKEND for cls in backend.__mro__
    )


def _cluster_aliases() -> list[str]:
    return sorted(alias for alias in settings.CACHES if _is_cluster(_backend_class(alias)))


def check_cluster_settings() -> list[CheckMessage]:
    """E015: a ``RedisClusterCache`` alias whose LOCATION or KEY_PREFIX cannot work."""
    aliases = _cluster_aliases()
    if not aliases:  # and redis-py, which the cluster modules import, may not be installed
        return []
    from agenthub_cache.providers.redis.cluster_client import ClusterSettingsError, parse_location

    errors: list[CheckMessage] = []
    for alias in aliases:
        params = cast(Mapping[str, Any], settings.CACHES[alias])
        try:
            parse_location(params.get("LOCATION", ""), alias)
        except ClusterSettingsError as exc:
            errors.append(
                Error(
                    str(exc),
                    hint="LOCATION of a RedisClusterCache is one or more redis://host:port URLs "
                    "of cluster nodes, with no database number (a cluster has only db 0).",
                    id=E015,
                )
            )
        prefix = str(params.get("KEY_PREFIX", ""))
        if "{" in prefix or "}" in prefix:
            errors.append(
                Error(
                    f"CACHES[{alias!r}]['KEY_PREFIX'] is {prefix!r}: a brace in it would become "
                    "every key's hash tag, so namespaces could not be spread over the cluster "
                    "and their own tags would be ignored.",
                    hint="Use a KEY_PREFIX without '{' or '}'.",
                    id=E015,
                )
            )
    return errors


def check_redis_cluster(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E016 (deployment check): every ``RedisClusterCache`` alias reaches a healthy cluster.

    Asks each startup node with a one-second timeout until one answers for a healthy
    cluster; an error names the alias and what each node said.
    """
    aliases = _cluster_aliases()
    if not aliases:
        return []
    from agenthub_cache.providers.redis.cluster_client import ClusterSettingsError, parse_location
    from agenthub_cache.providers.redis.connections import cluster_node_problem

    errors: list[CheckMessage] = []
    for alias in aliases:
        params = cast(Mapping[str, Any], settings.CACHES[alias])
        try:
            nodes = parse_location(params.get("LOCATION", ""), alias)
        except ClusterSettingsError:
            continue  # E015 says so
        password = (params.get("OPTIONS") or {}).get("PASSWORD")
        problems = []
        for host, port, _ in nodes:
            problem = cluster_node_problem(host, port, password, CLUSTER_PROBE_TIMEOUT)
            if problem is None:
                break
            problems.append(f"{host}:{port} {problem}")
        else:
            errors.append(
                Error(
                    f"The Redis Cluster of the cache alias {alias!r} is not usable: "
                    + "; ".join(problems)
                    + ".",
                    hint=f"Point CACHES[{alias!r}]['LOCATION'] at nodes of a running cluster "
                    "whose 16384 slots are all served (CLUSTER INFO says cluster_state:ok); "
                    "for a single Redis server use django_redis.cache.RedisCache instead.",
                    id=E016,
                )
            )
    return errors


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
        slotted = [n for n in names if conf.get_settings().namespaces[n].slots > 1]
        if slotted and not _is_cluster(backend):
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


def _is_namespace_cache(alias: str) -> bool:
    backend = _backend_class(alias)
    return backend is not None and any(
        f"{cls.__module__}.{cls.__qualname__}" == NAMESPACE_CACHE for cls in backend.__mro__
    )


def _namespace_cache_location(
    alias: str, params: Mapping[str, Any], names: list[str]
) -> list[CheckMessage]:
    where = f"settings.CACHES[{alias!r}]"
    location = params.get("LOCATION")
    known = ", ".join(sorted(names)) or "none"
    fix = f"Set LOCATION to the name of a namespace in {_WHERE}['NAMESPACES'] ({known})."
    if not location:
        return [Error(f"{where} is a NamespaceCache without a LOCATION.", hint=fix, id=E010)]
    if not conf.is_valid_name(location):
        return [
            Error(
                f"{where}['LOCATION'] is {location!r}, which is not a valid namespace name.",
                hint=f"{fix} Namespace names are 1-64 letters, digits, '_', '-' or '.', "
                "starting with a letter or digit.",
                id=E010,
            )
        ]
    if location not in names:
        close = difflib.get_close_matches(location, names, n=1)
        guess = f"Did you mean {close[0]!r}? " if close else ""
        return [
            Error(
                f"{where}['LOCATION'] names the namespace {location!r}, which is not configured.",
                hint=f"{guess}{fix} Or declare {location!r} there.",
                id=E011,
            )
        ]
    return []


def namespace_cache_errors() -> list[CheckMessage]:
    """Mistakes with ``NamespaceCache`` aliases: loops, bad LOCATION, options it ignores."""
    if settings_errors():
        return []  # reported by settings_errors(); the namespaces are not known yet
    app_settings = conf.get_settings()
    raw = _raw_namespaces()
    # Where each alias was named: the default CACHE once (ad hoc services use it too), and each
    # namespace that names its own.
    named = [(f"{_WHERE}['CACHE']", app_settings.cache, "the namespaces that name no CACHE")]
    for ns in app_settings.namespaces.values():
        declared = raw.get(ns.name)
        if isinstance(declared, Mapping) and "CACHE" in declared:
            named.append((f"{_WHERE}['NAMESPACES'][{ns.name!r}]['CACHE']", ns.cache, repr(ns.name)))
    errors: list[CheckMessage] = [
        Error(
            f"{where} is {alias!r}, a NamespaceCache alias: cache namespace(s) {which} would be "
            "stored in a namespace, a loop.",
            hint=f"Point {where} at a cache that stores data (Redis, database, memcached, "
            "LocMem), not at a NamespaceCache alias.",
            id=E009,
        )
        for where, alias, which in named
        if _is_namespace_cache(alias)
    ]
    names = list(app_settings.namespaces)
    for alias, params in settings.CACHES.items():
        if not _is_namespace_cache(alias):
            continue
        location_errors = _namespace_cache_location(alias, params, names)
        errors += location_errors
        name = str(params.get("LOCATION") or "")
        cache = app_settings.namespaces[name].cache if not location_errors else "..."
        errors += [
            Error(
                f"settings.CACHES[{alias!r}] is a NamespaceCache and does not use {option}.",
                hint=f"Remove {option}. " + hint.format(name=name or "...", cache=cache),
                id=E012,
            )
            for option, hint in NAMESPACE_CACHE_UNUSED.items()
            if option in params
        ]
    return errors


def _is_redis(backend: type[Any]) -> bool:
    try:
        from agenthub_cache.providers.redis.provider import RedisProvider
    except ImportError:  # no redis-py: no Redis cache either
        return False
    try:
        return issubclass(provider_class_for(backend), RedisProvider)
    except (ImportError, LookupError):
        return False


def metrics_errors() -> list[CheckMessage]:
    """E013: ``METRICS: "redis"`` on a namespace whose cache is not Redis."""
    if settings_errors():
        return []  # reported by settings_errors(); the namespaces are not known yet
    errors: list[CheckMessage] = []
    for ns in conf.get_settings().namespaces.values():
        backend = _backend_class(ns.cache)
        if ns.metrics != "redis" or backend is None or _is_redis(backend):
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


def _raw_namespaces() -> Mapping[str, Any]:
    declared = conf.raw_settings().get("NAMESPACES", conf.SEED_NAMESPACES)
    return declared if isinstance(declared, Mapping) else {}


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors = [
        *(settings_errors() or [*namespace_cache_errors(), *metrics_errors()]),
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
    "E013",
    "E014",
    "E015",
    "E016",
    "IDS",
    "PYMEMCACHE_OPTIONS",
    "W001",
    "W002",
    "W003",
    "W004",
    "W006",
    "check_cluster_settings",
    "check_hazards",
    "check_redis_cluster",
    "check_redis_eviction",
    "check_settings",
    "metrics_errors",
    "settings_errors",
]
