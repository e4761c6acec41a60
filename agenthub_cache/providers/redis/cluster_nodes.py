"""Reading a Redis Cluster's slot map from its startup nodes, and what can go wrong there.

A startup node that answers but has no cluster support is a misconfiguration, not an outage:
``reading_slots`` turns redis-py's "cannot be connected ... Cluster mode is not enabled" into
``NotAClusterError``, whose message names the fix (the cluster provider lists it among its
refusals: ``CacheRefused``, never silenced by ``FAIL_SILENTLY``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from redis.exceptions import RedisClusterException, ResponseError

from agenthub_cache.providers.redis.cluster_settings import ClusterSpec


class NotAClusterError(RedisClusterException):
    """A startup node answered, but it is a Redis server without cluster support. Nothing
    will change that but the settings or the server's configuration: a refusal
    (``CacheRefused``, never silenced by ``FAIL_SILENTLY``), not an outage."""


def not_a_cluster(exc: RedisClusterException, spec: ClusterSpec) -> NotAClusterError | None:
    """``exc`` (from reading the slot map) as a ``NotAClusterError`` naming the fix, if a node
    said it has no cluster support; else None. redis-py raises "Cluster mode is not enabled"
    (5.x: after INFO; 8.x: from the ``ResponseError`` of CLUSTER SLOTS) wrapped in "cannot be
    connected", so the whole chain is looked at."""
    seen: BaseException | None = exc
    while seen is not None:
        text = str(seen)
        if "Cluster mode is not enabled" in text or (
            isinstance(seen, ResponseError) and "cluster support disabled" in text
        ):
            return NotAClusterError(
                f"the startup nodes {spec.location} of this RedisClusterCache are Redis "
                "servers without cluster support (cluster mode is not enabled). Point "
                "LOCATION at nodes of a Redis Cluster, or start the servers with "
                "cluster-enabled yes and form a cluster; for a single Redis server use "
                "django_redis.cache.RedisCache instead."
            )
        seen = seen.__cause__ or seen.__context__
    return None


@contextlib.contextmanager
def reading_slots(spec: ClusterSpec) -> Iterator[None]:
    """Around whatever reads the slot map: a node without cluster support is named as such."""
    try:
        yield
    except NotAClusterError:
        raise
    except RedisClusterException as exc:
        found = not_a_cluster(exc, spec)
        if found is None:
            raise
        raise found from exc
