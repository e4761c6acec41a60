"""The contract suite: every §3 behaviour, on every backend, on a real store.

Each test runs once per alias in ``conftest.BACKENDS`` through the ``service`` fixture (a fresh
namespace with a 60 s default TTL). Where a store cannot do something natively the provider
must say so with ``NotSupported`` and its ``capabilities`` must agree.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.cache import caches
from django.db import connections

from agenthub_cache import FOREVER, CacheService, InvalidKey, NotSupported, policy
from agenthub_cache.providers.redis import layout as redis_layout
from agenthub_cache.providers.redis.provider import RedisProvider
from agenthub_cache.providers.scanning import ScanBudget
from tests.conftest import late_in_a_second, make_service, run_threads, sleep_past

HOSTILE_KEYS = [
    "a:b",
    "a%3Ab",
    "*",
    "?",
    "[x]",
    "\\",
    "{tag}",
    "with space",
    "tab\tand\nnewline",
    "ümlaut-日本語-🙂",
    "k:i:x",
    "%",
    "ahc:other:k:x",
]


def plain_cache(service: CacheService) -> Any:
    """The Django cache object behind ``service`` (the private store for in-memory services)."""
    return service.provider.backend


# -- single entries -------------------------------------------------------------------------


def test_set_get_default(service: CacheService) -> None:
    assert service.get("missing") is None
    assert service.get("missing", "dflt") == "dflt"
    assert service.set("k", {"a": [1, 2]}) is True
    assert service.get("k") == {"a": [1, 2]}
    assert service.set("k", "replaced") is True
    assert service.get("k") == "replaced"


def test_add_only_if_absent(service: CacheService) -> None:
    assert service.add("k", 1) is True
    assert service.add("k", 2) is False
    assert service.get("k") == 1


def test_get_many_set_many(service: CacheService) -> None:
    assert service.set_many({"a": 1, "b": 2, "c": 3}) == []
    assert service.get_many(["a", "b", "missing"]) == {"a": 1, "b": 2}
    assert service.get_many([]) == {}


def test_delete_and_has_key(service: CacheService) -> None:
    service.set("k", 1)
    assert service.has_key("k")
    assert "k" in service
    assert service.delete("k") is True
    assert service.delete("k") is False
    assert not service.has_key("k")
    assert "k" not in service


def test_delete_many_counts_existing(service: CacheService) -> None:
    service.set_many({"a": 1, "b": 2})
    assert service.delete_many(["a", "b", "missing"]) == 2
    assert service.get_many(["a", "b"]) == {}


def test_delete_many_of_filed_unfiled_missing_and_repeated_keys(service: CacheService) -> None:
    """Each existing key counted once; the filed ones leave their indexes, the others' stay."""
    service.set("f1", 1, indexes={"team": "a"})
    service.set("f2", 2, indexes={"team": "a", "user": "7"})
    service.set("kept", 3, indexes={"team": "a"})
    service.set_many({"u1": 4, "u2": 5})
    batch = ["u1", "f1", "missing", "u1", "f2", "u2", "f1"]
    assert service.delete_many(batch) == 4
    assert service.get_many([*batch, "kept"]) == {"kept": 3}
    assert service.find("team", "a") == ["kept"]
    assert service.find("user", "7") == []
    assert service.stats()["indexes"] == 1
    assert service.delete_many(batch) == 0
    assert service.prune() == 0


def test_hostile_keys_round_trip_without_colliding(service: CacheService) -> None:
    for i, key in enumerate(HOSTILE_KEYS):
        assert service.set(key, i)
    assert service.get_many(HOSTILE_KEYS) == {key: i for i, key in enumerate(HOSTILE_KEYS)}
    if service.capabilities.list_keys:
        assert sorted(service.keys()) == sorted(HOSTILE_KEYS)


def test_make_key_reads_through_plain_django_cache(service: CacheService) -> None:
    service.set("shared", {"v": 1})
    assert plain_cache(service).get(service.make_key("shared")) == {"v": 1}
    service.set_many({"text": "5", "odd": "\ud800 lone surrogate"})  # memcached pickles a str
    assert service.add("added", "text")
    for key, value in {"text": "5", "odd": "\ud800 lone surrogate", "added": "text"}.items():
        read = plain_cache(service).get(service.make_key(key))
        assert (read, type(read)) == (value, str)
        assert type(service.get(key)) is str


# -- TTLs -----------------------------------------------------------------------------------


def test_ttl_default_explicit_forever_missing(service: CacheService) -> None:
    service.set("default", 1)
    service.set("explicit", 1, ttl=30)
    service.set("forever", 1, ttl=FOREVER)
    if not service.capabilities.ttl:
        with pytest.raises(NotSupported, match=service.namespace):
            service.ttl("default")
        return
    assert 55 <= service.ttl("default") <= 60
    assert 25 <= service.ttl("explicit") <= 30
    assert service.ttl("forever") is None
    assert service.ttl("missing") == 0


def test_ttl_zero_expires_at_once(service: CacheService) -> None:
    service.set("k", "old")
    service.set("k", "new", ttl=0)
    assert service.get("k") is None
    assert not service.has_key("k")


