"""System checks of ``RedisClusterCache`` aliases: LOCATION and KEY_PREFIX (E015), and the
deployment probe of the cluster itself (E016).

The Redis modules are imported only once an alias is a ``RedisClusterCache``: without the
redis extra, no other project may fail its checks for want of redis-py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from django.conf import settings
from django.core.checks import CheckMessage, Error

from agenthub_cache.checks_aliases import backend_class, is_backend

E015 = "agenthub_cache.E015"  # a RedisClusterCache alias with a bad LOCATION (db other than 0...)
E016 = "agenthub_cache.E016"  # a RedisClusterCache alias unreachable / not a cluster (deploy)

#: The app's own cluster backend, by dotted path (checks import no backend module).
CLUSTER_BACKEND = "agenthub_cache.backends.cluster.RedisClusterCache"
#: Seconds each startup node gets to answer the deployment probe (E016).
CLUSTER_PROBE_TIMEOUT = 1.0


def is_cluster(backend: type[Any] | None) -> bool:
    return is_backend(backend, CLUSTER_BACKEND)


def _cluster_aliases() -> list[str]:
    return sorted(alias for alias in settings.CACHES if is_cluster(backend_class(alias)))


def check_cluster_settings() -> list[CheckMessage]:
    """E015: a ``RedisClusterCache`` alias whose LOCATION or KEY_PREFIX cannot work."""
    aliases = _cluster_aliases()
    if not aliases:  # and redis-py, which the cluster modules import, may not be installed
        return []
    from agenthub_cache.providers.redis.cluster_settings import (
        ClusterSettingsError,
        parse_location,
    )

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
    from agenthub_cache.providers.redis.cluster_settings import (
        ClusterSettingsError,
        parse_location,
    )
    from agenthub_cache.providers.redis.probes import cluster_node_problem

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
