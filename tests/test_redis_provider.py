"""The Redis provider on both Redis backends: layout, atomicity under threads, indexes.

Runs on the session's private redis-server (``redis_server`` in conftest); every test works
in namespaces of its own.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.lock
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django_redis.cache import RedisCache as DjangoRedisRedisCache

from agenthub_cache import CacheService
from agenthub_cache.providers.redis import RedisProvider
from agenthub_cache.providers.redis import scripts as redis_scripts
from agenthub_cache.providers.redis import steps as redis_steps
from agenthub_cache.registry import provider_class_for
from tests.conftest import make_service

REDIS_ALIASES = ["redis", "redis_django"]


@pytest.fixture(params=REDIS_ALIASES)
def alias(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def svc(alias: str) -> Iterator[CacheService]:
    service = make_service(alias, default_ttl=60)
    yield service
    service.clear()


@pytest.fixture
def raw(svc: CacheService) -> Iterator[redis.Redis]:
    """A plain client on the namespace's database, for looking under the hood."""
    provider = svc.provider
    assert isinstance(provider, RedisProvider)
    kwargs = provider.connection.client.connection_pool.connection_kwargs
    client = redis.Redis(host=kwargs["host"], port=kwargs["port"], db=kwargs["db"])
    yield client
    client.connection_pool.disconnect()


def stored(svc: CacheService, key: str) -> str:
    return str(caches[svc.cache_alias].make_key(svc.make_key(key)))


def run_threads(count: int, target: Callable[[int], None]) -> None:
    start = threading.Barrier(count)
    errors: list[BaseException] = []

    def body(n: int) -> None:
        start.wait()
        try:
            target(n)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors


# -- which provider, which keys, which bytes ------------------------------------------------


def test_both_backends_and_subclasses_get_the_native_provider(svc: CacheService) -> None:
    assert type(svc.provider) is RedisProvider
    assert svc.capabilities.native_async
    assert svc.capabilities.indexes == "atomic"
    assert svc.capabilities.flush == "scan"

    class MyDjangoRedis(DjangoRedisCache):
        pass

    class MyDjangoRedisRedis(DjangoRedisRedisCache):  # type: ignore[misc]
        pass

    assert provider_class_for(MyDjangoRedis) is RedisProvider
    assert provider_class_for(MyDjangoRedisRedis) is RedisProvider


def test_stored_layout_uses_the_backend_key_function(svc: CacheService, raw: redis.Redis) -> None:
    svc.set("a key", "v", indexes={"email": "a@b.c"})
    prefix = "dr:1:" if svc.cache_alias == "redis" else "dj:1:"
    ns = svc.namespace
    assert stored(svc, "a key") == f"{prefix}ahc:{ns}:k:a%20key"
    assert raw.exists(f"{prefix}ahc:{ns}:k:a%20key")
    assert raw.hgetall(f"{prefix}ahc:{ns}:m:a%20key") == {
        b"email": f"{prefix}ahc:{ns}:i:email:a%40b.c".encode()
    }
    assert raw.zrange(f"{prefix}ahc:{ns}:i:email:a%40b.c", 0, -1) == [b"a%20key"]


def test_values_in_the_backends_own_format_both_ways(svc: CacheService, raw: redis.Redis) -> None:
    cache = caches[svc.cache_alias]
    svc.set("int", 41)
    assert raw.get(stored(svc, "int")) == b"41"  # ints unpickled, like the backend does
    assert cache.incr(svc.make_key("int")) == 42
    assert svc.get("int") == 42
    cache.set(svc.make_key("obj"), {"from": "django", "n": [1, 2]})
    assert svc.get("obj") == {"from": "django", "n": [1, 2]}
    svc.set("obj2", {"from": "app"}, ttl=30)
    assert cache.get(svc.make_key("obj2")) == {"from": "app"}
    assert svc.get_many(["obj", "obj2", "missing"]) == {
        "obj": {"from": "django", "n": [1, 2]},
        "obj2": {"from": "app"},
    }
    svc.set("flag", True)
    assert svc.get("flag") is True
    assert cache.get(svc.make_key("flag")) is True


