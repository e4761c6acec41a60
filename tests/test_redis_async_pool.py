"""Async pools at any concurrency: tasks past ``max_connections`` wait, never fail.

Each alias here names its connections (``client_name``) so the server's CLIENT LIST counts
this pool's connections alone, whatever else the suite has open.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.test.utils import override_settings

from agenthub_cache import CacheService, CacheUnavailable
from agenthub_cache.providers.redis import RedisProvider
from tests import servers
from tests.conftest import unique_namespace

pytestmark = pytest.mark.filterwarnings("error")

CAP = 8
TASKS = 1_000
#: The socket timeout of the capped alias, which also caps a task's wait for a connection:
#: 1,000 tasks queue behind 8 connections, and on a loaded 2-CPU machine the last can wait
#: for seconds. The bound on the wait has a test of its own (one connection, 0.5 s).
QUEUE_TIMEOUT = 30.0


def capped_alias(
    kind: str, redis_server: servers.Server, name: str, cap: int, socket_timeout: float
) -> dict[str, Any]:
    pool = {"max_connections": cap, "client_name": name}
    if kind == "redis":
        return {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"{redis_server.url}/3",
            "OPTIONS": {
                "CONNECTION_POOL_KWARGS": pool,
                "SOCKET_TIMEOUT": socket_timeout,
                "SOCKET_CONNECT_TIMEOUT": socket_timeout,
            },
        }
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": f"{redis_server.url}/3",
        "OPTIONS": {**pool, "socket_timeout": socket_timeout},
    }


def named_clients(redis_server: servers.Server, name: str) -> int:
    with redis.Redis(host=redis_server.host, port=redis_server.port) as probe:
        return sum(1 for c in probe.client_list() if c.get("name") == name)


class Sampler(threading.Thread):
    """Counts the server's connections of one name every few ms; ``peak`` is the most seen."""

    def __init__(self, redis_server: servers.Server, name: str) -> None:
        super().__init__(daemon=True)
        self.server, self.name, self.peak, self.samples = redis_server, name, 0, 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, named_clients(self.server, self.name))
            self.samples += 1
            time.sleep(0.002)

    def __enter__(self) -> Sampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.join(10)


@pytest.fixture
def capped(
    redis_backend: str, stores: dict[str, Any], redis_server: servers.Server
) -> Iterator[tuple[CacheService, str]]:
    name = f"capped-{uuid.uuid4().hex[:8]}"
    alias = capped_alias(redis_backend, redis_server, name, CAP, QUEUE_TIMEOUT)
    with override_settings(CACHES={**stores, "capped": alias}):
        svc = CacheService(unique_namespace("pool"), default_ttl=60, cache="capped")
        yield svc, name
        svc.clear()


def test_thousands_of_concurrent_tasks_wait_for_the_capped_pool(
    capped: tuple[CacheService, str], redis_server: servers.Server
) -> None:
    svc, name = capped
    svc.set_many({f"r{n}": n for n in range(TASKS)})

    sync_side = named_clients(redis_server, name)  # the sync pool's, idle from here on

    async def load() -> tuple[list[Any], int]:
        with Sampler(redis_server, name) as sampler:
            results = await asyncio.gather(
                *(svc.aget(f"r{n}") for n in range(TASKS)),
                *(svc.aset(f"w{n}", n) for n in range(TASKS)),
                *(svc.aset(f"i{n}", n, indexes={"mod": str(n % 10)}) for n in range(TASKS)),
                return_exceptions=True,
            )
            await svc.aclose()
        return results, sampler.peak - sync_side

    results, peak = asyncio.run(load())
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    assert results[:TASKS] == list(range(TASKS))
    assert results[TASKS:] == [True] * (2 * TASKS)
    assert svc.get_many([f"w{n}" for n in range(TASKS)]) == {f"w{n}": n for n in range(TASKS)}
    assert sorted(int(k[1:]) for k in svc.find("mod", "7")) == list(range(7, TASKS, 10))
    assert 1 <= peak <= CAP  # the sampler saw the pool at work, never past its cap