def test_sub_second_ttls_round_up_to_whole_seconds(service: CacheService) -> None:
    """Every store keeps ``ttl=0.5`` for 1 s (the database cache and memcached dropped it at
    once), and ``ttl()`` reports what was stored. Written late in a second and read once the
    next one has begun: an expiry with its fraction dropped has passed by then."""
    service.set("later", "v")
    written = late_in_a_second()
    assert service.set("half", "v", ttl=0.5) is True
    assert service.add("nine", "v", ttl=0.9) is True
    assert service.incr("rl", ttl=0.5) == 1
    assert service.touch("later", ttl=0.2) is True
    time.sleep(max(0.0, math.floor(written) + 1.01 - time.time()))
    assert service.get_many(["half", "nine", "later"]) == {"half": "v", "nine": "v", "later": "v"}
    assert service.incr("rl") == 2
    if service.capabilities.ttl:  # 1 s: rounded up, and no more than that
        assert [service.ttl(k) for k in ("half", "nine", "rl", "later")] == [1, 1, 1, 1]


@pytest.mark.parametrize("ttl", [10**20, 10 * 365 * 86400 + 1, float(2**63)])
def test_out_of_range_ttls_rejected_before_any_io(service: CacheService, ttl: Any) -> None:
    """One ValueError naming the namespace and the range, whatever the store would have done."""
    service.set("k", "kept", indexes={"g": "v"})
    service.set("n", 5)
    calls = {
        "set": lambda: service.set("k", "x", ttl=ttl),
        "add": lambda: service.add("new", "x", ttl=ttl),
        "set_many": lambda: service.set_many({"k": "x", "new": "x"}, ttl=ttl),
        "touch": lambda: service.touch("k", ttl),
        "incr": lambda: service.incr("n", ttl=ttl),
        "fresh incr": lambda: service.incr("new", ttl=ttl),
        "get_or_set": lambda: service.get_or_set("new", "x", ttl=ttl),
        "lock": lambda: service.lock("job", timeout=ttl),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match=rf"{service.namespace}.* from 0 to \d+ ") as info:
            call()
        assert type(info.value) is ValueError, name
        assert "ttl" in str(info.value) or "timeout" in str(info.value), name
    assert service.get_many(["k", "n", "new"]) == {"k": "kept", "n": 5}
    assert service.find("g", "v") == ["k"]
    assert service.set("k", "longest", ttl=service.provider.max_ttl()) is True
    assert service.get("k") == "longest"


def test_an_entry_lives_its_ttl_and_stays_findable_while_it_lives(service: CacheService) -> None:
    """At least its TTL, then gone within a second or so; while it can be read, its index finds
    it (or, read just at its deadline, a read right after the find misses it too). memcached's
    clock ticks once a second: stored for 1 s, an item was gone after 0.6 to 1.0 s, and an index
    record stored for 1.9 s (rounded down to 1) before its member. Django's DatabaseCache drops
    the expiry's fraction: written late in a second, a 1 s entry was gone within 0.1 s. (Through ``NamespaceCache`` it keeps Django's own rule: tests/test_namespace_cache.)"""
    late_in_a_second()
    started = time.monotonic()
    service.set("k", "v", ttl=1, indexes={"g": "v"})
    while (value := service.get("k")) is not None and time.monotonic() - started < 5:
        assert value == "v"
        found = service.find("g", "v")
        # It may expire between the two reads: then a read after the find misses it too.
        assert found == ["k"] or service.get("k") is None, time.monotonic() - started
        time.sleep(0.05)
    lived = time.monotonic() - started
    assert 1.0 <= lived <= service.provider.stored_seconds(1) + 0.6, lived


def test_entries_and_index_members_expire(service: CacheService) -> None:
    service.set("short", 1, ttl=2, indexes={"group": "g"})
    service.set("long", 2, ttl=60, indexes={"group": "g"})
    assert sorted(service.find("group", "g")) == ["long", "short"]
    sleep_past(service, 2)
    assert service.get("short") is None
    assert service.find("group", "g") == ["long"]
    assert service.get_by_index("group", "g") == {"long": 2}


def test_touch_and_persist(service: CacheService) -> None:
    service.set("k", 1, ttl=2)
    assert service.touch("k", ttl=60) is True
    assert service.touch("missing") is False
    sleep_past(service, 2)
    assert service.get("k") == 1
    assert service.persist("k") is True
    if service.capabilities.ttl:
        assert service.ttl("k") is None
    assert service.persist("missing") is False


def test_touch_and_persist_keep_index_filings(service: CacheService) -> None:
    """A touched entry stays findable past its old expiry; its index outlives it no less."""
    # 2 s, not 1: on a loaded 2-CPU machine the four writes can take longer than one second, and
    # an entry whose records expire before touch() re-dates them is not what this test is about.
    service.set("touched", 1, ttl=2, indexes={"g": "t"})
    service.set("persisted", 2, ttl=2, indexes={"g": "p"})
    assert service.touch("touched", ttl=60) is True
    assert service.persist("persisted") is True
    sleep_past(service, 2)
    assert service.find("g", "t") == ["touched"]
    assert service.get_by_index("g", "p") == {"persisted": 2}
    service.set("touched", 3, indexes={"g": "other"})  # re-filing still finds the old filing
    assert service.find("g", "t") == []
    assert service.find("g", "other") == ["touched"]
    assert service.touch("touched", ttl=0) is True
    assert service.find("g", "other") == []