def test_index_expires_with_its_longest_lived_member(svc: CacheService, raw: redis.Redis) -> None:
    svc.set("long", 1, ttl=100, indexes={"g": "x"})
    svc.set("short", 2, ttl=10, indexes={"g": "x"})
    index = stored(svc, "long").replace(":k:long", ":i:g:x")
    assert 99_000 < raw.pttl(index) <= 100_000
    svc.delete("long")
    assert 9_000 < raw.pttl(index) <= 10_000
    svc.set("forever", 3, ttl=None, indexes={"g": "x"})
    svc.persist("forever")
    assert raw.pttl(index) == -1
    svc.delete("forever")
    svc.touch("short", 50)
    assert 49_000 < raw.pttl(index) <= 50_000
    assert svc.ttl("short") == 50
    svc.delete("short")
    assert not raw.exists(index)


def test_incr_on_a_non_integer_is_a_value_error(svc: CacheService) -> None:
    svc.set("text", "abc")
    with pytest.raises(ValueError, match="not an integer"):
        svc.incr("text")
    assert svc.get("text") == "abc"


def test_dangling_members_skipped_then_pruned_with_their_meta(
    svc: CacheService, raw: redis.Redis
) -> None:
    for n in range(5):
        svc.set(f"e{n}", n, indexes={"grp": "a", "other": str(n)})
    raw.delete(stored(svc, "e1"), stored(svc, "e3"))  # behind the app's back
    assert sorted(svc.find("grp", "a")) == ["e0", "e2", "e4"]
    assert svc.prune() == 4  # e1 and e3, each from two indexes
    assert not raw.exists(stored(svc, "e1").replace(":k:", ":m:"))
    assert svc.find("other", "1") == []
    assert svc.find("other", "2") == ["e2"]
    assert svc.prune() == 0


def test_expired_entry_reset_without_indexes_is_not_found(svc: CacheService) -> None:
    svc.set("t", 1, ttl=1, indexes={"g": "v"})
    threading.Event().wait(1.1)
    svc.set("t", 2)  # the meta expired with the old entry; the stale member must not count
    assert svc.find("g", "v") == []
    assert svc.prune() == 0  # the index expired with its only member


# -- atomicity under threads ----------------------------------------------------------------


def test_twelve_threads_pop_one_token(svc: CacheService) -> None:
    for round_ in range(5):
        svc.set("token", f"secret-{round_}", indexes={"user": "42"})
        won: list[Any] = []
        run_threads(12, lambda n, won=won: won.append(svc.pop("token", None)))
        assert [w for w in won if w is not None] == [f"secret-{round_}"]
        assert svc.find("user", "42") == []


def test_concurrent_incr_loses_no_count(svc: CacheService) -> None:
    run_threads(8, lambda n: [svc.incr("hits", ttl=30) for _ in range(200)])
    assert svc.get("hits") == 1600
    assert 0 < (svc.ttl("hits") or 0) <= 30


def test_concurrent_resets_leave_each_entry_in_exactly_its_last_index(svc: CacheService) -> None:
    keys_ = [f"k{n}" for n in range(20)]

    def writer(n: int) -> None:
        for round_ in range(15):
            for key in keys_:
                svc.set(key, n, indexes={"slot": f"s{n}", "round": str(round_ % 3)})

    run_threads(8, writer)
    filed = {n: set(svc.find("slot", f"s{n}")) for n in range(8)}
    for key in keys_:
        holders = [n for n, members in filed.items() if key in members]
        assert holders == [svc.get(key)], (key, holders)
    by_round = [set(svc.find("round", str(r))) for r in range(3)]
    assert sorted(k for members in by_round for k in members) == sorted(keys_)
    assert svc.prune() == 0  # nothing stale was left behind


def test_concurrent_get_or_set_computes_once(svc: CacheService) -> None:
    calls: list[int] = []

    def compute() -> str:
        calls.append(1)
        threading.Event().wait(0.2)
        return "computed"

    results: list[Any] = []
    run_threads(10, lambda n: results.append(svc.get_or_set("slow", compute, wait=5)))
    assert results == ["computed"] * 10
    assert len(calls) == 1


