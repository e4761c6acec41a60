"""Resharding: a namespace's slot moves to another primary while it is used (CLUSTER SETSLOT
IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE). Mid-move, redis-py follows ASK for single-key
calls and Lua calls alike; a script whose keys are split between the two nodes gets TRYAGAIN,
an outage of that call only. After the move every call works, on the new owner, with no
restart; no value is lost or wrong and no index points at a missing entry. The slot is moved
back at the end, so the shared test cluster keeps its layout."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from redis.crc import key_slot

from agenthub_cache import CacheUnavailable
from tests import servers
from tests.conftest import make_service, unique_namespace
from tests.test_cluster_failover import assert_prune_clean

pytestmark = pytest.mark.extended


def node_ids(cluster: servers.Cluster) -> dict[int, str]:
    ids = {}
    for server in cluster.primaries:
        with redis.Redis(host=server.host, port=server.port) as client:
            ids[server.port] = client.execute_command("CLUSTER MYID").decode()
    return ids


def move_slot(
    cluster: servers.Cluster, slot: int, source: servers.Server, target: servers.Server, part: float
) -> None:
    """Start moving ``slot`` and migrate a ``part`` of its keys (1.0: all, then hand it over)."""
    ids = node_ids(cluster)
    with (
        redis.Redis(host=source.host, port=source.port) as src,
        redis.Redis(host=target.host, port=target.port) as dst,
    ):
        dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", ids[source.port])
        src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", ids[target.port])
        total = int(src.execute_command("CLUSTER COUNTKEYSINSLOT", slot))
        goal = total - int(total * part)
        while int(src.execute_command("CLUSTER COUNTKEYSINSLOT", slot)) > goal:
            batch = src.execute_command("CLUSTER GETKEYSINSLOT", slot, 50)
            batch = batch[
                : max(1, int(src.execute_command("CLUSTER COUNTKEYSINSLOT", slot)) - goal)
            ]
            src.execute_command("MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *batch)


def finish_move(cluster: servers.Cluster, slot: int, target: servers.Server) -> None:
    ids = node_ids(cluster)
    for server in cluster.primaries:
        with redis.Redis(host=server.host, port=server.port) as client:
            client.execute_command("CLUSTER SETSLOT", slot, "NODE", ids[target.port])


def test_slot_moved_while_in_use(cluster_alias: str, redis_cluster: servers.Cluster) -> None:
    service = make_service(cluster_alias, unique_namespace("move"), default_ttl=300)
    provider: Any = service.provider
    prefix = provider.layout.listed_prefix()
    slot = key_slot(prefix.encode())
    owner = provider.connection.node(prefix).location
    source = next(s for s in redis_cluster.primaries if s.location == owner)
    target = next(s for s in redis_cluster.primaries if s.location != owner)
    values = {f"k{n}": {"n": n} for n in range(200)}
    for key, value in values.items():
        service.set(key, value, indexes={"g": str(value["n"] % 2)})
    try:
        move_slot(redis_cluster, slot, source, target, 0.5)  # half the keys on each node
        for key, value in values.items():  # ASK, followed by redis-py
            assert service.get(key) == value
        outcomes = {"ok": 0, "unavailable": 0}
        for n in range(0, 200, 10):
            try:
                service.set(f"k{n}", {"n": n}, indexes={"g": str(n % 2)})
                outcomes["ok"] += 1
            except CacheUnavailable:  # TRYAGAIN: the script's keys are on both nodes
                outcomes["unavailable"] += 1
        move_slot(redis_cluster, slot, source, target, 1.0)
        finish_move(redis_cluster, slot, target)
        # After the move: everything works on the new owner, in this process.
        assert service.get_many(list(values)) == values
        assert sorted(service.find("g", "0")) == sorted(f"k{n}" for n in range(0, 200, 2))
        assert service.set("after", 1, indexes={"g": "0"})
        assert service.count() == 201
        service.prune()
        assert_prune_clean(service)
        assert provider.connection.node(prefix).location == target.location
        print(f"mid-move writes: {outcomes}")
    finally:
        service.clear()
        move_slot(redis_cluster, slot, target, source, 1.0)  # leave the cluster as it was
        finish_move(redis_cluster, slot, source)
