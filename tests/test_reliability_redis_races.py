"""Regressions the reliability suite found in the Redis provider, each pinned in isolation.

* A flush racing indexed writes UNLINKed index sets whole, so an entry filed after SCAN had
  passed its key survived, unreachable from its index (the Laravel #61328 race).
* ``find``/``get_by_index`` read an index's members and their values in two round trips,
  so an entry re-filed under another value in between was returned under the old one.
* Re-setting a key whose index set had gone (a racing flush, an eviction under
  ``allkeys-*``) kept its old meta hash, so ``delete_by_index`` on the new value missed it.

And what a flush racing indexed writes may leave since it UNLINKs entry keys as listed
(filings are undone from metas, index sets drained): the listing order that leaves something
is set up exactly (``Listed``), and reads never see it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from agenthub_cache import CacheService
from agenthub_cache.providers.redis import RedisProvider
from agenthub_cache.providers.redis.driver import Cmd
from agenthub_cache.providers.redis.flush import clear as clear_steps
from tests.conftest import make_service, unique_namespace
from tests.reliability_workload import Threads, raw_client, redis_dangling

pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture
def svc(redis_backend: str) -> Iterator[CacheService]:
    service = make_service(redis_backend, unique_namespace("race"), default_ttl=600)
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


class Listed:
    """A flush's listing that hands it the batches given, in order, whatever the server holds
    (each a function of the stored keys, called when the batch is due): an order in which a
    SCAN could meet them, keys created behind its cursor never met."""

    def __init__(self, *batches: Callable[[], list[str]]) -> None:
        self.batches = list(batches)

    def ask(self, kept: int) -> Cmd:
        return Cmd(("PING",))

    def found(self, reply: Any) -> tuple[list[bytes], bool]:
        batch = [key.encode() for key in self.batches.pop(0)()]
        return batch, bool(self.batches)


def flush_listed(svc: CacheService, write: Callable[[], object], listing: Listed) -> int:
    """Flush ``svc`` in the order of ``listing``, ``write`` run once after the first batch."""
    provider: Any = svc.provider
    done: list[int] = []

    def after_batch(deleted: int) -> None:
        if not done:
            done.append(deleted)
            write()

    return int(provider._drive(clear_steps(provider.layout, after_batch, listing)))


@pytest.mark.parametrize("reclaimed_by", ["a later write", "prune"])
def test_flush_racing_a_write_under_a_new_index_value_leaves_nothing_a_read_returns(
    svc: CacheService, client: redis.Redis, reclaimed_by: str
) -> None:
    """The write files "x" under an index value new to the namespace after the listing has
    passed x's meta and that index set, before x's entry key: the flush deletes the entry and
    leaves the meta and the membership (as an eviction of the entry would), which no read
    returns and a later write of the key or ``prune`` undoes."""
    layout: Any = svc.provider.layout  # type: ignore[attr-defined]
    svc.set("a", 1)
    listing = Listed(lambda: [layout.entry("a")], lambda: [layout.entry("x")])
    assert flush_listed(svc, lambda: svc.set("x", {"x": 1}, indexes={"tag": "new"}), listing) == 2
    index = layout.index("tag", "new")
    assert sorted(redis_dangling(svc, client)) == [
        f"{index.encode()!r} holds 'x', whose entry is gone",
        f"meta {layout.meta('x').encode()!r} outlived its entry",
    ]
    assert svc.get("x") is None
    assert svc.find("tag", "new") == []
    assert svc.get_by_index("tag", "new") == {}
    if reclaimed_by == "prune":
        assert svc.prune() == 1
    else:
        svc.set("x", 2)  # unindexed: the meta still names the old filing, which goes
    assert svc.find("tag", "new") == []
    assert svc.delete_by_index("tag", "new") == 0
    assert redis_dangling(svc, client) == []
    assert client.exists(index, layout.meta("x")) == 0


def test_flush_drains_again_an_index_set_filed_in_after_its_drain(
    svc: CacheService, client: redis.Redis
) -> None:
    """An index value the namespace had when the flush started: its set was drained in the
    first batch, a write filed "late" in it again, and late's entry key came next. Once the
    listing is done the flush drains that set again (late's meta and membership go too)."""
    layout: Any = svc.provider.layout  # type: ignore[attr-defined]
    svc.set("old", 1, indexes={"tag": "hot"})
    listing = Listed(lambda: [layout.index("tag", "hot")], lambda: [layout.entry("late")])
    assert flush_listed(svc, lambda: svc.set("late", 2, indexes={"tag": "hot"}), listing) == 2
    assert redis_dangling(svc, client) == []
    assert list(client.scan_iter(match=layout.match(), count=1000)) == []
