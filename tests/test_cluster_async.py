"""The cluster under concurrency, and the deployment checks against the real test cluster:
1,000 tasks on a pool of 4 connections per node wait for a connection (never
``MaxConnectionsError``) and no node ever holds more than 4; a healthy cluster passes E016;
an ``allkeys-*`` policy is W003."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.test.utils import override_settings

from agenthub_cache import CacheUnavailable, checks, checks_cluster, namespaces
from tests import servers
from tests.conftest import cluster_cache_settings, make_service, unique_namespace

pytestmark = pytest.mark.extended

TASKS = 1000
#: The socket timeout of these aliases, which also caps how long a task waits for a free
#: connection: 1,000 tasks queue behind 4 connections, so the last waits for most of the
#: others' work; on a loaded 2-CPU machine that took longer than 5 s. These tests are about
#: the cap and waiting, not the bound on the wait (tests/test_redis_async_pool.py has that).
QUEUE_TIMEOUT = 30


@pytest.fixture
def small_pool(stores: dict[str, Any], redis_cluster: servers.Cluster) -> Iterator[str]:
    options = {"SOCKET_TIMEOUT": QUEUE_TIMEOUT, "CONNECTION_POOL_KWARGS": {"max_connections": 4}}
    configured = {**stores, "tiny": cluster_cache_settings(redis_cluster, OPTIONS=options)}
    with override_settings(CACHES=configured):
        yield "tiny"


async def test_a_thousand_tasks_wait_for_four_connections(small_pool: str) -> None:
    service = make_service(small_pool, unique_namespace("many"), default_ttl=60)
    try:
        await asyncio.gather(
            *(service.aset(f"k{n}", n, indexes={"g": str(n % 5)}) for n in range(TASKS))
        )
        values = await asyncio.gather(*(service.aget(f"k{n}") for n in range(TASKS)))
        assert values == list(range(TASKS))
        counts = await asyncio.gather(*(service.aincr("hits") for _ in range(TASKS)))
        assert sorted(counts) == list(range(1, TASKS + 1))
        assert len(await service.afind("g", "3")) == TASKS // 5
    finally:
        await service.aclear()


CAP = 4


@pytest.fixture
def capped(stores: dict[str, Any], redis_cluster: servers.Cluster) -> Iterator[tuple[str, str]]:
    """A namespace spread over every primary (SLOTS 16) on an alias with max_connections 4,
    whose connections carry a name of their own; the namespace's and that name."""
    name, namespace = f"ahc-cap-{uuid.uuid4().hex[:10]}", unique_namespace("cap")
    pool = {"max_connections": CAP, "client_name": name}
    options = {"SOCKET_TIMEOUT": QUEUE_TIMEOUT, "CONNECTION_POOL_KWARGS": pool}
    configured = {**stores, "capped": cluster_cache_settings(redis_cluster, OPTIONS=options)}
    declared = {namespace: {"CACHE": "capped", "TTL": 60, "SLOTS": 16}}
    with override_settings(CACHES=configured, AGENTHUB_CACHE={"NAMESPACES": declared}):
        yield namespace, name


def connections_per_node(cluster: servers.Cluster, name: str) -> dict[str, int]:
    """How many connections named ``name`` each node has open now (CLIENT LIST)."""
    import redis

    counts = {}
    for server in cluster.nodes:
        with redis.Redis(host=server.host, port=server.port) as client:
            listed = client.client_list()
        counts[server.location] = sum(1 for c in listed if c.get("name") == name)
    return counts


