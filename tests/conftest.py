"""Real stores for every test: private servers on free loopback ports, SQLite and temp files.

``CACHES`` gets one alias per backend for the whole session (see ``BACKENDS``). Each test
works in namespaces of its own (``unique_namespace``), so nothing depends on test order and
no test touches data it did not write.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import caches
from django.core.management import call_command
from django.db import connections
from django.test.utils import override_settings

from agenthub_cache import CacheService, checks
from agenthub_cache.providers.redis.connections import connection_for
from agenthub_cache.providers.redis.scripts import SOURCES
from tests import servers

DB_CACHE_TABLE = "agenthub_cache_test_table"
BIG = {"MAX_ENTRIES": 10_000_000}

#: django-redis on a server without the commands Redis 6.0 lacks, whose scripts take their
#: branches for servers before Redis 7 (``before_redis7``).
BEFORE_REDIS7 = "redis_before7"
#: Contract-suite backends: alias -> what it needs. The suite runs once per alias.
BACKENDS = [
    "locmem",
    "db",
    "files",
    "memcached",
    "redis",
    "redis_django",
    BEFORE_REDIS7,
    "in_memory",
]
#: The two Redis aliases: django-redis's backend and Django's own RedisCache.
REDIS_BACKENDS = ["redis", "redis_django"]
#: The scripts' test of the server's version (``redis.REDIS_VERSION_NUM`` is new in Redis 7.0).
REDIS7_TEST = "local redis7 = redis.REDIS_VERSION_NUM ~= nil"
#: What Redis 6.0 does not have and the app uses where the server has it: PEXPIRETIME (7.0;
#: ``EXPIRE``'s GT option came with it) and ZMSCORE (6.2).
NEWER_COMMANDS = ("PEXPIRETIME", "ZMSCORE")


def pytest_report_header() -> str:
    """Which servers the tests start, so a run's log says what it ran on."""
    memcached = shutil.which("memcached") or "not installed (its tests skip)"
    return f"agenthub-cache test servers: redis {servers.redis_binary()}, memcached {memcached}"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[servers.Server]:
    server = servers.redis_server().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_before7_server() -> Iterator[servers.Server]:
    """A Redis 7 server with the commands Redis 6.0 lacks renamed away: a script or step
    that still sends one fails there instead of passing unnoticed."""
    renamed = [arg for command in NEWER_COMMANDS for arg in ("--rename-command", command, "")]
    server = servers.redis_server(None, *renamed).start()
    yield server
    server.stop()


def before_redis7(source: str) -> str:
    """``source`` as it runs on a server before Redis 7 (which lacks the version it tests)."""
    return source.replace(REDIS7_TEST, "local redis7 = false")


@pytest.fixture(scope="session")
def memcached_server() -> Iterator[servers.Server | None]:
    server = servers.memcached_server()
    if server is None:
        yield None
        return
    server.start()
    yield server
    server.stop()


def cache_settings(
    redis: servers.Server,
    memcached: servers.Server | None,
    files_dir: str,
    redis_before7: servers.Server,
) -> dict[str, Any]:
    caches_ = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "default",
            "OPTIONS": BIG,
        },
        "locmem": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "contract",
            "OPTIONS": BIG,
        },
        "db": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": DB_CACHE_TABLE,
            "OPTIONS": BIG,
        },
        "files": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": files_dir,
            "OPTIONS": BIG,
        },
        "redis": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"{redis.url}/1",
            "KEY_PREFIX": "dr",
        },
        "redis_django": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"{redis.url}/2",
            "KEY_PREFIX": "dj",
        },
        BEFORE_REDIS7: {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"{redis_before7.url}/1",
            "KEY_PREFIX": "d6",
        },
        "dummy": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
    }
    if memcached is not None:
        caches_["memcached"] = {
            "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
            "LOCATION": memcached.location,
            "KEY_PREFIX": "mc",
            "OPTIONS": checks.PYMEMCACHE_OPTIONS,
        }
    return caches_


@pytest.fixture(scope="session", autouse=True)
def stores(
    django_db_blocker: Any,
    redis_server: servers.Server,
    memcached_server: servers.Server | None,
    redis_before7_server: servers.Server,
) -> Iterator[dict[str, Any]]:
    """Point CACHES at the private stores and create the DB cache table, once per session."""
    files_dir = tempfile.mkdtemp(prefix="agenthub-cache-files-")
    configured = cache_settings(redis_server, memcached_server, files_dir, redis_before7_server)
    with django_db_blocker.unblock(), override_settings(CACHES=configured):
        call_command("createcachetable", verbosity=0)
        _connect_before_redis7()
        yield configured
        caches.close_all()
    shutil.rmtree(files_dir, ignore_errors=True)