def test_index_values_of_expired_entries_are_forgotten(service: CacheService) -> None:
    """An index never outlives its last entry by more than its TTL: stats stop counting it."""
    service.set("old", 1, ttl=1, indexes={"email": "old@x"})
    sleep_past(service, 2)  # the entry, then its index record a second after
    service.set("new", 2, indexes={"email": "new@x"})
    assert service.find("email", "old@x") == []
    assert service.stats()["indexes"] == 1


# -- atomic primitives ----------------------------------------------------------------------


def test_pop_returns_once_and_unindexes(service: CacheService) -> None:
    service.set("token", {"user": 7}, indexes={"user": "7"})
    assert service.pop("token") == {"user": 7}
    assert service.pop("token", "gone") == "gone"
    assert service.get("token") is None
    assert service.find("user", "7") == []


@pytest.mark.parametrize("remove", ["pop", "delete", "delete_many", "refile", "delete_by_index"])
def test_removed_entries_leave_no_index_behind(service: CacheService, remove: str) -> None:
    """``stats()`` stops counting an index value when its last entry goes, however it goes; a
    ``prune`` after that has nothing to report and changes no count (LocMem, the database and
    the file cache kept counting a popped entry's filing until a prune that reported 0)."""
    service.set("kept", 0, indexes={"team": "a"})
    service.set("token", {"user": 7}, indexes={"user": "7", "team": "a"})
    assert service.stats()["indexes"] == 2
    if remove == "pop":
        assert service.pop("token") == {"user": 7}
    elif remove == "delete":
        assert service.delete("token") is True
    elif remove == "delete_many":
        assert service.delete_many(["token"]) == 1
    elif remove == "refile":
        service.set("token", 1, indexes={"team": "a"})
    else:
        assert service.delete_by_index("user", "7") == 1
    assert service.find("user", "7") == []
    assert service.stats()["indexes"] == 1
    assert service.prune() == 0
    assert service.stats()["indexes"] == 1
    assert sorted(service.find("team", "a")) == (
        ["kept", "token"] if remove == "refile" else ["kept"]
    )


def test_pop_racing_threads_one_winner(service: CacheService) -> None:
    service.set("token", "secret")
    results: list[Any] = []
    run_threads(8, lambda: results.append(service.pop("token")))
    assert results.count("secret") == 1
    assert results.count(None) == 7


def test_incr_starts_at_zero_and_sets_ttl_once(service: CacheService) -> None:
    assert service.incr("hits", ttl=30) == 1
    assert service.incr("hits", ttl=FOREVER) == 2
    assert service.incr("hits", delta=5) == 7
    assert service.decr("hits", delta=2) == 5
    assert service.decr("fresh") == (0 if service.provider.counters_floor_at_zero else -1)
    assert service.incr("other", default=99) == 1  # default: only for a silenced outage
    if service.capabilities.ttl:
        assert 0 < service.ttl("hits") <= 30


def test_incr_window_expires(service: CacheService) -> None:
    assert service.incr("window", ttl=2) == 1
    assert service.incr("window") == 2
    sleep_past(service, 2)
    assert service.incr("window", ttl=2) == 1


def test_incr_concurrent_loses_no_count(service: CacheService) -> None:
    def bump() -> None:
        for _ in range(25):
            service.incr("n")

    run_threads(4, bump)
    assert service.get("n") == 100


def test_get_or_set_computes_once_under_concurrency(service: CacheService) -> None:
    calls: list[int] = []
    results: list[Any] = []

    def slow() -> str:
        calls.append(1)
        time.sleep(0.3)
        return "computed"

    run_threads(6, lambda: results.append(service.get_or_set("report", slow)))
    assert results == ["computed"] * 6
    assert len(calls) == 1
    assert service.get_or_set("report", "other") == "computed"
    assert service.get_or_set("plain", 5) == 5
    assert service.get("plain") == 5


def test_get_or_set_waits_a_bounded_time(service: CacheService) -> None:
    """A waiter whose computer is too slow computes the value itself after ``wait``."""
    computing = threading.Event()
    results: list[Any] = []

    def slow() -> str:
        computing.set()
        time.sleep(2.0)
        return "slow"

    def computer() -> None:
        try:
            results.append(service.get_or_set("report", slow))
        finally:
            caches.close_all()
            connections.close_all()

    thread = threading.Thread(target=computer)
    thread.start()
    assert computing.wait(5)
    started = time.monotonic()
    assert service.get_or_set("report", lambda: "mine", wait=0.3) == "mine"
    assert time.monotonic() - started < 1.5
    thread.join()
    assert results == ["slow"]