def test_get_or_set_waiter_computes_itself_when_the_first_never_finishes(
    svc: CacheService,
) -> None:
    provider = svc.provider
    assert isinstance(provider, RedisProvider)
    guard = provider.layout.lock("get_or_set", "stuck")
    provider.connection.client.set(guard, "someone-else", px=5_000)  # a computer that died
    assert svc.get_or_set("stuck", lambda: "mine", wait=0.2) == "mine"
    assert svc.get("stuck") == "mine"


def test_get_or_set_guard_lives_wait_seconds_and_at_least_one(svc: CacheService) -> None:
    """The computer's guard expires after ``wait`` (at least 1 s), so one that dies holds the
    others back no longer than they would wait anyway; it is gone once the value is stored."""
    provider = svc.provider
    assert isinstance(provider, RedisProvider)
    client = provider.connection.client
    lives: dict[str, int] = {}

    def compute(key: str) -> Callable[[], str]:
        def build() -> str:
            lives[key] = int(client.pttl(provider.layout.lock("get_or_set", key)))
            return key

        return build

    assert svc.get_or_set("long", compute("long"), wait=3) == "long"
    assert svc.get_or_set("short", compute("short"), wait=0.2) == "short"
    assert 2_500 < lives["long"] <= 3_000
    assert 500 < lives["short"] <= 1_000
    assert not client.exists(*(provider.layout.lock("get_or_set", k) for k in lives))


def test_lock_is_exclusive_across_threads_and_expires(svc: CacheService) -> None:
    inside: list[int] = []
    overlap: list[bool] = []

    def critical(n: int) -> None:
        with svc.lock("section", timeout=10, blocking_timeout=10):
            inside.append(n)
            overlap.append(len(inside) > 1)
            threading.Event().wait(0.01)
            inside.remove(n)

    run_threads(6, critical)
    assert overlap == [False] * 6
    held = svc.lock("short", timeout=0.1, blocking_timeout=0)
    assert held.acquire()
    assert not svc.lock("short", timeout=1, blocking_timeout=0).acquire()
    threading.Event().wait(0.15)
    other = svc.lock("short", timeout=1, blocking_timeout=0)
    assert other.acquire()
    held.release()  # expired and now someone else's: releasing leaves theirs alone
    assert other.locked()
    other.release()
    assert not other.locked()


# -- hostile names ----------------------------------------------------------------------------

HOSTILE = ["*", "?", "[a]", "[!a]", "\\", "a*b", "a:b", "a%3Ab", "a b", "ü", "k:x", "", "\\*"]


def test_glob_hostile_keys_index_values_and_patterns(svc: CacheService) -> None:
    keys_ = [f"key{h}" for h in HOSTILE]
    for n, key in enumerate(keys_):
        svc.set(key, n, indexes={"v": HOSTILE[n] or "empty", "all": "*"})
    for n, value in enumerate(HOSTILE):
        assert svc.find("v", value or "empty") == [keys_[n]]
    assert sorted(svc.find("all", "*")) == sorted(keys_)
    assert svc.find("all", "?") == []
    assert svc.find("all", "[*]") == []
    assert sorted(svc.keys()) == sorted(keys_)
    assert sorted(svc.keys("key[*]")) == ["key*"]
    assert sorted(svc.keys("key[[]*")) == ["key[!a]", "key[a]"]
    assert sorted(svc.keys("key?")) == sorted(k for k in keys_ if len(k) == 4)
    assert sorted(svc.keys("key\\*")) == ["key\\", "key\\*"]  # fnmatch: no escapes
    assert svc.delete_by_index("v", "*") == 1
    assert not svc.has_key("key*")
    assert svc.count() == len(keys_) - 1


def test_large_index_read_in_chunks(svc: CacheService, monkeypatch: pytest.MonkeyPatch) -> None:
    """An index over MGET_CHUNK members is read chunk by chunk (ZMSCORE against TIME)."""
    monkeypatch.setattr(redis_steps, "MGET_CHUNK", 2)
    for n in range(5):
        svc.set(f"m{n}", n, indexes={"g": "big"})
    svc.set("m1", 1, indexes={"g": "other"})  # re-filed away
    svc.delete("m3")
    assert svc.get_by_index("g", "big") == {"m0": 0, "m2": 2, "m4": 4}
    assert asyncio.run(svc.afind("g", "big")) == ["m0", "m2", "m4"]


