"""System checks for ``AGENTHUB_CACHE``: every mistake an error, every hazard a warning.

Ids are stable; tests assert them. Registered in ``AppConfig.ready()``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any, cast

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.utils.module_loading import import_string

from agenthub_cache import conf

E001 = "agenthub_cache.E001"  # AGENTHUB_CACHE is not a dict
E002 = "agenthub_cache.E002"  # unknown top-level option
E003 = "agenthub_cache.E003"  # CACHE names an alias missing from CACHES
E004 = "agenthub_cache.E004"  # bad namespace name
E005 = "agenthub_cache.E005"  # bad TTL / DEFAULT_TTL
E006 = "agenthub_cache.E006"  # unknown namespace option
E007 = "agenthub_cache.E007"  # NAMESPACES, or one namespace's options, not a dict
E008 = "agenthub_cache.E008"  # FAIL_SILENTLY / SENSITIVE not a bool
W001 = "agenthub_cache.W001"  # namespace on DummyCache
W002 = "agenthub_cache.W002"  # namespace on LocMemCache
W003 = "agenthub_cache.W003"  # Redis eviction policy may evict index sets (Redis provider)
W004 = "agenthub_cache.W004"  # pymemcache retries that silently turn an outage into misses
E009 = "agenthub_cache.E009"  # SLOTS not a whole number from 1 to 1024
W005 = "agenthub_cache.W005"  # SLOTS > 1 on an alias that is not a Redis Cluster
E010 = "agenthub_cache.E010"  # a RedisClusterCache alias with a bad LOCATION (db other than 0...)
E011 = "agenthub_cache.E011"  # a RedisClusterCache alias unreachable / not a cluster (deploy)
IDS = (
    *(E001, E002, E003, E004, E005, E006, E007, E008, E009, E010, E011),
    *(W001, W002, W003, W004, W005),
)

#: ``CACHES[alias]["OPTIONS"]`` for ``PyMemcacheCache`` that make an outage an error (W004).
PYMEMCACHE_OPTIONS = {"retry_attempts": 0, "dead_timeout": 5}

_WHERE = f"settings.{conf.SETTING}"


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word).upper(), list(choices), n=1)
    return f"Did you mean {close[0]!r}? " if close else ""


def _check_alias(alias: object, where: str) -> list[CheckMessage]:
    if isinstance(alias, str) and alias in settings.CACHES:
        return []
    known = ", ".join(sorted(settings.CACHES)) or "none"
    return [
        Error(
            f"{where} names the cache alias {alias!r}, which is not in settings.CACHES.",
            hint=f"Use one of the aliases in settings.CACHES ({known}) or add {alias!r} there.",
            id=E003,
        )
    ]


def _check_ttl(ttl: object, where: str) -> list[CheckMessage]:
    if conf.is_valid_ttl(ttl):
        return []
    return [
        Error(
            f"{where} is {ttl!r}; a TTL must be a positive whole number of seconds or None.",
            hint="Use e.g. 300 for five minutes, or None for entries that never expire.",
            id=E005,
        )
    ]


def _check_options(
    given: Mapping[Any, Any], known: tuple[str, ...], where: str, id: str
) -> list[CheckMessage]:
    return [
        Error(
            f"{where} has an unknown option {option!r}.",
            hint=f"{_did_you_mean(option, known)}Known options: {', '.join(known)}.",
            id=id,
        )
        for option in given
        if option not in known
    ]


def _check_namespace(name: object, options: object, alias: object) -> list[CheckMessage]:
    where = f"{_WHERE}['NAMESPACES'][{name!r}]"
    errors: list[CheckMessage] = []
    if not conf.is_valid_name(name):
        errors.append(
            Error(
                f"{where}: {name!r} is not a valid namespace name.",
                hint="Use 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit.",
                id=E004,
            )
        )
    if not isinstance(options, Mapping):
        errors.append(
            Error(
                f"{where} must be a dict of options, not {type(options).__name__}.",
                hint='For example {"TTL": 300}.',
                id=E007,
            )
        )
        return errors
    errors += _check_options(options, conf.NAMESPACE_OPTIONS, where, E006)
    if "TTL" in options:
        errors += _check_ttl(options["TTL"], f"{where}['TTL']")
    if "CACHE" in options:
        errors += _check_alias(options["CACHE"], f"{where}['CACHE']")
    if "SLOTS" in options and not conf.is_valid_slots(options["SLOTS"]):
        errors.append(
            Error(
                f"{where}['SLOTS'] is {options['SLOTS']!r}; it must be a whole number from 1 to "
                f"{conf.MAX_SLOTS}.",
                hint="Use 1 (the default: the namespace in one cluster slot) or e.g. 16 to "
                "spread a large namespace over 16 hash tags of a Redis Cluster.",
                id=E009,
            )
        )
    for flag in ("FAIL_SILENTLY", "SENSITIVE"):
        if flag in options and not isinstance(options[flag], bool):
            errors.append(
                Error(
                    f"{where}['{flag}'] is {options[flag]!r}; it must be True or False.",
                    hint=f"Set {flag} to True or False.",
                    id=E008,
                )
            )
    return errors


def settings_errors() -> list[CheckMessage]:
    """Every mistake in ``AGENTHUB_CACHE`` (errors only; hazards are in ``check_hazards``)."""
    raw = getattr(settings, conf.SETTING, None)
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        return [
            Error(
                f"{_WHERE} must be a dict, not {type(raw).__name__}.",
                hint='For example {"CACHE": "default", "NAMESPACES": {"signup": {"TTL": 1800}}}.',
                id=E001,
            )
        ]
    errors = _check_options(raw, conf.TOP_LEVEL_OPTIONS, _WHERE, E002)
    alias = raw.get("CACHE", conf.DEFAULT_ALIAS)
    errors += _check_alias(alias, f"{_WHERE}['CACHE']")
    if "DEFAULT_TTL" in raw:
        errors += _check_ttl(raw["DEFAULT_TTL"], f"{_WHERE}['DEFAULT_TTL']")
    declared = raw.get("NAMESPACES", conf.SEED_NAMESPACES)
    if not isinstance(declared, Mapping):
        return [
            *errors,
            Error(
                f"{_WHERE}['NAMESPACES'] must be a dict of namespace name to options.",
                hint='For example {"signup": {"TTL": 1800}}.',
                id=E007,
            ),
        ]
    for name, options in declared.items():
        errors += _check_namespace(name, options, alias)
    return errors


def _backend_class(alias: str) -> type[Any] | None:
    try:
        backend: type[Any] = import_string(str(settings.CACHES[alias]["BACKEND"]))
    except (ImportError, KeyError, TypeError):
        return None  # Django's own cache checks report a broken CACHES entry
    return backend


def _silences_outages(alias: str) -> bool:
    """pymemcache's HashClient answers "miss" (reads) and drops writes, raising nothing, for
    ``retry_timeout`` seconds after a failure while it has retries left, and always with
    ``ignore_exc``: an outage the app could neither report nor silence by its own policy."""
    options = cast(Mapping[str, Any], settings.CACHES[alias].get("OPTIONS") or {})
    return bool(options.get("ignore_exc")) or options.get("retry_attempts", 2) != 0


#: The app's own cluster backend, by dotted path (checks import no backend module).
CLUSTER_BACKEND = "agenthub_cache.backends.cluster.RedisClusterCache"
#: Seconds each startup node gets to answer the deployment probe (E011).
CLUSTER_PROBE_TIMEOUT = 1.0


def _is_cluster(backend: type[Any] | None) -> bool:
    return backend is not None and any(
        f"{cls.__module__}.{cls.__qualname__}" == CLUSTER_BACKEND for cls in backend.__mro__
    )


def _cluster_aliases() -> list[str]:
    return sorted(alias for alias in settings.CACHES if _is_cluster(_backend_class(alias)))


def check_cluster_settings() -> list[CheckMessage]:
    """E010: a ``RedisClusterCache`` alias whose LOCATION or KEY_PREFIX cannot work."""
    from agenthub_cache.providers.redis.cluster_client import ClusterSettingsError, parse_location

    errors: list[CheckMessage] = []
    for alias in _cluster_aliases():
        params = cast(Mapping[str, Any], settings.CACHES[alias])
        try:
            parse_location(params.get("LOCATION", ""), alias)
        except ClusterSettingsError as exc:
            errors.append(
                Error(
                    str(exc),
                    hint="LOCATION of a RedisClusterCache is one or more redis://host:port URLs "
                    "of cluster nodes, with no database number (a cluster has only db 0).",
                    id=E010,
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
                    id=E010,
                )
            )
    return errors


def _probe_cluster_node(host: str, port: int, password: str | None) -> str | None:
    """What is wrong with one startup node as a cluster node; None if it serves a healthy
    cluster. Short timeouts, no retries: a check never hangs."""
    import redis

    client = redis.Redis(
        host=host,
        port=port,
        password=password,
        socket_timeout=CLUSTER_PROBE_TIMEOUT,
        socket_connect_timeout=CLUSTER_PROBE_TIMEOUT,
        retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0),
    )
    try:
        if not client.info("cluster").get("cluster_enabled"):
            return "is a Redis server without cluster support (cluster-enabled no)"
        state = client.execute_command("CLUSTER INFO")  # type: ignore[no-untyped-call]
        if state.get("cluster_state") != "ok":
            return (
                f"reports cluster_state:{state.get('cluster_state')} (slots assigned: "
                f"{state.get('cluster_slots_assigned')} of 16384, failing: "
                f"{state.get('cluster_slots_fail')})"
            )
        return None
    except redis.exceptions.RedisError as exc:
        return f"cannot be reached ({exc})"
    finally:
        client.close()


def check_redis_cluster(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E011 (deployment check): every ``RedisClusterCache`` alias reaches a healthy cluster.

    Asks each startup node with a one-second timeout until one answers for a healthy
    cluster; an error names the alias and what each node said.
    """
    from agenthub_cache.providers.redis.cluster_client import ClusterSettingsError, parse_location

    errors: list[CheckMessage] = []
    for alias in _cluster_aliases():
        params = cast(Mapping[str, Any], settings.CACHES[alias])
        try:
            nodes = parse_location(params.get("LOCATION", ""), alias)
        except ClusterSettingsError:
            continue  # E010 says so
        password = (params.get("OPTIONS") or {}).get("PASSWORD")
        problems = []
        for host, port, _ in nodes:
            problem = _probe_cluster_node(host, port, password)
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
                    id=E011,
                )
            )
    return errors


