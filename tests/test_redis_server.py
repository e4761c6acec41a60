"""The Redis provider against servers of its own: what it sends, what it leaves, outages, W003.

Each test here starts the redis-server it needs (``tests.servers``), so it can reset command
statistics, fill a database, stop the server or run it with an eviction policy without
touching the session's server or any other Redis.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.core import checks
from django.core.cache import caches
from django.core.management import call_command
from django.test.utils import override_settings

from agenthub_cache import FOREVER, CacheService, CacheUnavailable, NotSupported
from agenthub_cache.checks import W003, check_redis_eviction
from agenthub_cache.providers.redis import steps as redis_steps
from tests import servers
from tests.conftest import BEFORE_REDIS7, unique_namespace

pytestmark = pytest.mark.filterwarnings("error")

FAST = {"SOCKET_TIMEOUT": 0.5, "SOCKET_CONNECT_TIMEOUT": 0.5}
FAST_DJANGO = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}


def hashed_key_func(key: str, key_prefix: str, version: int) -> str:
    """A KEY_FUNCTION that hides prefixes: the namespace cannot be listed, only used."""
    return hashlib.sha256(f"{key_prefix}:{version}:{key}".encode()).hexdigest()


def lower_key_func(key: str, key_prefix: str, version: int) -> str:
    """A KEY_FUNCTION that keeps prefixes but folds case: ``k`` survives it, ``K`` does not."""
    return f"{key_prefix}:{version}:{key}".lower()


def memcached_style_key_func(key: str, key_prefix: str, version: int) -> str:
    """A KEY_FUNCTION carried over from memcached: keys over 250 characters are hashed."""
    full = f"{key_prefix}:{version}:{key}"
    return full if len(full) <= 250 else "h:" + hashlib.sha256(full.encode()).hexdigest()


def redis_caches(server: servers.Server, stores: dict[str, Any]) -> dict[str, Any]:
    url = f"{server.url}/0"
    return {
        **stores,
        "star": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": url, "KEY_PREFIX": "p*"},
        "qmark": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "p?[x]",
        },
        # Redis's glob treats a backslash as an escape: django-redis's own glob_escape leaves
        # it as it is, so its pattern for p\x would list px's keys and miss its own.
        "backslash": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "p\\x",
        },
        "decoy1": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": url, "KEY_PREFIX": "pX"},
        "decoy3": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": url, "KEY_PREFIX": "px"},
        "decoy2": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "pax",
        },
        "hashed": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "KEY_FUNCTION": f"{__name__}.hashed_key_func",
        },
        "lower": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "KEY_FUNCTION": f"{__name__}.lower_key_func",
        },
        "long_hashed": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_FUNCTION": f"{__name__}.memcached_style_key_func",
        },
    }


@pytest.fixture(scope="module")
def own_server() -> Iterator[servers.Server]:
    server = servers.redis_server().start()
    yield server
    server.stop()


@pytest.fixture
def own(own_server: servers.Server, stores: dict[str, Any]) -> Iterator[redis.Redis]:
    """CACHES with aliases on the private server; yields a plain client on its database 0."""
    with override_settings(CACHES=redis_caches(own_server, stores)):
        client = redis.Redis(host=own_server.host, port=own_server.port, db=0)
        yield client
        client.flushdb()  # our own throw-away server: the one place a FLUSHDB is fine
        client.config_resetstat()
        client.connection_pool.disconnect()


def command_stats(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def exercise(svc: CacheService) -> None:
    """Every sync and async operation of the API, once."""
    svc.set("a", 1, indexes={"i": "1"})
    svc.add("b", 2, indexes={"i": "1"})
    svc.set_many({"c": 3, "d": 4})
    svc.get("a"), svc.get_many(["a", "b"]), svc.has_key("a"), svc.ttl("a")
    svc.touch("a", 30), svc.persist("a"), svc.incr("n"), svc.pop("d")
    svc.get_or_set("e", 5), svc.find("i", "1"), svc.get_by_index("i", "1")
    with svc.lock("l"):
        pass
    svc.keys(), svc.count(), svc.stats(), svc.prune(), svc.delete_by_index("i", "1")
    svc.delete("c"), svc.delete_many(["e"]), svc.clear()

    async def async_twins() -> None:
        await svc.aset("a", 1, indexes={"i": "1"})
        await svc.aget("a"), await svc.afind("i", "1"), await svc.akeys(), await svc.acount()
        await svc.astats(), await svc.aprune(), await svc.adelete_by_index("i", "1")
        await svc.aget_or_set("g", 1), await svc.apop("g"), await svc.aclear()

    asyncio.run(async_twins())


def test_never_keys_flushdb_or_flushall(own: redis.Redis) -> None:
    own.config_resetstat()
    for alias in ("star", "qmark"):
        exercise(CacheService("stats", default_ttl=60, cache=alias))
    used = command_stats(own)
    assert not {"keys", "flushdb", "flushall"} & set(used), used
    assert {"scan", "unlink", "evalsha", "mget"} <= set(used), used


@pytest.mark.parametrize("alias", ["star", "qmark"])
def test_a_set_that_keeps_its_indexes_moves_their_expiry_without_reading_them(
    own: redis.Redis, alias: str
) -> None:
    """Re-set with the same indexes and a later expiry: each index's expiry moves with one
    PEXPIREAT GT, no ZRANGE of its members (the set script did ZADD + ZRANGE + PEXPIREAT per
    index before, 10 commands for two indexes; now 8)."""
    svc = CacheService("keeps", cache=alias)
    svc.set("k", 1, ttl=10, indexes={"g": "x", "h": "y"})
    own.config_resetstat()
    svc.set("k", 2, ttl=20, indexes={"g": "x", "h": "y"})
    used = command_stats(own)
    assert used.get("zrange", 0) == 0, used
    assert used["pexpireat"] == 2
    inner = sum(n for name, n in used.items() if name not in ("evalsha", "config|resetstat"))
    assert inner == 8, used
    for name, value in (("g", "x"), ("h", "y")):
        index = caches[alias].make_key(svc.make_key("k")).replace(":k:k", f":i:{name}:{value}")
        assert 19_000 < own.pttl(index) <= 20_000
    svc.clear()


def test_index_expiry_stays_exact_when_a_kept_member_moves_down_or_forever(
    own: redis.Redis,
) -> None:
    """The cheap path of a set that keeps its indexes never leaves an index expiring later
    (or earlier) than its longest-lived member: a member lowered below another, made
    permanent, then expiring again, and a member set within the same millisecond."""
    svc = CacheService("exact", cache="star")
    index = caches["star"].make_key(svc.make_key("a")).replace(":k:a", ":i:g:x")

    def expiry() -> int:
        return int(own.pttl(index))

    svc.set("a", 1, ttl=100, indexes={"g": "x"})
    svc.set("b", 1, ttl=50, indexes={"g": "x"})
    assert 99_000 < expiry() <= 100_000
    svc.set("a", 1, ttl=10, indexes={"g": "x"})  # was the longest; now b is
    assert 49_000 < expiry() <= 50_000
    svc.set("b", 1, ttl=FOREVER, indexes={"g": "x"})
    assert expiry() == -1
    svc.set("b", 1, ttl=20, indexes={"g": "x"})  # forever no more: a at 10, b at 20
    assert 19_000 < expiry() <= 20_000
    svc.set("a", 1, ttl=30, indexes={"g": "x"})
    assert 29_000 < expiry() <= 30_000
    svc.set_many({"c": 1})
    svc.set("c", 1, ttl=30, indexes={"g": "x"})
    svc.set("c", 1, ttl=30, indexes={"g": "x"})  # likely the same score: already expiring there
    assert 29_000 < expiry() <= 30_000
    scores = own.zrange(index, 0, -1, withscores=True)
    assert own.pexpiretime(index) == max(score for _, score in scores)
    for member, score in scores:  # each member scored by its entry's own expiry, to the ms
        entry = caches["star"].make_key(svc.make_key(member.decode()))
        assert own.pexpiretime(entry) == score, member
    svc.clear()


def test_glob_characters_in_key_prefixes_reach_nothing_else(own: redis.Redis) -> None:
    services = {
        alias: CacheService("shared", cache=alias) for alias in ("star", "qmark", "backslash")
    }
    decoys = {
        alias: CacheService("shared", cache=alias) for alias in ("decoy1", "decoy2", "decoy3")
    }
    for alias, svc in {**services, **decoys}.items():
        svc.set_many({f"{alias}-{n}": n for n in range(50)})
        svc.set(f"{alias}-indexed", 1, indexes={"i": "*"})
    assert sorted(services["star"].keys()) == sorted(
        [f"star-{n}" for n in range(50)] + ["star-indexed"]
    )
    assert sorted(services["backslash"].keys()) == sorted(
        [f"backslash-{n}" for n in range(50)] + ["backslash-indexed"]
    )
    assert services["star"].clear() == 51
    assert services["qmark"].clear() == 51
    assert services["backslash"].clear() == 51
    for alias, decoy in decoys.items():
        assert decoy.count() == 51
        assert decoy.find("i", "*") == [f"{alias}-indexed"]
    assert own.dbsize() == 3 * (51 + 2)  # each decoy: 51 entries, one meta, one index


def test_flush_200k_keys_leaves_every_other_key(own: redis.Redis) -> None:
    big, other = CacheService("big", cache="star"), CacheService("big", cache="decoy1")
    neighbour = CacheService("big.more", cache="star")
    chunk = 5_000
    for start in range(0, 200_000, chunk):
        big.set_many({f"k{n}": n for n in range(start, start + chunk)}, ttl=600)
    big.set("indexed", 1, indexes={"user": "1"})
    other.set_many({f"k{n}": n for n in range(1_000)})
    neighbour.set_many({f"k{n}": n for n in range(1_000)})
    own.set("plain-key", b"untouched")
    before = own.dbsize()
    seen: list[int] = []
    assert big.clear(progress=seen.append) == 200_001
    assert seen == sorted(seen)
    assert seen[-1] == 200_001
    assert len(seen) > 10
    assert own.dbsize() == before - 200_003  # the entries, one meta and one index
    assert big.count() == 0
    assert big.find("user", "1") == []
    assert other.count() == 1_000
    assert neighbour.count() == 1_000
    assert own.get("plain-key") == b"untouched"


def test_flush_sends_no_script_exists_and_survives_a_script_flush(own: redis.Redis) -> None:
    """Each flush batch is one pipeline (no SCRIPT EXISTS before it), and a server that lost
    its scripts (SCRIPT FLUSH, restart) gets them again mid-flush, sync and async."""
    svc = CacheService("batched", cache="star")
    for clear in (svc.clear, lambda: asyncio.run(svc.aclear())):
        svc.set_many({f"k{n}": n for n in range(5_000)})
        svc.set("indexed", 1, indexes={"i": "x"})
        own.script_flush()
        own.config_resetstat()
        assert clear() == 5_001
        used = command_stats(own)
        assert "script|exists" not in used, used
        assert used["scan"] >= 5, used
        assert own.dbsize() == 0


def test_key_function_that_hides_prefixes(own: redis.Redis) -> None:
    svc = CacheService("hidden", cache="hashed")
    svc.set("a", 1, indexes={"i": "x"})
    svc.set("b", 2, indexes={"i": "x"})
    assert svc.get("a") == 1
    assert sorted(svc.find("i", "x")) == ["a", "b"]
    assert svc.pop("a") == 1
    assert svc.find("i", "x") == ["b"]
    svc.set_many({"b": 3, "c": 4})  # re-set without indexes: out of "x"
    assert svc.get_many(["b", "c"]) == {"b": 3, "c": 4}
    assert svc.find("i", "x") == []
    with pytest.raises(NotSupported, match="KEY_FUNCTION"):
        svc.keys()
    with pytest.raises(NotSupported, match="KEY_FUNCTION"):
        svc.clear()
    assert svc.delete_many(["b", "c", "d"]) == 2
    assert own.dbsize() == 0


async def test_key_function_that_hides_prefixes_says_what_works(own: redis.Redis) -> None:
    """Capabilities say no listing or flush; ``stats`` and the command say "not listable"."""
    svc = CacheService("hidden", cache="hashed")
    assert svc.capabilities.list_keys is False
    assert svc.capabilities.flush == "none"
    assert svc.capabilities.indexes == "atomic"
    svc.set("a", 1, indexes={"i": "x"})
    for stats in (svc.stats(), await svc.astats()):
        assert stats["entries"] is None
        assert stats["listing"].startswith("not listable")
    with override_settings(AGENTHUB_CACHE={"NAMESPACES": {"hidden": {"CACHE": "hashed"}}}):
        out = io.StringIO()
        call_command("cache_namespaces", "stats", "hidden", stdout=out)
        assert "not listable" in out.getvalue()
        assert "can list keys" in out.getvalue()
        out = io.StringIO()
        call_command("cache_namespaces", "list", "--format", "json", stdout=out)
        rows = json.loads(out.getvalue())["namespaces"]
        (row,) = [r for r in rows if r["namespace"] == "hidden"]
        assert row["error"] is None
        assert row["entries"] is None
        assert row["capabilities"]["list_keys"] is False
    assert svc.delete("a")
    assert own.dbsize() == 0


@pytest.mark.parametrize(
    ("backend", "db"),
    [("django.core.cache.backends.redis.RedisCache", 3), ("django_redis.cache.RedisCache", 4)],
)
def test_the_app_and_the_backend_share_one_sync_pool(
    own_server: servers.Server, stores: dict[str, Any], backend: str, db: int
) -> None:
    """The provider's sync calls go through the backend's own pool, not a second one beside
    it: the backend's call and the app's, one after another in one thread, take one socket
    (the pool's max_connections caps both). Before, Django's RedisCache got a pool of the
    app's own: two sockets."""
    configured = {**stores, "one_pool": {"BACKEND": backend, "LOCATION": f"{own_server.url}/{db}"}}
    with override_settings(CACHES=configured):
        svc = CacheService(f"one-pool-{db}", default_ttl=60, cache="one_pool")
        caches["one_pool"].set("theirs", 1)
        assert svc.set("ours", 2)
        assert svc.get("ours") == 2
        assert caches["one_pool"].get("theirs") == 1
        with redis.Redis(host=own_server.host, port=own_server.port) as probe:
            sockets = [c for c in probe.client_list() if c["db"] == str(db)]
        svc.clear()
    assert len(sockets) == 1, sockets


@pytest.mark.parametrize(("alias", "key"), [("lower", "Mixed Case"), ("long_hashed", "x" * 300)])
def test_key_function_that_rewrites_some_keys(own: redis.Redis, alias: str, key: str) -> None:
    """A key function that keeps short lower-case prefixes but rewrites other keys is applied
    to every key, so ``caches[alias]`` and the app still read each other's values."""
    svc = CacheService("rewritten", cache=alias)
    cache = caches[alias]
    svc.set(key, "from the app", indexes={"i": "X"})
    assert cache.get(svc.make_key(key)) == "from the app"
    cache.set(svc.make_key(f"{key}2"), "from django")
    assert svc.get(f"{key}2") == "from django"
    assert svc.get_many([key, f"{key}2"]) == {key: "from the app", f"{key}2": "from django"}
    assert svc.find("i", "X") == [key]
    assert svc.pop(key) == "from the app"
    assert cache.get(svc.make_key(key)) is None
    with pytest.raises(NotSupported, match="KEY_FUNCTION"):
        svc.keys()
    assert svc.delete(f"{key}2")
    assert own.dbsize() == 0


@pytest.mark.parametrize("chunked", [False, True])
def test_index_reads_without_zmscore(
    stores: dict[str, Any], monkeypatch: pytest.MonkeyPatch, chunked: bool
) -> None:
    """Servers older than Redis 6.2 (no ZMSCORE) read indexes too: a small index needs no
    ZMSCORE, a large one (chunked; here chunks of 1) is read through one script instead."""
    if chunked:
        monkeypatch.setattr(redis_steps, "MGET_CHUNK", 1)
    server = servers.redis_server(None, "--rename-command", "ZMSCORE", "").start()
    try:
        url = f"{server.url}/0"
        with override_settings(
            CACHES={**stores, "old": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": url}}
        ):
            svc = CacheService("old", default_ttl=60, cache="old")
            svc.set("a", 1, indexes={"g": "x"})
            svc.set("b", 2, indexes={"g": "x"})
            svc.set("c", 3, indexes={"g": "y"})
            svc.set("c2", 4, indexes={"g": "y"})
            with redis.Redis(host=server.host, port=server.port) as plain:
                scripts_before = plain.info("commandstats")["cmdstat_evalsha"]["calls"]
                assert svc.get_by_index("g", "x") == {"a": 1, "b": 2}
                assert sorted(asyncio.run(svc.afind("g", "y"))) == ["c", "c2"]
                scripts = plain.info("commandstats")["cmdstat_evalsha"]["calls"] - scripts_before
                # chunked: one script per read (its first call also meets NOSCRIPT once)
                assert scripts >= 2 if chunked else scripts == 0
                with pytest.raises(redis.ResponseError, match="unknown command"):
                    plain.zmscore("any", ["member"])
    finally:
        server.stop()


def _calls(client: redis.Redis, command: str) -> int:
    return int(client.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))


@pytest.mark.parametrize("alias", [BEFORE_REDIS7, "redis"])
def test_the_before_redis7_alias_runs_the_scripts_as_on_older_servers(
    alias: str, redis_server: servers.Server, redis_before7_server: servers.Server
) -> None:
    """The contract suite's ``BEFORE_REDIS7`` alias runs what a server before Redis 7 runs:
    scores from TIME and indexes refreshed from their members, on a server that has no
    PEXPIRETIME or ZMSCORE (the ``redis`` alias, beside it, reads scores with PEXPIRETIME)."""
    server = redis_before7_server if alias == BEFORE_REDIS7 else redis_server
    svc = CacheService(unique_namespace(), default_ttl=60, cache=alias)
    with redis.Redis(host=server.host, port=server.port) as plain:
        before = {command: _calls(plain, command) for command in ("time", "pexpiretime")}
        assert svc.set("a", 1, indexes={"g": "x"})
        assert svc.set("a", 2, indexes={"g": "x"}, ttl=30)  # kept where it was filed
        assert asyncio.run(svc.aset("b", 3, indexes={"g": "x"}))
        assert svc.get_by_index("g", "x") == {"a": 2, "b": 3}
        ran = {command: _calls(plain, command) - n for command, n in before.items()}
        if alias == BEFORE_REDIS7:
            assert ran == {"time": 3, "pexpiretime": 0}
            with pytest.raises(redis.ResponseError, match="unknown command"):
                plain.execute_command("PEXPIRETIME", "any")
        else:  # one more where the shorter ttl made PEXPIREAT GT leave the index's expiry
            assert ran == {"time": 0, "pexpiretime": 4}
    svc.clear()


# -- outages ---------------------------------------------------------------------------------


@pytest.fixture
def fragile(stores: dict[str, Any]) -> Iterator[servers.Server]:
    server = servers.redis_server().start()
    url = f"{server.url}/0"
    with override_settings(
        CACHES={
            **stores,
            "dr": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": url, "OPTIONS": FAST},
            "dj": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": url,
                "OPTIONS": FAST_DJANGO,
            },
        }
    ):
        yield server
    server.stop()