def test_foreign_keys_under_the_prefix_are_never_touched(
    svc: CacheService, raw: redis.Redis
) -> None:
    """Keys someone else wrote under the namespace's stored prefix, in shapes the app never
    writes, are not listed, counted, pruned or flushed (the hostile suite's canaries found
    ``clear()`` UNLINKing one)."""
    provider = svc.provider
    assert isinstance(provider, RedisProvider)
    prefix = provider.layout.prefix
    assert prefix is not None
    foreign = {
        f"{prefix}k": "bare kind",
        f"{prefix}k:a:b": "two parts",
        f"{prefix}k:a b": "unescaped space",
        f"{prefix}m:x:y": "meta-like",
        f"{prefix}l": "bare lock",
        f"{prefix}z:1": "unknown kind",
    }
    raw.mset(foreign)
    raw.zadd(f"{prefix}i:only-one-part", {"k": 1})  # index-like, expired score
    try:
        svc.set("a", 1, indexes={"g": "v"})
        svc.set("b", 2, ttl=1)
        with svc.lock("held", timeout=5):
            pass
        assert sorted(svc.keys()) == ["a", "b"]
        assert sorted(asyncio.run(svc.akeys())) == ["a", "b"]
        assert svc.count() == 2
        assert svc.stats()["entries"] == 2
        svc.prune()
        assert svc.clear() == 2
        assert svc.count() == 0
        assert {k: raw.get(k) for k in foreign} == {k: v.encode() for k, v in foreign.items()}
        assert raw.zrange(f"{prefix}i:only-one-part", 0, -1, withscores=True) == [(b"k", 1.0)]
    finally:
        raw.delete(*foreign, f"{prefix}i:only-one-part")


def test_every_redis_lock_is_redis_pys_lock_taken_in_one_module() -> None:
    """``service.lock()`` and ``get_or_set``'s guard both go through ``lock.py`` (redis-py's
    ``Lock``): no hand-rolled SET NX, nor a release script of our own, beside it."""
    package = Path(redis_scripts.__file__).parent
    for path in package.glob("*.py"):
        text = path.read_text()
        if path.name == "lock.py":
            assert "redis.lock.Lock(" in text
            assert "redis.asyncio.lock.Lock(" in text
            continue
        for set_nx in ('"NX"', "'NX'", "nx=True"):
            assert set_nx not in text, path.name
        assert "lock.Lock(" not in text, path.name
    assert "release" not in redis_scripts.SOURCES


def test_get_or_set_guard_is_held_as_a_redis_py_lock(svc: CacheService, raw: redis.Redis) -> None:
    provider = svc.provider
    assert isinstance(provider, RedisProvider)
    guard = provider.layout.lock("get_or_set", "g")
    seen: list[bool] = []

    def compute() -> int:
        other = redis.lock.Lock(raw, guard, timeout=5)
        seen.append(other.locked())
        seen.append(other.acquire(blocking=False))
        return 7

    assert svc.get_or_set("g", compute, ttl=60) == 7
    assert seen == [True, False]
    assert not raw.exists(guard)  # freed by its owner's token


#: Non-public attributes of Django's RedisCache, django-redis's client and redis-py's Retry.
_LIBRARY_INTERNALS = re.compile(
    r"(?<!self)\._(?:cache|servers?|pool_class|pool_options|options|serializer|compressor"
    r"|backoff|retries|supported_errors)\b|[\"']_(?:serializer|compressor)[\"']"
)


def test_library_internals_are_read_in_one_module() -> None:
    """Public surfaces first; what has none is read in ``internals.py`` alone."""
    package = Path(redis_scripts.__file__).parent
    for path in package.glob("*.py"):
        found = _LIBRARY_INTERNALS.findall(path.read_text())
        assert bool(found) == (path.name == "internals.py"), (path.name, found)
