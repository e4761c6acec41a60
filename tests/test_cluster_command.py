"""``cache_namespaces`` on a Redis Cluster: list, stats (per node), keys, get, delete, find,
prune and flush, for a namespace in one slot and one spread over ``SLOTS = 8`` tags, beside
another namespace whose keys must survive."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from agenthub_cache import CacheService, namespaces
from tests.command_support import declared, run
from tests.conftest import unique_namespace

pytestmark = pytest.mark.extended


@dataclass
class Scene:
    alias: str
    one: CacheService  # SLOTS = 1
    spread: CacheService  # SLOTS = 8
    other: CacheService  # must never be touched


@pytest.fixture
def scene(cluster_alias: str) -> Iterator[Scene]:
    one, spread, other = (unique_namespace(stem) for stem in ("one", "spread", "other"))
    spaces = {one: {"TTL": 300}, spread: {"TTL": 300, "SLOTS": 8}, other: {"TTL": 300}}
    with declared(spaces, cache=cluster_alias):
        found = Scene(cluster_alias, namespaces[one], namespaces[spread], namespaces[other])
        yield found
        for service in (found.one, found.spread, found.other):
            service.clear()


def fill(service: CacheService, count: int) -> None:
    for n in range(count):
        service.set(f"user:{n}", {"n": n}, indexes={"group": str(n % 2)})


def test_list_shows_the_cluster_namespaces(scene: Scene) -> None:
    fill(scene.spread, 10)
    document = run("list", format="json").json()
    rows = {row["namespace"]: row for row in document["namespaces"]}
    assert rows[scene.spread.namespace]["cache"] == scene.alias
    assert rows[scene.spread.namespace]["entries"] == 10
    assert rows[scene.spread.namespace]["error"] is None
    assert "RedisClusterProvider" in rows[scene.spread.namespace]["provider"]


def test_stats_per_node(scene: Scene) -> None:
    fill(scene.spread, 40)
    document = run("stats", scene.spread.namespace, format="json").json()
    assert document["entries"] == 40
    assert document["indexes"] >= 2
    nodes = document["nodes"]
    assert len(nodes) >= 2  # 8 tags land on more than one of the 3 primaries
    assert sum(node["entries"] for node in nodes.values()) == 40
    assert "nodes" in run("stats", scene.spread.namespace).out


@pytest.mark.parametrize("which", ["one", "spread"])
def test_keys_get_delete_find_prune_flush(scene: Scene, which: str) -> None:
    service: CacheService = getattr(scene, which)
    name = service.namespace
    fill(service, 30)
    fill(scene.other, 5)
    keys_out = run("keys", name, format="json").json()
    listed = keys_out["keys"] if isinstance(keys_out, dict) else keys_out
    assert sorted(listed) == sorted(f"user:{n}" for n in range(30))
    assert "user:7" in run("get", name, "user:7").out
    run("delete", name, "user:0", "user:1")
    assert service.get_many(["user:0", "user:1"]) == {}
    found = run("find", name, "group", "1", format="json").json()["keys"]
    assert sorted(found) == sorted(f"user:{n}" for n in range(3, 30, 2))
    plain = service.provider.backend  # an entry evicted behind the app's back
    assert plain.delete(service.make_key("user:3"))
    assert run("prune", name, format="json").json()["pruned"] >= 1
    assert "user:3" not in service.find("group", "1")
    run("flush", name, interactive=False)
    assert service.count() == 0
    assert service.find("group", "0") == []
    assert scene.other.count() == 5  # another namespace on the same cluster: untouched
    assert sorted(scene.other.find("group", "0")) == ["user:0", "user:2", "user:4"]
