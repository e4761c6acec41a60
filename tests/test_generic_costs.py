"""What one namespace operation costs the store underneath, on the generic (non-Redis) providers.

Counted on real stores: the SQL a DatabaseCache runs, and the calls a memcached backend gets
(Django's ``PyMemcacheCache`` on pymemcache clients that count the requests they send). These pin the
costs of issue 13: an unindexed write takes no lock and no transaction of the app's, a read is
one round trip with the namespace generation, a new index value rewrites no record of every
other value, and a namespace that was never indexed pays nothing for indexes (no "is this key
filed?" before an unindexed write).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import caches
from django.core.cache.backends.memcached import PyMemcacheCache
from django.db import connections
from django.test.utils import CaptureQueriesContext, override_settings
from pymemcache.client.base import Client
from pymemcache.client.hash import HashClient

from agenthub_cache import CacheService, keys
from agenthub_cache.providers import index_use, indexes
from agenthub_cache.providers.locking import FILING_SLOTS, index_writes, process_lock
from tests.conftest import unique_namespace

#: The requests memcached got from the counting backend: one a round trip.
ROUND_TRIPS: list[str] = []


def _counted(name: str) -> Any:
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        ROUND_TRIPS.append(name)
        return getattr(Client, name)(self, *args, **kwargs)

    return method


class CountingClient(Client):
    """pymemcache's client of one server: each of these methods is one request."""

    get = _counted("get")
    get_many = _counted("get_many")
    set = _counted("set")
    set_many = _counted("set_many")
    add = _counted("add")
    delete = _counted("delete")
    touch = _counted("touch")
    incr = _counted("incr")


class CountingHashClient(HashClient):
    client_class = CountingClient