@pytest.mark.parametrize("error", [TypeError("caller bug"), ConnectionError("caller's API")])
def test_get_or_set_callers_own_error_propagates(service: CacheService, error: Exception) -> None:
    """What ``default`` raises is not a serialization error nor an unavailable cache."""

    def compute() -> Any:
        raise error

    with pytest.raises(type(error)) as info:
        service.get_or_set("k", compute)
    assert info.value is error
    assert service.get("k") is None


async def test_get_or_set_frees_its_guard_when_the_default_raises(service: CacheService) -> None:
    """A caller whose ``default`` raised released the guard it computed under: the next miss
    computes at once instead of waiting ``wait`` for a guard that nobody holds."""

    def compute() -> Any:
        raise LookupError("caller's own")

    with pytest.raises(LookupError):
        await sync_to_async(service.get_or_set)("k", compute, wait=3)
    with pytest.raises(LookupError):
        await service.aget_or_set("a", compute, wait=3)
    started = time.monotonic()
    assert await sync_to_async(service.get_or_set)("k", lambda: "v", wait=3) == "v"
    assert await service.aget_or_set("a", lambda: "w", wait=3) == "w"
    assert time.monotonic() - started < 2.5


async def test_aget_or_set_callers_own_error_propagates(service: CacheService) -> None:
    def compute() -> Any:
        raise AttributeError("caller bug")

    with pytest.raises(AttributeError, match="caller bug"):
        await service.aget_or_set("k", compute)


async def test_aget_or_set_awaits_an_async_callable(service: CacheService) -> None:
    """The README's own async example: an async function is awaited (it was pickled as a
    coroutine, "never awaited"), computed once among concurrent misses."""
    calls: list[int] = []

    async def build() -> dict[str, int]:
        calls.append(1)
        await asyncio.sleep(0.2)
        # Sync work from inside it (the ORM, say) must not deadlock on Django's one thread.
        rows = await sync_to_async(lambda: 3)()
        return {"rows": rows}

    results = await asyncio.gather(*(service.aget_or_set("report", build) for _ in range(4)))
    assert results == [{"rows": 3}] * 4
    assert calls == [1]
    assert await service.aget("report") == {"rows": 3}
    assert await service.aget_or_set("report", build) == {"rows": 3}
    assert calls == [1]

    async def fails() -> Any:
        raise LookupError("caller's own")

    with pytest.raises(LookupError, match="caller's own"):
        await service.aget_or_set("other", fails)
    assert await service.aget("other") is None


async def test_get_or_set_refuses_an_async_callable(service: CacheService) -> None:
    """Sync ``get_or_set`` refuses an async function before calling it; a sync function that
    returns an awaitable is refused too; nothing is stored either way."""
    called: list[int] = []

    async def build() -> str:
        called.append(1)
        return "v"

    with pytest.raises(TypeError, match=rf"{service.namespace}.*async function.*aget_or_set"):
        await sync_to_async(service.get_or_set)("k", build)
    assert called == []
    with pytest.raises(TypeError, match=rf"{service.namespace}.*returned an awaitable"):
        await sync_to_async(service.get_or_set)("k", lambda: build())
    with pytest.raises(TypeError, match="returned an awaitable"):
        await service.aget_or_set("k", lambda: build())
    assert await service.aget("k") is None


@pytest.mark.parametrize("wait", [-1, -0.5, float("nan"), "5", True])
def test_get_or_set_rejects_a_bad_wait(service: CacheService, wait: Any) -> None:
    with pytest.raises(ValueError, match=rf"{service.namespace}.*wait"):
        service.get_or_set("k", "v", wait=wait)
    assert service.get("k") is None


def test_a_lock_name_never_holds_a_get_or_set_guard(service: CacheService) -> None:
    # The guard of key "k" and a lock named "get_or_set:k" are different store keys: held,
    # the lock does not make get_or_set("k") wait out its 5 s for a computation nobody runs.
    with service.lock("get_or_set:k", timeout=30, blocking_timeout=0.1):
        started = time.monotonic()
        assert service.get_or_set("k", lambda: "computed", wait=5) == "computed"
        assert time.monotonic() - started < 2.5
        assert service.lock("get_or_set:k", timeout=1, blocking_timeout=0).acquire() is False


def test_lock_excludes_second_holder(service: CacheService) -> None:
    with service.lock("job", timeout=10, blocking_timeout=0.1):
        second = service.lock("job", timeout=10, blocking_timeout=0.1)
        assert second.acquire(blocking=False) is False
    third = service.lock("job", timeout=10, blocking_timeout=0.1)
    assert third.acquire(blocking=False) is True
    third.release()


def test_lock_with_timeout_forever(service: CacheService) -> None:
    """``timeout=FOREVER`` (as ``None``) holds the lock until it is released; LocMem, the
    database and file caches raised TypeError (the raw FOREVER compared with an int)."""
    for timeout in (FOREVER, None):
        with service.lock("job", timeout=timeout, blocking_timeout=0.1) as held:
            assert held.locked()
            assert service.lock("job", timeout=10, blocking_timeout=0).acquire() is False
        assert not service.lock("job", timeout=10).locked()