async def test_no_node_ever_holds_more_than_max_connections(
    capped: tuple[str, str], redis_cluster: servers.Cluster
) -> None:
    """1,000 tasks mixing single commands and scripts (the cluster client) with multi-step
    operations (a node's plain client), on every primary: the connections to each node,
    counted by the servers themselves while the load runs and after it, never exceed
    max_connections. The node clients of the steps had pools of their own beside the
    cluster client's (up to twice the cap), and redis-py kept the connection it read the
    slot map on beside the node's own (one over)."""
    namespace, name = capped
    service = namespaces[namespace]
    peak: dict[str, int] = {}
    stop = threading.Event()

    def sample() -> None:
        while True:
            for node, count in connections_per_node(redis_cluster, name).items():
                peak[node] = max(peak.get(node, 0), count)
            if stop.wait(0.02):
                return

    async def one(n: int) -> None:
        await service.aset(f"k{n}", n, indexes={"g": str(n % 5)})  # a script
        assert await service.aget_or_set(f"k{n}", -1) == n  # steps
        assert f"k{n}" in await service.afind("g", str(n % 5))  # steps
        assert await service.aget(f"k{n}") == n  # a command

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        await asyncio.gather(*(one(n) for n in range(TASKS)))
        assert await service.acount() == TASKS
    finally:
        stop.set()
        await asyncio.to_thread(sampler.join)
        await service.aclear()
    for node, count in connections_per_node(redis_cluster, name).items():
        peak[node] = max(peak.get(node, 0), count)
    primaries = [server.location for server in redis_cluster.primaries]
    assert all(peak[node] > 0 for node in primaries), peak  # the load reached every primary
    assert max(peak.values()) <= CAP, peak


@pytest.fixture
def one_connection(stores: dict[str, Any], redis_cluster: servers.Cluster) -> Iterator[str]:
    options = {"SOCKET_TIMEOUT": 0.5, "CONNECTION_POOL_KWARGS": {"max_connections": 1}}
    configured = {**stores, "one": cluster_cache_settings(redis_cluster, OPTIONS=options)}
    with override_settings(CACHES=configured):
        yield "one"


async def test_a_task_waits_for_a_connection_up_to_the_socket_timeout(one_connection: str) -> None:
    """max_connections 1, held by another task: a call waits for it (in turn, behind the
    waiters before it), and past SOCKET_TIMEOUT fails as an outage naming the cap; once it
    is given back, calls go through again, the single-key ones (straight to their slot's
    primary) and the generic ones alike."""
    service = make_service(one_connection, unique_namespace("onecon"), default_ttl=60)
    assert await service.aset("k", 1)
    cluster: Any = service.provider.connection.async_handle().client  # type: ignore[attr-defined]
    assert await cluster.admit()  # another task's command holds the only connection
    try:
        with pytest.raises(CacheUnavailable, match="no free connection") as raised:
            await service.aget("k")
        assert "(1 in use)" in str(raised.value)
        waiting = asyncio.create_task(service.aget("k"))
        await asyncio.sleep(0.05)
        assert not waiting.done()
    finally:
        cluster.leave(True)
    assert await waiting == 1
    assert await service.aget("k") == 1
    assert await service.ahas_key("k")
    assert (cluster._gate.free, len(cluster._gate.waiters)) == (1, 0)
    await service.aclear()


def test_a_healthy_cluster_passes_the_deploy_check(cluster_alias: str) -> None:
    assert checks_cluster.check_redis_cluster() == []


def test_allkeys_eviction_on_the_cluster_warns(
    cluster_alias: str, redis_cluster: servers.Cluster
) -> None:
    import redis

    clients = [redis.Redis(host=s.host, port=s.port) for s in redis_cluster.primaries]
    try:
        assert not [m for m in checks.check_redis_eviction() if m.id == checks.W003]
        clients[1].config_set("maxmemory-policy", "allkeys-lru")  # our own test server
        setting = {"CACHE": cluster_alias, "NAMESPACES": {"x": {}}}
        with override_settings(AGENTHUB_CACHE=setting):
            warned = [m for m in checks.check_redis_eviction() if m.id == checks.W003]
        assert len(warned) == 1
        assert repr(cluster_alias) in warned[0].msg
    finally:
        clients[1].config_set("maxmemory-policy", "noeviction")
        for client in clients:
            client.close()