@pytest.mark.parametrize("alias", ["dr", "dj"])
def test_down_server_is_unavailable_then_recovers(fragile: servers.Server, alias: str) -> None:
    svc = CacheService("fragile", default_ttl=60, cache=alias)
    quiet = CacheService("fragile", default_ttl=60, cache=alias, fail_silently=True)
    assert svc.set("k", 1)
    fragile.kill()
    with pytest.raises(CacheUnavailable) as caught:
        svc.get("k")
    assert isinstance(caught.value.__cause__, redis.exceptions.ConnectionError)
    with pytest.raises(CacheUnavailable):
        asyncio.run(svc.aget("k"))
    assert quiet.get("k", "default") == "default"
    assert quiet.set("k", 2) is False
    assert asyncio.run(quiet.aget("k", "default")) == "default"
    fragile.start()
    assert svc.set("k", 3)
    assert svc.get("k") == 3
    assert asyncio.run(svc.aget("k")) == 3


@pytest.mark.parametrize("alias", ["dr", "dj"])
def test_frozen_server_times_out(fragile: servers.Server, alias: str) -> None:
    svc = CacheService("frozen", default_ttl=60, cache=alias)
    svc.set("k", 1)
    fragile.freeze()
    try:
        started = time.monotonic()
        with pytest.raises(CacheUnavailable):
            svc.get("k")
        assert time.monotonic() - started < 10
    finally:
        fragile.thaw()
    assert svc.get("k") == 1


