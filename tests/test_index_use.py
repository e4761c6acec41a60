"""The index-use record of each namespace (``providers/index_use.py``), on real stores.

What writes it and when: a new generation gets one before it is published, and a flush carries
the namespace's state into the new one (memcached, the file cache); the database cache writes
a missing one, drops it with the namespace unless a process may still trust it, and an indexed
write marks it again when it finds it rewritten; LocMem keeps the state in the process.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.core.cache import caches

from agenthub_cache import CacheService
from agenthub_cache.providers import index_use
from tests.conftest import make_service


def record(service: CacheService) -> Any:
    provider: Any = service.provider
    return caches[service.cache_alias].get(provider.index_use_key(provider.scope()))


@pytest.mark.parametrize("alias", ["memcached", "files"])
def test_a_generation_starts_with_a_record_that_a_flush_carries_over(
    alias: str, stores: dict[str, Any]
) -> None:
    if alias not in stores:
        pytest.skip("memcached is not installed (apt-get install memcached)")
    plain, indexed = make_service(alias), make_service(alias)
    before = time.time()
    plain.set("k", 1)
    indexed.set("k", 1)
    fresh = index_use.never_fields(record(plain))
    assert fresh is not None
    assert fresh[0] >= before + index_use.GRACE_SECONDS  # trusted after its first second
    assert fresh[1] == 0.0  # nothing earlier shares a new generation: nobody to wait for
    indexed.set("j", 2, indexes={"g": "v"})  # within that second: waits for nobody
    assert record(indexed) == (index_use.INDEXED, 0.0)
    plain.clear()
    indexed.clear()
    assert index_use.never_fields(record(plain)) is not None
    assert record(indexed) == (index_use.INDEXED, 0.0)  # no wait after a flush either
    assert indexed.find("g", "v") == []


def test_a_db_flush_drops_the_record_unless_a_process_may_still_trust_it() -> None:
    indexed = make_service("db")
    indexed.set("k", 1, indexes={"g": "v"})  # a new namespace, indexed at once: settled
    assert record(indexed) == (index_use.INDEXED, 0.0)
    indexed.clear()
    assert record(indexed) is None  # gone with the namespace's other rows
    used = make_service("db")
    used.set("k", 1)
    provider: Any = used.provider
    long_ago = time.time() - 10 * index_use.GRACE_SECONDS
    caches["db"].set(provider.index_use_key(None), index_use.new_record(long_ago), None)
    before = time.time()
    used.clear()  # another process may have read that NEVER a moment ago, and trust it
    kept = index_use.never_fields(record(used))
    assert kept is not None
    assert kept[1] >= before + index_use.TRUST_SECONDS  # the next first indexed write waits
    used.clear()


def test_a_db_indexed_write_marks_again_a_record_rewritten_meanwhile() -> None:
    """Culling can delete the record (and every meta record); a process that then finds it
    missing writes a NEVER. This process still holds its INDEXED reading: its next indexed
    write must not file beside that NEVER, which others would trust."""
    service = make_service("db")
    service.set("a", 1, indexes={"g": "v"})
    provider: Any = service.provider
    long_ago = time.time() - 10 * index_use.GRACE_SECONDS
    caches["db"].set(provider.index_use_key(None), index_use.new_record(long_ago), None)
    service.set("b", 2, indexes={"g": "v"})
    assert index_use.is_indexed(record(service))
    assert sorted(service.find("g", "v")) == ["a", "b"]
    service.clear()


def test_locmem_keeps_the_state_in_the_process_and_a_flush_resets_it() -> None:
    service = make_service("locmem")
    provider: Any = service.provider
    service.set("k", 1)
    assert provider.never_indexed(None)
    service.set("k", 2, indexes={"g": "v"})
    assert not provider.never_indexed(None)
    service.set("k", 3)  # checked, and unfiled
    assert service.find("g", "v") == []
    service.clear()
    assert provider.never_indexed(None)
