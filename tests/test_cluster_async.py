"""The cluster under concurrency, and the deployment checks against the real test cluster:
1,000 tasks on a pool of 4 connections per node wait for a connection (never
``MaxConnectionsError``); a healthy cluster passes E016; an ``allkeys-*`` policy is W003."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from django.test.utils import override_settings

from agenthub_cache import checks, checks_cluster
from tests import servers
from tests.conftest import cluster_cache_settings, make_service, unique_namespace

pytestmark = pytest.mark.extended

TASKS = 1000


@pytest.fixture
def small_pool(stores: dict[str, Any], redis_cluster: servers.Cluster) -> Iterator[str]:
    options = {"SOCKET_TIMEOUT": 5, "CONNECTION_POOL_KWARGS": {"max_connections": 4}}
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
