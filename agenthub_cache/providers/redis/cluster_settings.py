"""What a ``RedisClusterCache`` alias's ``LOCATION`` and ``OPTIONS`` say: a ``ClusterSpec``.

The settings side of the cluster: parsed and checked here (a mistake is a
``ClusterSettingsError`` whose message names the fix; the system checks report the same
message as E015), and turned into clients by ``cluster_client``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import unquote, urlsplit

from agenthub_cache.providers.redis.connections import DEFAULT_SOCKET_CONNECT_TIMEOUT
from agenthub_cache.providers.redis.pools import DEFAULT_MAX_CONNECTIONS, DEFAULT_SOCKET_TIMEOUT


class ClusterSettingsError(ValueError):
    """A ``LOCATION``/``OPTIONS`` mistake of a cluster alias (the message names the fix)."""


@dataclass(frozen=True)
class ClusterSpec:
    """What a ``RedisClusterCache`` alias connects to, and how."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None
    socket_timeout: float = DEFAULT_SOCKET_TIMEOUT
    socket_connect_timeout: float = DEFAULT_SOCKET_CONNECT_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    pool_kwargs: tuple[tuple[str, Any], ...] = ()

    @cached_property
    def signature(self) -> str:
        return repr(self)

    @property
    def location(self) -> str:
        return ",".join(f"{host}:{port}" for host, port in self.nodes)

    def client_kwargs(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "password": self.password,
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.socket_connect_timeout,
            **dict(self.pool_kwargs),
        }


def parse_location(location: str | Sequence[str], alias: str) -> list[tuple[str, int, str]]:
    """``(host, port, url)`` of each startup node; a database other than 0 is an error."""
    urls = [location] if isinstance(location, str) else list(location)
    urls = [part.strip() for url in urls for part in str(url).split(",") if part.strip()]
    if not urls:
        raise ClusterSettingsError(
            f"CACHES[{alias!r}]['LOCATION'] names no startup node; give one URL or a list, "
            "e.g. ['redis://10.0.0.1:7000', 'redis://10.0.0.2:7000']."
        )
    found = []
    for url in urls:
        parts = urlsplit(url if "://" in url else f"redis://{url}")
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ClusterSettingsError(
                f"CACHES[{alias!r}]['LOCATION'] has {url!r}, not a redis:// URL of a cluster node."
            )
        db = parts.path.strip("/")
        if db not in ("", "0"):
            raise ClusterSettingsError(
                f"CACHES[{alias!r}]['LOCATION'] has {url!r} with database {db}: a Redis Cluster "
                "has only database 0. Remove the /db part of the URL (use KEY_PREFIX to keep "
                "caches apart)."
            )
        found.append((parts.hostname, parts.port or 6379, url))
    return found


def spec_from_settings(
    location: str | Sequence[str], options: dict[str, Any], alias: str
) -> ClusterSpec:
    """A ``ClusterSpec`` from the django-redis style ``LOCATION`` and ``OPTIONS``."""
    nodes = parse_location(location, alias)
    first = urlsplit(nodes[0][2] if "://" in nodes[0][2] else f"redis://{nodes[0][2]}")
    pool_kwargs = dict(options.get("CONNECTION_POOL_KWARGS") or {})
    max_connections = int(pool_kwargs.pop("max_connections", DEFAULT_MAX_CONNECTIONS))
    if max_connections < 1:
        raise ClusterSettingsError(
            f"CACHES[{alias!r}]['OPTIONS']['CONNECTION_POOL_KWARGS']['max_connections'] must "
            "be at least 1."
        )
    timeout = options.get("SOCKET_TIMEOUT")
    connect = options.get("SOCKET_CONNECT_TIMEOUT")
    return ClusterSpec(
        nodes=tuple((host, port) for host, port, _ in nodes),
        username=unquote(first.username) if first.username else None,
        password=options.get("PASSWORD") or (unquote(first.password) if first.password else None),
        socket_timeout=DEFAULT_SOCKET_TIMEOUT if timeout is None else float(timeout),
        socket_connect_timeout=DEFAULT_SOCKET_CONNECT_TIMEOUT
        if connect is None
        else float(connect),
        max_connections=max_connections,
        pool_kwargs=tuple(sorted(pool_kwargs.items())),
    )
