"""Throw-away clients for deployment checks: short timeouts, no retries, never the shared pool.

What a check or ``Provider.eviction_policy`` asks a server once (its eviction policy, whether a
startup node serves a healthy cluster) must not wait on, or take a connection from, the pool
the namespaces use.
"""

from __future__ import annotations

import redis
from django.core.cache.backends.base import BaseCache

from agenthub_cache.exceptions import NotSupported
from agenthub_cache.providers.redis.connections import server_settings


def probe_client(backend: BaseCache, timeout: float) -> redis.Redis | None:
    """A throw-away client for the backend's server: short timeouts, no retries, one socket.

    ``None`` where the server cannot be reached from the URL alone (Sentinel).
    """
    settings = server_settings(backend)
    if settings is None:
        return None
    url, options = settings
    options = {
        **options,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": redis.retry.Retry(redis.backoff.NoBackoff(), 0),
        "max_connections": 1,
    }
    return redis.Redis(connection_pool=redis.ConnectionPool.from_url(url, **options))


def eviction_policy(backend: BaseCache, timeout: float = 1.0) -> str | None:
    """The server's ``maxmemory-policy``, or ``None`` if it cannot be asked right now."""
    try:
        client = probe_client(backend, timeout)
    except (NotSupported, ValueError):
        return None
    if client is None:
        return None
    try:
        info = client.info("memory")
    except redis.exceptions.RedisError:
        return None
    finally:
        client.connection_pool.disconnect()
    policy = info.get("maxmemory_policy")
    return None if policy is None else str(policy)


def cluster_node_problem(host: str, port: int, password: str | None, timeout: float) -> str | None:
    """What is wrong with one startup node as a cluster node; None if it serves a healthy
    cluster. Short timeouts, no retries: a deployment check never hangs."""
    client = redis.Redis(
        host=host,
        port=port,
        password=password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
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
