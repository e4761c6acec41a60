"""Flush on the cluster lists a tag's keys by its slot (CLUSTER GETKEYSINSLOT): keys of others
in the same slot (another namespace whose tag hashes there, a plain key with the same hash
tag) are never touched, however many there are (past ``SLOT_KEPT_LIMIT`` it goes back to
SCAN), and a namespace's every key goes, indexes drained."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import caches
from redis.crc import key_slot

from agenthub_cache import CacheService, keys
from agenthub_cache.providers.redis import flush
from tests.conftest import make_service, unique_namespace

pytestmark = pytest.mark.extended


def slot_of(service: CacheService, tag: int = 0) -> int:
    provider: Any = service.provider
    return key_slot(provider.layouts[tag].listed_prefix().encode())


def neighbour(alias: str, slot: int) -> CacheService:
    """An ad hoc namespace whose (only) tag hashes to ``slot``."""
    for n in range(1_000_000):
        name = f"nb{n}"
        if key_slot(keys.tagged_prefix(name, 0).encode()) == slot:
            return make_service(alias, name, default_ttl=60)
    raise AssertionError("no neighbour found")


@pytest.fixture
def crowded(cluster_alias: str) -> Iterator[tuple[CacheService, CacheService]]:
    mine = make_service(cluster_alias, unique_namespace("fl"), default_ttl=60)
    theirs = neighbour(cluster_alias, slot_of(mine))
    theirs.clear()
    yield mine, theirs
    mine.clear()
    theirs.clear()


@pytest.mark.parametrize("foreign", [1500, flush.SLOT_KEPT_LIMIT + 500])
def test_flush_by_slot_keeps_every_other_key_in_the_slot(
    crowded: tuple[CacheService, CacheService], foreign: int
) -> None:
    mine, theirs = crowded
    assert slot_of(mine) == slot_of(theirs)
    plain = caches[mine.cache_alias]
    tag = "{" + keys.tagged_prefix(mine.namespace, 0).split("{")[1].split("}")[0] + "}"
    strangers = {f"stranger:{tag}:{n}": n for n in range(foreign)}  # same hash tag, not ours
    plain.set_many(strangers, 60)
    theirs.set_many({f"t{n}": n for n in range(1200)})
    theirs.set("indexed", 1, indexes={"g": "x"})
    mine.set_many({f"m{n}": n for n in range(2500)})
    for n in range(300):
        mine.set(f"i{n}", n, indexes={"g": str(n % 3)})
    progress: list[int] = []
    assert mine.clear(progress=progress.append) == 2800
    assert progress[-1] == 2800
    assert mine.count() == 0
    assert mine.find("g", "1") == []
    assert theirs.count() == 1201
    assert theirs.find("g", "x") == ["indexed"]
    assert plain.get_many(list(strangers)) == strangers
    plain.delete_many(list(strangers))
