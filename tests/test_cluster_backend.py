"""``RedisClusterCache`` settings and values, without a server: django-redis's serializers and
compressors (a value one writes, the other reads), and the LOCATION rules."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.core.cache.backends.base import InvalidCacheBackendError
from django.core.exceptions import ImproperlyConfigured
from django.test.utils import override_settings
from django_redis.cache import RedisCache
from redis import exceptions as redis_errors
from redis.crc import key_slot

from agenthub_cache import CacheRefused, CacheService, CacheUnavailable
from agenthub_cache.backends import RedisClusterCache
from agenthub_cache.providers.redis.pools import DEFAULT_MAX_CONNECTIONS

CLUSTER = "agenthub_cache.backends.RedisClusterCache"
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


def test_a_backend_finds_its_alias_by_its_class() -> None:
    """The alias a cluster backend names in its errors is the one whose BACKEND is its class:
    it compared the end of the dotted path with its class name, so another package's backend
    of that name on the same LOCATION (here one that is not installed) was taken for it."""
    location = "redis://10.0.0.1:7000"
    caches_ = {
        **settings.CACHES,
        "other": {"BACKEND": "otherpackage.cache.RedisClusterCache", "LOCATION": location},
        "cluster": {"BACKEND": "agenthub_cache.backends.RedisClusterCache", "LOCATION": location},
    }
    with override_settings(CACHES=caches_):
        assert RedisClusterCache(location, {}).alias() == "cluster"


def test_a_database_other_than_zero_is_refused_by_name() -> None:
    backend = RedisClusterCache("redis://127.0.0.1:7000/2", {})
    with pytest.raises(ImproperlyConfigured, match=r"database 2.*only database 0"):
        backend.spec()


#: What each reply of a cluster becomes: one that is down, or a slot that moves, is an outage
#: of the call; any other error reply is a refusal (never silenced by FAIL_SILENTLY).
CLUSTER_REPLIES = [
    (redis_errors.ClusterDownError("CLUSTERDOWN The cluster is down"), CacheUnavailable),
    (redis_errors.MasterDownError("MASTERDOWN Link with MASTER is down"), CacheUnavailable),
    (
        redis_errors.TryAgainError("TRYAGAIN Multiple keys request during rehashing"),
        CacheUnavailable,
    ),
    (redis_errors.ClusterError("TTL exhausted."), CacheUnavailable),
    (redis_errors.AskError("3999 127.0.0.1:7001"), CacheUnavailable),
    (redis_errors.ConnectionError("Connection refused"), CacheUnavailable),
    (redis_errors.OutOfMemoryError("OOM command not allowed"), CacheRefused),
    (redis_errors.NoPermissionError("NOPERM no permissions"), CacheRefused),
    (redis_errors.ResponseError("CROSSSLOT Keys don't hash to the same slot"), CacheRefused),
    (redis_errors.AuthenticationError("WRONGPASS invalid password"), CacheRefused),
]


@pytest.mark.parametrize(("error", "expected"), CLUSTER_REPLIES, ids=lambda e: type(e).__name__)
def test_cluster_errors_are_outages_or_refusals(
    error: Exception, expected: type[Exception], monkeypatch: pytest.MonkeyPatch
) -> None:
    caches_ = {**settings.CACHES, "cl": {"BACKEND": CLUSTER, "LOCATION": "redis://127.0.0.1:1"}}
    with override_settings(CACHES=caches_):
        loud = CacheService("cl-errors", default_ttl=60, cache="cl")
        silent = CacheService("cl-errors", default_ttl=60, cache="cl", fail_silently=True)

        def fail(*args: Any, **kwargs: Any) -> Any:
            raise error

        for service in (loud, silent):
            monkeypatch.setattr(service.provider, "get", fail)
        with pytest.raises(expected, match="'cl'") as raised:
            loud.get("k")
        assert raised.value.__cause__ is error
        if expected is CacheUnavailable:
            assert silent.get("k", "dflt") == "dflt"
        else:
            with pytest.raises(CacheRefused):
                silent.get("k", "dflt")


def test_every_key_of_a_namespace_tag_is_in_one_slot() -> None:
    """The layout's stored prefix is the tagged one: an entry, its meta, an index set and a
    lock share a slot (a stored prefix without the tag made every script CROSSSLOT)."""
    caches_ = {**settings.CACHES, "cl": {"BACKEND": CLUSTER, "LOCATION": "redis://127.0.0.1:1"}}
    with override_settings(CACHES=caches_):
        layout = CacheService("cl-layout", default_ttl=60, cache="cl").provider.layout
    assert layout.prefix is not None
    assert "{cl-layout/0}" in layout.prefix
    stored = [layout.entry("a"), layout.meta("a"), layout.index("g", "1"), layout.lock("x")]
    assert all(key.startswith(layout.prefix) for key in stored)
    assert len({key_slot(key.encode()) for key in stored}) == 1