# -- secondary indexes ----------------------------------------------------------------------


def test_find_get_by_index(service: CacheService) -> None:
    service.set("s1", {"n": 1}, indexes={"email": "a@b.c", "user_id": "42"})
    service.set("s2", {"n": 2}, indexes={"email": "a@b.c"})
    service.set("s3", {"n": 3}, indexes={"email": "x@y.z"})
    assert sorted(service.find("email", "a@b.c")) == ["s1", "s2"]
    assert service.find("user_id", "42") == ["s1"]
    assert service.get_by_index("email", "x@y.z") == {"s3": {"n": 3}}
    assert service.find("email", "nobody") == []


def test_count_by_index_counts_live_entries_only(service: CacheService) -> None:
    service.set("s1", 1, indexes={"team": "42"})
    service.set("s2", 2, indexes={"team": "42"})
    service.set("s3", 3, indexes={"team": "42"}, ttl=1)
    service.set("s4", 4, indexes={"team": "7"})
    assert service.count_by_index("team", "42") == 3
    service.set("s2", 2, indexes={"team": "7"})  # re-filed
    service.delete("s1")
    assert service.count_by_index("team", "42") == 1
    assert service.count_by_index("team", "7") == 2
    assert service.count_by_index("team", "nobody") == 0
    sleep_past(service, 1)  # s3 expires
    assert service.count_by_index("team", "42") == 0
    assert asyncio.run(service.acount_by_index("team", "7")) == 2


def test_reset_with_other_indexes_refiles(service: CacheService) -> None:
    service.set("s1", 1, indexes={"email": "old@x", "user_id": "1"})
    service.set("s1", 2, indexes={"email": "new@x"})
    assert service.find("email", "old@x") == []
    assert service.find("user_id", "1") == []
    assert service.find("email", "new@x") == ["s1"]
    service.set("s1", 3)
    assert service.find("email", "new@x") == []
    service.set("s1", 4, indexes={"email": "new@x"})
    service.set_many({"s1": 5})
    assert service.find("email", "new@x") == []


def test_delete_unindexes(service: CacheService) -> None:
    service.set("s1", 1, indexes={"email": "a@b.c"})
    service.delete("s1")
    assert service.find("email", "a@b.c") == []
    service.set("s1", 1, indexes={"email": "a@b.c"})
    assert service.find("email", "a@b.c") == ["s1"]


def test_delete_by_index_removes_other_filings(service: CacheService) -> None:
    service.set("s1", 1, indexes={"user_id": "42", "email": "a@b.c"})
    service.set("s2", 2, indexes={"user_id": "42"})
    service.set("s3", 3, indexes={"user_id": "7", "email": "a@b.c"})
    assert service.delete_by_index("user_id", "42") == 2
    assert service.get_many(["s1", "s2", "s3"]) == {"s3": 3}
    assert service.find("email", "a@b.c") == ["s3"]
    assert service.delete_by_index("user_id", "42") == 0


def test_index_values_with_separators_and_globs_stay_apart(service: CacheService) -> None:
    values = ["a:b", "a", "b", "*", "a*", "[a]", "{x}", "", "ü", "a b", "a\\b"]
    for i, value in enumerate(values):
        service.set(f"k{i}", i, indexes={"tag": value})
    for i, value in enumerate(values):
        assert service.find("tag", value) == [f"k{i}"], value


def test_prune_reclaims_dead_members(service: CacheService) -> None:
    """``prune`` reports exactly the members it dropped, the same on every store (``h=y``
    expired whole with its only member, so nothing was left to drop there)."""
    service.set("gone1", 1, ttl=1, indexes={"g": "x", "h": "y"})
    service.set("gone2", 2, ttl=1, indexes={"g": "x"})
    service.set("live", 3, indexes={"g": "x"})
    sleep_past(service, 1)
    assert service.stats()["indexes"] == 1
    assert service.prune() == 2
    assert service.prune() == 0
    assert service.find("g", "x") == ["live"]
    assert service.stats()["indexes"] == 1


def test_dangling_member_is_never_returned(service: CacheService) -> None:
    """An entry removed behind the index's back (eviction, plain delete) is not returned."""
    service.set("s1", 1, indexes={"email": "a@b.c"})
    plain_cache(service).delete(service.make_key("s1"))
    assert service.find("email", "a@b.c") == []
    assert service.get_by_index("email", "a@b.c") == {}


# -- the namespace as a whole ---------------------------------------------------------------


def test_namespaces_are_isolated(backend: str, service: CacheService) -> None:
    other = make_service(backend, default_ttl=60)
    if backend == "in_memory":  # private stores: isolation is by construction
        other = service
    else:
        plain_cache(service).set("plain-canary", "keep", None)
    other.set("canary", "keep", indexes={"email": "a@b.c"})
    service.set("k", 1, indexes={"email": "a@b.c"})
    service.set("canary", "mine")
    if other is not service:
        assert other.get("canary") == "keep"
    cleared = service.clear()
    assert cleared is None or cleared >= 1
    assert service.get("k") is None
    assert service.find("email", "a@b.c") == []
    if other is not service:
        assert other.get("canary") == "keep"
        assert other.find("email", "a@b.c") == ["canary"]
        assert plain_cache(service).get("plain-canary") == "keep"
        plain_cache(service).delete("plain-canary")
        other.clear()