class CountingMemcache(PyMemcacheCache):
    """Django's pymemcache backend, on clients that count the requests they send."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = CountingHashClient


@pytest.fixture
def counting(stores: dict[str, Any]) -> Iterator[list[str]]:
    if "memcached" not in stores:
        pytest.skip("memcached is not installed (apt-get install memcached)")
    counted = {**stores["memcached"], "BACKEND": f"{__name__}.CountingMemcache"}
    with override_settings(CACHES={**stores, "counted": counted}):
        assert isinstance(caches["counted"], CountingMemcache)
        ROUND_TRIPS.clear()
        yield ROUND_TRIPS


def unindexed_for_a_while(service: CacheService) -> None:
    """Make the namespace's index-use record a NEVER written long ago, as in a namespace used
    without indexes for more than ``GRACE_SECONDS`` (so that it is trusted at once), and make
    this process read it again."""
    provider: Any = service.provider
    scope = provider.scope()
    long_ago = time.time() - 10 * index_use.GRACE_SECONDS
    provider.backend.set(provider.index_use_key(scope), index_use.new_record(long_ago), None)
    provider.forget_index_use()


def test_memcached_unindexed_writes_in_a_never_indexed_namespace_ask_nothing(
    counting: list[str],
) -> None:
    """An unindexed set in a namespace that was never indexed is the one request Django's own
    ``set`` makes (before: a GET of the key's meta record first, two requests); set_many, add,
    touch and delete skip that GET too. After the namespace's first indexed write, this
    process checks again at once, and a re-set without indexes unfiles the key."""
    service = CacheService(unique_namespace(), default_ttl=60, cache="counted")
    service.set("k", "v")
    unindexed_for_a_while(service)
    service.set("k", "v")  # reads the record (with the generation, when that is due)
    counting.clear()
    assert service.set("k", "w")
    assert counting == ["set"]
    counting.clear()
    assert service.set_many({"k": "x", "other": 1}) == []
    assert counting == ["set_many"]
    counting.clear()
    assert service.add("new", 1)
    assert counting == ["get", "add"]  # the generation (add reads it first); the add
    counting.clear()
    assert service.touch("k", 30)
    assert counting == ["get", "touch"]
    counting.clear()
    assert service.delete("new")
    assert counting == ["get", "delete"]
    assert service.set("k", "filed", indexes={"g": "v"})
    assert service.find("g", "v") == ["k"]
    counting.clear()
    assert service.set("k", "plain")
    assert counting[:3] == ["get", "set", "get"], counting  # filed? (yes); value; its meta...
    assert service.find("g", "v") == []
    service.clear()


def test_memcached_get_is_one_round_trip_and_set_two(counting: list[str]) -> None:
    service = CacheService(unique_namespace(), default_ttl=60, cache="counted")
    service.set("k", "v")
    assert service.get("k") == "v"
    counting.clear()
    assert service.get("k") == "v"
    assert counting == ["get_many"]  # the generation and the value together
    counting.clear()
    assert service.get_many(["k", "other"]) == {"k": "v"}
    assert counting == ["get_many"]
    counting.clear()
    assert service.set("k", "w")
    assert counting == ["get", "set"]  # is it filed anywhere (checked first)? then the value
    service.clear()


def test_memcached_read_sees_a_flush_by_another_process(counting: list[str]) -> None:
    service = CacheService(unique_namespace(), default_ttl=60, cache="counted")
    service.set("k", "v")
    assert service.get("k") == "v"
    gen_key = keys.build_key(service.namespace, keys.GENERATION)
    caches["counted"].set(gen_key, "elsewhere", None)  # what another process's clear() writes
    assert service.get("k") is None
    assert service.set("k", "new")
    assert service.get("k") == "new"
    service.clear()


def test_unindexed_db_set_takes_no_lock_row_nor_more_sql(stores: dict[str, Any]) -> None:
    service = CacheService(unique_namespace(), default_ttl=60, cache="db")
    raw = caches["db"]
    raw.set("warm", 1, 60)
    service.set("k", 1)
    with CaptureQueriesContext(connections["default"]) as raw_sql:
        raw.set("raw-k", 2, 60)
    with CaptureQueriesContext(connections["default"]) as ours:
        service.set("k", 2)
    lock_row = raw.make_key(keys.build_key(service.namespace, keys.LOCK))
    assert not [q for q in ours.captured_queries if lock_row in str(q)]
    assert len(ours) <= len(raw_sql) + 1, [q["sql"] for q in ours.captured_queries]
    service.set("k", 3, indexes={"g": "x"})  # the index path keeps its lock row
    service.set("k", 4)
    assert service.find("g", "x") == []
    service.clear()
    raw.delete_many(["warm", "raw-k"])


def test_unindexed_db_set_in_a_never_indexed_namespace_runs_django_statements_only(
    stores: dict[str, Any],
) -> None:
    """In a namespace that was never indexed, an unindexed set runs exactly the statements of
    DatabaseCache's own ``set`` (before: one SELECT more, of the key's meta record); after
    the first indexed write, the next one checks again, at once."""
    service = CacheService(unique_namespace(), default_ttl=60, cache="db")
    raw = caches["db"]
    raw.set("raw-k", 1, 60)
    service.set("k", 1)
    unindexed_for_a_while(service)
    service.set("k", 2)  # reads the record
    with CaptureQueriesContext(connections["default"]) as raw_sql:
        raw.set("raw-k", 2, 60)
    with CaptureQueriesContext(connections["default"]) as ours:
        service.set("k", 3)
    meta = raw.make_key(keys.build_key(service.namespace, keys.META, "k"))
    assert len(ours) == len(raw_sql), [q["sql"] for q in ours.captured_queries]
    assert not [q for q in ours.captured_queries if meta in str(q["sql"])]
    service.set("k", 4, indexes={"g": "x"})
    with CaptureQueriesContext(connections["default"]) as after:
        service.set("k", 5)
    assert [q for q in after.captured_queries if meta in str(q["sql"])]  # checked again
    assert service.find("g", "x") == []
    service.clear()
    raw.delete("raw-k")


def test_unindexed_db_pop_incr_touch_take_no_lock_row(stores: dict[str, Any]) -> None:
    """An unindexed pop, incr or touch ran in a transaction holding the namespace's lock row
    (pop: BEGIN, UPDATE lock row, SELECT, DELETE, SELECT, COMMIT), so every process queued on
    one row for its one-time tokens and rate limits."""
    service = CacheService(unique_namespace(), default_ttl=60, cache="db")
    raw = caches["db"]
    lock_row = raw.make_key(keys.build_key(service.namespace, keys.LOCK))
    service.set("filed", 0, indexes={"g": "x"})  # the namespace has a lock row
    service.set_many({"token": "t", "count": 1, "entry": 1})
    raw.set("raw-entry", 1, 60)

    def statements(call: Callable[[], Any]) -> tuple[Any, list[str]]:
        with CaptureQueriesContext(connections["default"]) as captured:
            result = call()
        sql = [str(q["sql"]) for q in captured.captured_queries]
        assert not [q for q in sql if lock_row in q], sql
        return result, sql

    popped, sql = statements(lambda: service.pop("token"))
    assert popped == "t"
    assert len(sql) <= 2, sql  # the entry and its meta record in one SELECT; a DELETE
    counted, sql = statements(lambda: service.incr("count"))
    assert counted == 2
    assert len(sql) <= 5, sql  # BEGIN, lock the entry's own row, SELECT, UPDATE, COMMIT
    touched, raw_sql = statements(lambda: raw.touch("raw-entry", 30))
    touched, sql = statements(lambda: service.touch("entry", 30))
    assert touched
    assert len(sql) <= len(raw_sql) + 1, sql  # is it filed? then Django's touch
    assert service.pop("filed") == 0  # the index path keeps its lock row, and unfiles
    assert service.find("g", "x") == []
    service.clear()
    raw.delete("raw-entry")


def test_memcached_unindexed_pop_and_touch_round_trips(counting: list[str]) -> None:
    service = CacheService(unique_namespace(), default_ttl=60, cache="counted")
    service.set_many({"token": "t", "entry": 1})
    counting.clear()
    assert service.pop("token") == "t"
    assert counting == ["get", "get_many", "delete"]  # generation; entry and meta; delete
    counting.clear()
    assert service.touch("entry", 30)
    assert counting == ["get", "get", "touch"]  # generation; is it filed?; touch
    service.clear()


@pytest.mark.parametrize("alias", ["locmem", "db", "files", "memcached"])
def test_unindexed_pop_touch_incr_wait_for_no_index_write(
    alias: str, stores: dict[str, Any]
) -> None:
    """With the namespace's process lock held (an index write of another key under way in
    another thread), set, set_many, pop, touch and incr of keys that are not filed go ahead:
    pop, touch and incr took that lock and held it across their I/O."""
    if alias not in stores:
        pytest.skip("memcached is not installed (apt-get install memcached)")
    service = CacheService(unique_namespace(), default_ttl=60, cache=alias)
    service.set_many({"token": "t", "entry": 1, "count": 1})
    provider: Any = service.provider
    lock = process_lock(provider.store_id, service.namespace)
    counted = index_writes(provider.store_id, service.namespace)
    slots = {hash(k) % FILING_SLOTS for k in ("token", "entry", "count", "more")}
    other = next(k for k in map(str, range(1000)) if hash(k) % FILING_SLOTS not in slots)
    held, release, done = threading.Event(), threading.Event(), threading.Event()
    results: list[Any] = []

    def hold() -> None:
        # an indexed set of `other` in this process (not its store's own locks: the database
        # cache's transaction holds SQLite's one write lock, which every writer waits for)
        with lock, counted.filing(other):
            held.set()
            release.wait(30)

    def work() -> None:
        try:
            results.append(service.set("entry", 1))
            results.append(service.set_many({"more": 1}))
            results.append(service.pop("token"))
            results.append(service.touch("entry", 30))
            if alias != "files":  # FileBasedCache has no incr of its own: read-modify-write
                results.append(service.incr("count"))
            done.set()
        finally:
            caches.close_all()
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(10)
    worker = threading.Thread(target=work)
    worker.start()
    finished = done.wait(10)  # far longer than three round trips; before, it waited for ever
    release.set()
    holder.join()
    worker.join()
    assert finished, "writes of unfiled keys waited for the namespace's process lock"
    assert results == [True, [], "t", True] + ([] if alias == "files" else [2])
    service.clear()


@pytest.mark.parametrize("alias", ["locmem", "files", "db"])
def test_a_new_index_value_rewrites_no_record_of_every_value(
    alias: str, stores: dict[str, Any]
) -> None:
    service = CacheService(unique_namespace(), default_ttl=60, cache=alias)
    provider: Any = service.provider
    values = 200
    for n in range(values):
        service.set(f"k{n}", n, indexes={"tag": f"v{n}"})
    plain = caches[alias]
    scope = provider.scope()
    shards_count: int = indexes.DIRECTORY_SHARDS
    legacy = plain.get(provider.stored_key(keys.INDEX, scope=scope))
    assert legacy is None  # the one-record directory of every value is gone
    shards = [plain.get(provider._shard_key(s, scope)) or [] for s in range(shards_count)]
    if service.capabilities.list_keys:
        assert not any(shards)  # a store that lists keeps no directory: it lists the records
    else:
        assert sum(len(s) for s in shards) == values
        assert max(len(s) for s in shards) <= 4 * values // shards_count
    assert service.stats()["indexes"] == values
    assert service.find("tag", "v7") == ["k7"]
    service.delete("k7")
    assert service.prune() == 0  # the delete unfiled it: nothing dead to reclaim
    assert service.stats()["indexes"] == values - 1
    service.clear()


def delete_many_sql(service: CacheService, keys_: list[str], expected: int) -> list[str]:
    """The SQL statements of ``service.delete_many(keys_)``, which must count ``expected``."""
    with CaptureQueriesContext(connections["default"]) as captured:
        assert service.delete_many(keys_) == expected
    return [q["sql"] for q in captured.captured_queries]


def test_db_delete_many_of_unindexed_keys_is_one_delete_and_one_read(
    stores: dict[str, Any],
) -> None:
    """As Django's own ``DatabaseCache.delete_many`` (one DELETE ... IN), plus one SELECT of the
    keys' meta records to find those filed under an index: two statements for any number of
    keys (it was a DELETE and a SELECT per key), and the count still exact."""
    service = CacheService(unique_namespace(), default_ttl=60, cache="db")
    service.set_many({f"k{n}": n for n in range(20)})
    sql = delete_many_sql(service, [f"k{n}" for n in range(20)] + ["missing", "k3"], 20)
    assert len(sql) == 2, sql
    assert [s.split()[0].upper() for s in sql] == ["DELETE", "SELECT"], sql
    assert service.get_many([f"k{n}" for n in range(20)]) == {}
    assert len(delete_many_sql(service, ["k1", "k2"], 0)) == 2  # already gone: counted 0
    service.set("one", 1)
    assert len(delete_many_sql(service, ["one"], 1)) == 2


def test_db_delete_many_unfiles_the_filed_keys_and_batches_the_rest(
    stores: dict[str, Any],
) -> None:
    """Keys filed under an index are unfiled under the guard as before; the unindexed keys
    beside them cost nothing more: the statements do not grow with their number."""
    service = CacheService(unique_namespace(), default_ttl=60, cache="db")

    def fill(unindexed: int) -> list[str]:
        service.set("a", 1, indexes={"g": "x"})
        service.set("b", 2, indexes={"g": "x", "h": "y"})
        service.set_many({f"u{n}": n for n in range(unindexed)})
        return ["a", "b", *(f"u{n}" for n in range(unindexed))]

    few = delete_many_sql(service, fill(1), 3)
    assert (service.find("g", "x"), service.find("h", "y")) == ([], [])
    assert service.stats()["indexes"] == 0
    many = delete_many_sql(service, fill(30), 32)
    assert len(many) == len(few), (few, many)
    assert (service.find("g", "x"), service.find("h", "y")) == ([], [])
    assert service.stats()["indexes"] == 0
    assert service.prune() == 0
    service.clear()