def test_the_wait_for_a_free_connection_is_bounded_by_the_socket_timeout(
    redis_backend: str, stores: dict[str, Any], redis_server: servers.Server
) -> None:
    alias = capped_alias(redis_backend, redis_server, f"one-{uuid.uuid4().hex[:8]}", 1, 0.5)
    with override_settings(CACHES={**stores, "one": alias}):
        strict = CacheService(unique_namespace("wait"), default_ttl=60, cache="one")
        silent = CacheService(
            unique_namespace("wait"), default_ttl=60, cache="one", fail_silently=True
        )

        async def held() -> tuple[float, Any, Any]:
            assert await strict.aset("k", "v")
            provider = strict.provider
            assert isinstance(provider, RedisProvider)
            pool = provider.connection.async_handle().client.connection_pool
            taken = await pool.get_connection()  # the pool's only connection, held
            started = time.monotonic()
            with pytest.raises(CacheUnavailable, match="No connection available"):
                await strict.aget("k")
            waited = time.monotonic() - started
            fallback = await silent.aget("k", "default")
            await pool.release(taken)
            after = await strict.aget("k")
            await strict.aclose()
            return waited, fallback, after

        waited, fallback, after = asyncio.run(held())
        strict.clear()
    assert 0.4 <= waited < 2.0
    assert fallback == "default"
    assert after == "v"


def test_a_task_queued_while_a_release_waits_for_the_pool_lock_is_woken(
    redis_backend: str, stores: dict[str, Any], redis_server: servers.Server
) -> None:
    """A release skips the pool's condition while nobody is queued; a task that queues while
    that release waits for the pool's lock must still be woken when it lands, not left to time
    out (0.5 s here) with the only connection free."""
    alias = capped_alias(redis_backend, redis_server, f"race-{uuid.uuid4().hex[:8]}", 1, 0.5)
    with override_settings(CACHES={**stores, "race": alias}):
        svc = CacheService(unique_namespace("race"), default_ttl=60, cache="race")

        async def race() -> Any:
            assert await svc.aset("k", "v")
            provider = svc.provider
            assert isinstance(provider, RedisProvider)
            pool = provider.connection.async_handle().client.connection_pool
            taken = await pool.get_connection()  # the only connection, held
            lock = getattr(pool, "_lock", None)  # redis-py's pool lock (5.x releases without it)
            if lock is not None:
                await lock.acquire()  # the release below waits for it
            releasing = asyncio.ensure_future(pool.release(taken))
            await asyncio.sleep(0)
            waiting = asyncio.ensure_future(svc.aget("k"))  # no free connection yet: queues
            await asyncio.sleep(0.05)
            if lock is not None:
                lock.release()
            await releasing
            value = await asyncio.wait_for(waiting, 5)
            await svc.aclose()
            return value

        value = asyncio.run(race())
        svc.clear()
    assert value == "v"


def test_the_sync_side_shares_the_backends_own_pool(
    stores: dict[str, Any], redis_server: servers.Server
) -> None:
    """No second sync pool beside django-redis's, with or without timeouts in OPTIONS: the
    alias's ``max_connections`` caps the app's sync connections and the backend's together.
    (Databases no other test here uses: django-redis 5.4 shares pools by URL alone.)"""
    pool = {"CONNECTION_POOL_KWARGS": {"max_connections": 3}}
    aliases = {
        "no_timeouts": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"{redis_server.url}/5",
            "OPTIONS": pool,
        },
        "timeouts": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"{redis_server.url}/6",
            "OPTIONS": {**pool, "SOCKET_TIMEOUT": 2, "SOCKET_CONNECT_TIMEOUT": 2},
        },
    }
    with override_settings(CACHES={**stores, **aliases}):
        from django.core.cache import caches

        for alias, timeout in (("no_timeouts", 5.0), ("timeouts", 2)):
            svc = CacheService(unique_namespace("one"), default_ttl=60, cache=alias)
            provider = svc.provider
            assert isinstance(provider, RedisProvider)
            ours = provider.connection.client.connection_pool
            assert ours is caches[alias].client.get_client(write=True).connection_pool  # type: ignore[attr-defined]
            assert ours.max_connections == 3
            assert ours.connection_kwargs["socket_timeout"] == timeout
            assert svc.set("k", 1)
            assert svc.get("k") == 1
            svc.clear()