def test_keys_count_and_patterns(service: CacheService) -> None:
    service.set_many({"user:1": 1, "user:2": 2, "order:1": 3, "u*": 4})
    if not service.capabilities.list_keys:
        with pytest.raises(NotSupported, match=service.namespace):
            service.keys()
        with pytest.raises(NotSupported):
            service.count()
        return
    assert sorted(service.keys()) == ["order:1", "u*", "user:1", "user:2"]
    assert sorted(service.keys("user:*")) == ["user:1", "user:2"]
    assert sorted(service.iter_keys("u[*]")) == ["u*"]
    assert service.count() == 4
    service.set("expired", 1, ttl=0)
    assert service.count() == 4
    assert service.clear() == 4
    assert service.count() == 0


def test_iter_keys_within_a_scan_budget(service: CacheService) -> None:
    """A budget bounds the SCAN calls of a listing where the store walks its whole keyspace
    (Redis, one budget over a cluster's tags); a listing that reads only the namespace
    ignores it."""
    if not service.capabilities.list_keys:
        return
    written = [f"b{i}" for i in range(5)]
    service.set_many(dict.fromkeys(written, 1))
    generous = ScanBudget(10_000)
    assert sorted(service.iter_keys(budget=generous)) == written
    assert not generous.exhausted
    assert generous.calls >= (1 if isinstance(service.provider, RedisProvider) else 0)
    spent = ScanBudget(0)
    listed = sorted(service.iter_keys(budget=spent))
    if isinstance(service.provider, RedisProvider):
        assert (listed, spent.exhausted, spent.calls) == ([], True, 0)
    else:
        assert (listed, spent.exhausted) == (written, False)


def test_keys_never_reach_another_namespace(backend: str, service: CacheService) -> None:
    longer = make_service(backend, service.namespace + "x", default_ttl=60)
    if backend == "in_memory":  # two private stores: give the longer name the same store
        longer.provider = type(service.provider)(
            service.provider.backend, service.cache_alias, longer.namespace, shared=False
        )
    longer.set("theirs", 1)
    service.set("mine", 1)
    if not service.capabilities.list_keys:
        with pytest.raises(NotSupported):
            service.keys("*")
    else:
        assert service.keys("*") == ["mine"]
    service.clear()
    assert longer.get("theirs") == 1
    longer.clear()


def test_stats(service: CacheService) -> None:
    service.set("a", 1, indexes={"g": "1"})
    stats = service.stats()
    assert stats["namespace"] == service.namespace
    assert stats["alias"] == service.cache_alias
    assert stats["entries"] == (1 if service.capabilities.list_keys else None)
    assert stats["indexes"] >= (1 if service.capabilities.list_keys else 0)
    assert "memory_bytes" in stats


# -- bad arguments fail at once, naming namespace and argument; nothing is lost -------------


@pytest.mark.parametrize("bad", [None, 1, b"bytes", "", "\ud800"])
def test_bad_keys_rejected(service: CacheService, bad: Any) -> None:
    with pytest.raises(InvalidKey, match=service.namespace) as info:
        service.set(bad, 1)
    assert "key" in str(info.value)


def test_bad_arguments_rejected_and_nothing_lost(service: CacheService) -> None:
    service.set("k", "kept", indexes={"email": "a@b.c"})
    with pytest.raises(ValueError, match=rf"{service.namespace}.*ttl"):
        service.set("k", "x", ttl=-1)
    with pytest.raises(ValueError, match="ttl"):
        service.set("k", "x", ttl="10")
    with pytest.raises(InvalidKey, match="index name"):
        service.set("k", "x", indexes={"bad name!": "v"})
    with pytest.raises(InvalidKey, match="index"):
        service.set("k", "x", indexes={"email": 5})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match=rf"{service.namespace}.*serialized"):
        service.set("k", lambda: None, indexes={"email": "other@x"})
    with pytest.raises(ValueError, match="delta"):
        service.incr("k", delta="1")  # type: ignore[arg-type]
    assert service.get("k") == "kept"
    assert service.find("email", "a@b.c") == ["k"]
    assert service.find("email", "other@x") == []


@pytest.mark.parametrize("bad", [5, None, "\ud800"])
def test_a_known_index_name_still_has_its_value_checked(service: CacheService, bad: Any) -> None:
    """An index name is checked once (``policy._VALID_INDEX_NAMES``); its values every time."""
    assert service.set("k", "kept", indexes={"email": "a@b.c"})
    assert "email" in policy._VALID_INDEX_NAMES
    with pytest.raises(InvalidKey, match=rf"{service.namespace}.*value of index 'email'"):
        service.set("k", "x", indexes={"email": bad})
    with pytest.raises(InvalidKey, match="index name"):
        service.set("k", "x", indexes={"email": "b@c.d", "bad name!": "v"})
    assert service.get("k") == "kept"
    assert service.find("email", "a@b.c") == ["k"]