# -- W003 ------------------------------------------------------------------------------------


def eviction_settings(stores: dict[str, Any], url: str) -> dict[str, Any]:
    return {
        "CACHES": {
            **stores,
            "evicting": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": url},
            "evicting_dj": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": url,
            },
        },
        "AGENTHUB_CACHE": {
            "CACHE": "locmem",
            "NAMESPACES": {
                "signup": {"CACHE": "evicting"},
                "session": {"CACHE": "evicting_dj"},
                "temp": {},
            },
        },
    }


def w003(include_deployment_checks: bool) -> list[checks.CheckMessage]:
    found = checks.run_checks(
        include_deployment_checks=include_deployment_checks, tags=[checks.Tags.caches]
    )
    return [message for message in found if message.id == W003]


def test_w003_warns_for_allkeys_policies(stores: dict[str, Any]) -> None:
    server = servers.redis_server(None, "--maxmemory-policy", "allkeys-lru").start()
    try:
        with override_settings(**eviction_settings(stores, f"{server.url}/0")):
            warnings_ = w003(include_deployment_checks=True)
            assert [w.id for w in warnings_] == [W003, W003]
            assert "signup" in warnings_[0].msg
            assert "allkeys-lru" in warnings_[0].msg
            assert warnings_[0].hint
            assert w003(include_deployment_checks=False) == []  # not on every command
    finally:
        server.stop()


def test_w003_quiet_for_safe_policy_and_unreachable_server(
    stores: dict[str, Any], redis_server: servers.Server
) -> None:
    with override_settings(**eviction_settings(stores, f"{redis_server.url}/0")):
        assert check_redis_eviction() == []
    nobody = f"redis://127.0.0.1:{servers.free_port()}/0"
    with override_settings(**eviction_settings(stores, nobody)):
        started = time.monotonic()
        assert check_redis_eviction() == []
        assert time.monotonic() - started < 5
