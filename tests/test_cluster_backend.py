"""``RedisClusterCache`` settings and values, without a server: django-redis's serializers and
compressors (a value one writes, the other reads), and the LOCATION rules."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache.backends.base import InvalidCacheBackendError
from django.core.exceptions import ImproperlyConfigured
from django_redis.cache import RedisCache

from agenthub_cache.backends import RedisClusterCache
from agenthub_cache.providers.redis.cluster_client import DEFAULT_MAX_CONNECTIONS

CODECS = [
    {},
    {"SERIALIZER": "django_redis.serializers.json.JSONSerializer"},
    {
        "SERIALIZER": "django_redis.serializers.json.JSONSerializer",
        "COMPRESSOR": "django_redis.compressors.zlib.ZlibCompressor",
    },
    {"COMPRESSOR": "django_redis.compressors.lzma.LzmaCompressor"},
]
VALUES: list[Any] = [1, -7, True, "text", {"a": [1, 2, "ü"]}, "x" * 5000, 2**70, None]


def wire(stored: Any) -> bytes:
    """What Redis gives back for a stored value: ints are stored (and read) as digits."""
    return str(stored).encode() if isinstance(stored, int) else stored


@pytest.mark.parametrize("options", CODECS)
def test_values_read_by_django_redis_and_back(options: dict[str, Any]) -> None:
    ours = RedisClusterCache("redis://127.0.0.1:7000", {"OPTIONS": options})
    theirs = RedisCache("redis://127.0.0.1:6390/0", {"OPTIONS": options}).client
    for value in VALUES:
        assert theirs.decode(wire(ours.encode(value))) == value
        assert ours.decode(wire(theirs.encode(value))) == value
        assert ours.encode(value) == theirs.encode(value)


def test_unknown_serializer_fails_at_once() -> None:
    with pytest.raises((ImportError, InvalidCacheBackendError)):
        RedisClusterCache("redis://h:1", {"OPTIONS": {"SERIALIZER": "no.such.Serializer"}})


def test_settings_become_the_cluster_spec() -> None:
    backend = RedisClusterCache(
        ["redis://u:secret@10.0.0.1:7000", "redis://10.0.0.2:7001, 10.0.0.3:7002"],
        {
            "OPTIONS": {
                "SOCKET_TIMEOUT": 2,
                "SOCKET_CONNECT_TIMEOUT": 1,
                "CONNECTION_POOL_KWARGS": {"max_connections": 7, "health_check_interval": 30},
            }
        },
    )
    spec = backend.spec()
    assert spec.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 7001), ("10.0.0.3", 7002))
    assert (spec.username, spec.password) == ("u", "secret")
    assert (spec.socket_timeout, spec.socket_connect_timeout) == (2.0, 1.0)
    assert spec.max_connections == 7
    assert dict(spec.pool_kwargs) == {"health_check_interval": 30}
    assert "secret" not in backend.connection.location  # no credentials in what is shown
    assert RedisClusterCache("redis://h:1", {}).spec().max_connections == DEFAULT_MAX_CONNECTIONS


def test_a_database_other_than_zero_is_refused_by_name() -> None:
    backend = RedisClusterCache("redis://127.0.0.1:7000/2", {})
    with pytest.raises(ImproperlyConfigured, match=r"database 2.*only database 0"):
        backend.spec()