def test_index_names_past_what_is_kept_still_work(
    service: CacheService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Index names built from data overflow the kept ones (valid names, and on Redis each
    name's key head): they are forgotten and checked or built again, nothing else changes."""
    monkeypatch.setattr(policy, "INDEX_NAMES_KEPT", 4)
    monkeypatch.setattr(redis_layout, "NAMES_KEPT", 4)
    names = [f"n{i}.x-{i}" for i in range(10)]
    for round_ in range(2):
        for i, name in enumerate(names):
            assert service.set(f"k{i}", round_, indexes={name: "v", "all": "yes"})
        assert len(policy._VALID_INDEX_NAMES) <= 4
    with pytest.raises(InvalidKey, match="index name"):
        service.set("k0", "x", indexes={"bad name!": "v"})
    for i, name in enumerate(names):
        assert service.find(name, "v") == [f"k{i}"]
    assert sorted(service.find("all", "yes")) == sorted(f"k{i}" for i in range(10))
    assert service.get_many([f"k{i}" for i in range(10)]) == {f"k{i}": 1 for i in range(10)}


def test_rejected_set_many_writes_nothing(service: CacheService) -> None:
    """A batch with one value that cannot be serialized is refused whole (LocMem and the file
    cache used to store the keys before it)."""
    service.set("ok1", "kept", indexes={"g": "v"})
    batch = {"ok1": "replaced", "ok2": 1, "bad": lambda: 0, "ok3": 3}
    with pytest.raises(ValueError, match=rf"{service.namespace}.*serialized"):
        service.set_many(batch)
    assert service.get_many(["ok1", "ok2", "bad", "ok3"]) == {"ok1": "kept"}
    assert service.find("g", "v") == ["ok1"]


async def test_rejected_aset_many_writes_nothing(service: CacheService) -> None:
    with pytest.raises(ValueError, match=rf"{service.namespace}.*serialized"):
        await service.aset_many({"ok2": 1, "bad": lambda: 0})
    assert await service.aget_many(["ok2", "bad"]) == {}


@pytest.mark.parametrize("value", ["abc", "5", 1.5, [1], {"n": 1}, None])
def test_incr_of_a_non_integer_is_one_value_error(service: CacheService, value: Any) -> None:
    """The same error on every store: a ValueError naming the namespace and the key (LocMem
    raised TypeError, the database and file caches a bare ValueError, memcached its own; and
    memcached incremented the str "5", which pymemcache had stored as the text of a number)."""
    if value is None:  # a value that is there but is no number, stored through the app
        service.set("s", b"\x00bytes")
    else:
        service.set("s", value)
    stored = service.get("s")
    with pytest.raises(
        ValueError, match=rf"{service.namespace}.*cannot increment 's'.*not an integer"
    ) as info:
        service.incr("s")
    assert type(info.value) is ValueError
    with pytest.raises(ValueError, match="not an integer"):
        service.decr("s", 2)
    assert service.get("s") == stored


def test_too_long_an_index_name_is_measured_right(service: CacheService) -> None:
    """65 characters are reported as 65 (the message counted the quotes of its repr)."""
    with pytest.raises(InvalidKey, match=rf"{service.namespace}.*\(65 chars\)"):
        service.set("k", 1, indexes={"x" * 65: "v"})
    assert service.get("k") is None


def test_long_keys_hashed_or_refused(service: CacheService) -> None:
    key = "x" * 400
    provider = service.provider
    if provider.max_key_length is None or provider.hash_long_keys:
        assert service.set(key, 1, indexes={"long": "v" * 400})
        assert service.get(key) == 1
        assert service.find("long", "v" * 400) == [key]
        assert service.get(key[:-1] + "y") is None
    else:
        with pytest.raises(InvalidKey, match=service.namespace):
            service.set(key, 1)


# -- async twins ----------------------------------------------------------------------------


async def test_async_twins(service: CacheService) -> None:
    assert await service.aset("a", 1, indexes={"g": "x"}) is True
    assert await sync_to_async(service.get)("a") == 1  # async writes, sync reads, and back
    await sync_to_async(service.set)("b", 2, indexes={"g": "x"})
    assert await service.aget("b") == 2
    assert await service.aget("missing", "d") == "d"
    assert await service.aadd("a", 9) is False
    assert await service.aset_many({"c": 3}) == []
    assert await service.aget_many(["a", "c"]) == {"a": 1, "c": 3}
    assert await service.ahas_key("c")
    assert sorted(await service.afind("g", "x")) == ["a", "b"]
    assert await service.aget_by_index("g", "x") == {"a": 1, "b": 2}
    assert await service.aincr("n", ttl=30) == 1
    assert await service.adecr("n") == 0
    assert await service.atouch("c", ttl=30) is True
    assert await service.apersist("c") is True
    if service.capabilities.ttl:
        assert await service.attl("c") is None
    assert await service.apop("c") == 3
    assert await service.aget_or_set("gs", lambda: "v") == "v"
    assert await service.adelete("gs") is True
    assert await service.adelete_by_index("g", "x") == 2
    assert await service.adelete_many(["n"]) == 1
    assert await service.aprune() >= 0
    if service.capabilities.list_keys:
        await service.aset("z", 1)
        assert await service.akeys() == ["z"]
        assert [k async for k in service.aiter_keys()] == ["z"]
        assert await service.acount() == 1
        assert (await service.astats())["entries"] == 1
    await service.aclear()
    assert await service.aget("z") is None


async def test_async_lock(service: CacheService) -> None:
    async with service.lock("job", timeout=10, blocking_timeout=0.1):
        other = service.lock("job", timeout=10, blocking_timeout=0.1)
        assert await sync_to_async(other.acquire)(False) is False


async def test_async_concurrent_tasks(service: CacheService) -> None:
    await asyncio.gather(*(service.aset(f"k{i}", i, indexes={"g": "all"}) for i in range(20)))
    assert sorted(await service.afind("g", "all")) == sorted(f"k{i}" for i in range(20))
    counts = await asyncio.gather(*(service.aincr("c") for _ in range(20)))
    assert sorted(counts) == list(range(1, 21))


def test_plain_cache_keys_untouched_by_clear(service: CacheService) -> None:
    cache = plain_cache(service)  # caches[alias], or the private store of an in-memory service
    cache.set("agenthub-plain-canary", "keep", 60)
    service.set("k", 1)
    service.clear()
    assert cache.get("agenthub-plain-canary") == "keep"
    cache.delete("agenthub-plain-canary")


def test_foreign_keys_under_the_namespace_prefix_untouched(service: CacheService) -> None:
    """Keys someone else put under the namespace's prefix, in shapes the app never writes,
    are not listed, counted or flushed."""
    from agenthub_cache import keys

    cache = plain_cache(service)
    prefix = keys.namespace_prefix(service.namespace)
    foreign = {f"{prefix}{suffix}": suffix for suffix in ("k", "k:a:b", "k:%zz", "m:x:y", "z:1")}
    cache.set_many(foreign, 60)
    try:
        service.set("a", 1, indexes={"g": "v"})
        if service.capabilities.list_keys:
            assert service.keys() == ["a"]
            assert service.count() == 1
        dropped = service.clear()
        assert dropped in (1, None)  # None: a flush by generation cannot count
        assert service.get("a") is None
        assert cache.get_many(list(foreign)) == foreign
    finally:
        cache.delete_many(list(foreign))


# -- metrics --------------------------------------------------------------------------------


def test_metrics_count_hits_misses_sets_deletes(service: CacheService) -> None:
    service.set("a", 1, indexes={"group": "g"})
    service.set("b", None)  # a stored None is a hit, not a miss
    assert service.add("a", 2) is False  # nothing written
    assert service.get("a") == 1
    assert service.get("b", "dflt") is None
    assert service.get("missing", "dflt") == "dflt"
    assert service.get_many(["a", "b", "nope"]) == {"a": 1, "b": None}
    assert service.set_many({"c": 3, "d": 4}) == []
    assert service.delete("c") is True
    assert service.delete("c") is False
    assert service.pop("d") == 4
    assert service.pop("d", "gone") == "gone"
    assert service.delete_by_index("group", "g") == 1
    metrics = service.metrics()
    assert metrics["enabled"] is True
    assert (metrics["hits"], metrics["misses"]) == (5, 3)
    assert (metrics["sets"], metrics["deletes"]) == (4, 3)
    assert metrics["errors"] == {}
    assert metrics["operations"]["get"]["count"] == 3
    assert metrics["operations"]["set"]["count"] == 2
    assert metrics["latency"]["count"] == sum(op["count"] for op in metrics["operations"].values())
    assert metrics["latency"]["sum_seconds"] > 0


async def test_metrics_count_the_async_twins(service: CacheService) -> None:
    await service.aset("a", 1)
    assert await service.aget("a") == 1
    assert await service.aget("missing") is None
    assert await service.aget_many(["a", "missing"]) == {"a": 1}
    assert await service.adelete("a") is True
    metrics = service.metrics()
    assert (metrics["hits"], metrics["misses"], metrics["sets"], metrics["deletes"]) == (2, 2, 1, 1)
    assert metrics["operations"]["get"]["count"] == 2


def test_inspection_indexes_of_a_key_and_index_names(service: CacheService) -> None:
    service.set("a", 1, indexes={"user": "4:2*", "email": "a@b.c"})
    service.set("b", 2, indexes={"user": "7"})
    service.set("plain", 3)
    assert service.stats()["index_names"] == ["email", "user"]
    assert service.indexes_of("a") == {"user": "4:2*", "email": "a@b.c"}
    assert service.indexes_of("plain") == {}
    assert service.indexes_of("missing") == {}
    service.set("a", 1, indexes={"user": "9"})
    assert service.indexes_of("a") == {"user": "9"}
    service.delete("b")
    service.prune()
    assert service.stats()["index_names"] == ["user"]
