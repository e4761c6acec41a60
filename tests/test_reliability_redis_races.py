"""Regressions the reliability suite found in the Redis provider, each pinned in isolation.

* A flush racing indexed writes UNLINKed index sets whole, so an entry filed after SCAN had
  passed its key survived, unreachable from its index (the Laravel #61328 race).
* ``find``/``get_by_index`` read an index's members and their values in two round trips,
  so an entry re-filed under another value in between was returned under the old one.
* Re-setting a key whose index set had gone (a racing flush, an eviction under
  ``allkeys-*``) kept its old meta hash, so ``delete_by_index`` on the new value missed it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from agenthub_cache import CacheService
from agenthub_cache.providers.redis import RedisProvider
from tests.conftest import make_service, unique_namespace
from tests.reliability_workload import Threads, raw_client, redis_dangling

pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture(params=["redis", "redis_django"])
def svc(request: pytest.FixtureRequest) -> Iterator[CacheService]:
    service = make_service(request.param, unique_namespace("race"), default_ttl=600)
    yield service
    service.clear()


@pytest.fixture
def client(svc: CacheService) -> Iterator[redis.Redis]:
    with raw_client(svc) as plain:
        yield plain


def test_clear_racing_indexed_writes_leaves_no_orphan(
    svc: CacheService, client: redis.Redis
) -> None:
    svc.set_many({f"old{n}": n for n in range(20_000)})
    svc.set("old-indexed", 1, indexes={"tag": "hot"})
    late: list[str] = []

    def write_between_batches(deleted: int) -> None:
        if not late:  # after the first batch: SCAN has passed some keys, not the rest
            for n in range(300):
                late.append(f"late{n}")
                svc.set(f"late{n}", {"n": n}, indexes={"tag": "hot"})

    provider: Any = svc.provider
    assert isinstance(provider, RedisProvider)
    provider.clear(progress=write_between_batches)
    survivors = svc.get_many(late)
    assert set(survivors) <= set(svc.find("tag", "hot"))
    assert redis_dangling(svc, client) == []


def test_find_never_returns_an_entry_refiled_meanwhile(svc: CacheService) -> None:
    keys_ = [f"k{n}" for n in range(20)]
    stop, wrong = threading.Event(), []

    def refile() -> None:
        flip = 0
        while not stop.is_set():
            flip ^= 1
            for key in keys_:
                side = "ab"[flip]
                svc.set(key, {"key": key, "side": side}, indexes={"side": side})

    def read() -> None:
        while not stop.is_set():
            for side in "ab":
                for key, value in svc.get_by_index("side", side).items():
                    if value["side"] != side:
                        wrong.append((side, key, value))

    threads = Threads()
    threads.start(refile, "refile")
    threads.start(read, "read")
    time.sleep(1.5)
    stop.set()
    threads.join()
    assert wrong == []


def test_resetting_after_an_index_set_was_lost_refiles_the_meta(
    svc: CacheService, client: redis.Redis
) -> None:
    provider = svc.provider
    assert isinstance(provider, RedisProvider)
    svc.set("x", 1, indexes={"g": "1", "h": "1"})
    client.delete(provider.layout.index("g", "1"))  # as a racing flush or an eviction would
    svc.set("x", 2, indexes={"g": "2", "h": "1"})
    assert svc.find("g", "2") == ["x"]
    assert svc.delete_by_index("g", "2") == 1
    assert svc.get("x") is None
    assert svc.find("h", "1") == []
    assert redis_dangling(svc, client) == []


def test_clear_counts_entries_once_and_leaves_nothing(
    svc: CacheService, client: redis.Redis
) -> None:
    svc.set_many({f"plain{n}": n for n in range(3_000)})
    for n in range(700):
        svc.set(f"filed{n}", n, indexes={"a": str(n % 3), "b": "all"})
    with svc.lock("held", timeout=60):
        assert svc.clear() == 3_700
    provider = svc.provider
    assert isinstance(provider, RedisProvider)
    assert list(client.scan_iter(match=provider.layout.match(), count=1000)) == []