def _connect_before_redis7() -> None:
    """Create the ``BEFORE_REDIS7`` alias's connection (one per server for the whole process)
    from the scripts as they run before Redis 7: it registers them when created, sync and
    async alike."""
    older = {name: before_redis7(source) for name, source in SOURCES.items()}
    assert older != SOURCES, f"no script tests the server's version with {REDIS7_TEST!r}"
    with pytest.MonkeyPatch.context() as patch:
        for name, source in older.items():
            patch.setitem(SOURCES, name, source)
        connection_for(caches[BEFORE_REDIS7])


#: The ``CACHES`` alias of the Redis Cluster the extended suites start (``cluster_alias``).
CLUSTER_ALIAS = "cluster"


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[servers.Cluster]:
    """3 primaries + 3 replicas on free loopback ports, for the ``extended`` cluster suites."""
    cluster = servers.redis_cluster()
    yield cluster
    cluster.stop()


def cluster_cache_settings(cluster: servers.Cluster, **extra: Any) -> dict[str, Any]:
    return {
        "BACKEND": "agenthub_cache.backends.RedisClusterCache",
        "LOCATION": cluster.urls[:2],  # startup nodes: the rest is discovered
        "KEY_PREFIX": "cl",
        "OPTIONS": {"SOCKET_TIMEOUT": 2, "SOCKET_CONNECT_TIMEOUT": 1},
        **extra,
    }


@pytest.fixture(scope="session")
def cluster_alias(stores: dict[str, Any], redis_cluster: servers.Cluster) -> Iterator[str]:
    """``CACHES[CLUSTER_ALIAS]`` on the test cluster, for the rest of the session."""
    configured = {**stores, CLUSTER_ALIAS: cluster_cache_settings(redis_cluster)}
    with override_settings(CACHES=configured):
        yield CLUSTER_ALIAS
        caches.close_all()


def run_threads(count: int, target: Callable[[], Any]) -> None:
    """Run ``target`` in ``count`` threads at once; each closes its own cache clients after."""
    barrier = threading.Barrier(count)

    def run() -> None:
        try:
            barrier.wait()
            target()
        finally:
            caches.close_all()
            connections.close_all()  # the DB cache's connection of this thread

    threads = [threading.Thread(target=run) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def sleep_past(service: CacheService, ttl: float) -> None:
    """Sleep until an entry written now with ``ttl`` has expired on the service's store: the
    seconds it stores (memcached and the database cache keep one more) and a margin for a loaded machine."""
    time.sleep(service.provider.stored_seconds(ttl) + 0.6)


def late_in_a_second(after: float = 0.9) -> float:
    """Wait until the clock is late in a second (its fraction past ``after``); return the time.

    A store that drops the fraction of an expiry (Django's DatabaseCache) or ticks once a
    second (memcached) shows an early expiry only when an entry is written then."""
    while not after < (now := time.time()) % 1 < after + (1 - after) / 2:
        time.sleep(0.01)
    return now


def shared_database() -> dict[str, str]:
    """The environment variable that points a worker process at this process's SQLite file:
    the file itself, since pytest-django names it per xdist worker (``tests.settings``)."""
    return {"AGENTHUB_CACHE_TEST_DB": str(settings.DATABASES["default"]["NAME"])}


def unique_namespace(stem: str = "t") -> str:
    return f"{stem}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, stores: dict[str, Any]) -> str:
    """One contract-suite backend alias (``in_memory`` is ``CacheType.IN_MEMORY``)."""
    alias: str = request.param
    if alias == "memcached" and alias not in stores:
        pytest.skip(
            "memcached is not installed (apt-get install memcached); its contract tests did not run"
        )
    return alias


@pytest.fixture(params=REDIS_BACKENDS)
def redis_backend(request: pytest.FixtureRequest) -> str:
    """Each Redis alias in turn, for the Redis provider's own tests."""
    return str(request.param)


def make_service(alias: str, namespace: str | None = None, **kwargs: Any) -> CacheService:
    namespace = namespace or unique_namespace()
    if alias == "in_memory":
        return CacheService(namespace, cache_type="in_memory", **kwargs)
    return CacheService(namespace, cache=alias, **kwargs)


@pytest.fixture
def service(backend: str) -> Iterator[CacheService]:
    svc = make_service(backend, default_ttl=60)
    yield svc
    svc.clear()