def check_hazards() -> list[CheckMessage]:
    """Warnings for aliases whose backend cannot keep the app's promises (one per alias)."""
    from django.core.cache.backends.dummy import DummyCache
    from django.core.cache.backends.locmem import LocMemCache
    from django.core.cache.backends.memcached import PyMemcacheCache

    by_alias: dict[str, list[str]] = {}
    for ns in conf.get_settings().namespaces.values():
        by_alias.setdefault(ns.cache, []).append(ns.name)
    warnings: list[CheckMessage] = []
    for alias, names in by_alias.items():
        backend = _backend_class(alias)
        which = f"Cache namespace(s) {', '.join(map(repr, names))} on the alias {alias!r}"
        if backend is not None and issubclass(backend, DummyCache):
            warnings.append(
                Warning(
                    f"{which}: a DummyCache keeps nothing that is stored.",
                    hint="Point the namespaces at a real cache in settings.CACHES.",
                    id=W001,
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
                    id=W005,
                )
            )
        if backend is not None and issubclass(backend, LocMemCache):
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
    return warnings


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors = [*settings_errors(), *check_cluster_settings()]
    return errors if errors else check_hazards()


def check_redis_eviction(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W003: a Redis whose ``maxmemory-policy`` is ``allkeys-*`` may evict index sets.

    Registered as a deployment check (``manage.py check --deploy``): it asks each server once,
    with a one-second timeout, and a server that cannot be reached is not a check failure
    (the app reports an unreachable cache when it is used).
    """
    from django.core.cache import caches

    from agenthub_cache.registry import provider_class_for

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
