"""The failure policy (DESIGN §5) on real Redis servers in every failure the tests can make.

* Unreachable (nothing listens) or timed out (black-holed, frozen): every call raises
  ``CacheUnavailable`` carrying the client's error, within the bound the timeouts set; under
  ``FAIL_SILENTLY`` the same calls return the default / False / nothing, with one warning per
  interval. Whole-namespace operations and locks raise even then.
* Refused (out of memory under ``noeviction``, no permission under an ACL user, a wrong
  password): always raises ``CacheRefused`` naming the namespace and the server's reason (the
  client's error as its cause), never silenced, and leaves indexes whole.
* With no timeouts in OPTIONS the app applies its defaults, so a frozen server cannot hang
  a worker.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import redis
from django.test.utils import override_settings

from agenthub_cache import CacheRefused, CacheService, CacheUnavailable, checks, policy
from agenthub_cache.providers.redis import RedisProvider
from agenthub_cache.providers.redis import connections as redis_connections
from tests import servers
from tests.conftest import unique_namespace
from tests.proxy import Proxy
from tests.reliability import Tally, record
from tests.reliability_workload import raw_client, redis_dangling

pytestmark = pytest.mark.filterwarnings("error")

TIMEOUT = 0.5
BOUND = 2 * TIMEOUT + 1.5
ALIASES = ["dr", "dj"]


def alias_settings(url: str, timeouts: bool = True, **extra: Any) -> dict[str, Any]:
    dr_options: dict[str, Any] = {}
    dj_options: dict[str, Any] = {}
    if timeouts:
        dr_options = {"SOCKET_TIMEOUT": TIMEOUT, "SOCKET_CONNECT_TIMEOUT": TIMEOUT}
        dj_options = {"socket_timeout": TIMEOUT, "socket_connect_timeout": TIMEOUT}
    if "user" in extra:
        dr_options |= {"USERNAME": extra["user"], "PASSWORD": extra["password"]}
        dj_options |= {"username": extra["user"], "password": extra["password"]}
    return {
        "dr": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"{url}/0",
            "OPTIONS": dr_options,
        },
        "dj": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"{url}/0",
            "OPTIONS": dj_options,
        },
    }


def sync_calls(svc: CacheService) -> dict[str, Callable[[], Any]]:
    """Every sync call of the API, each with what it returns when failing silently."""
    return {
        "get": lambda: svc.get("a", "dflt"),
        "get_many": lambda: svc.get_many(["a"]),
        "set": lambda: svc.set("a", 1, indexes={"i": "v"}),
        "add": lambda: svc.add("a", 1),
        "set_many": lambda: svc.set_many({"a": 1}),
        "delete": lambda: svc.delete("a"),
        "delete_many": lambda: svc.delete_many(["a"]),
        "has_key": lambda: svc.has_key("a"),
        "contains": lambda: "a" in svc,
        "pop": lambda: svc.pop("a", "dflt"),
        "incr": lambda: svc.incr("n"),
        "decr": lambda: svc.decr("n"),
        "ttl": lambda: svc.ttl("a"),
        "touch": lambda: svc.touch("a"),
        "persist": lambda: svc.persist("a"),
        "get_or_set": lambda: svc.get_or_set("a", lambda: "computed"),
        "find": lambda: svc.find("i", "v"),
        "get_by_index": lambda: svc.get_by_index("i", "v"),
        "count_by_index": lambda: svc.count_by_index("i", "v"),
        "delete_by_index": lambda: svc.delete_by_index("i", "v"),
        "prune": lambda: svc.prune(),
    }


SILENT = {
    "get": "dflt",
    "get_many": {},
    "set": False,
    "add": False,
    "set_many": ["a"],
    "delete": False,
    "delete_many": 0,
    "has_key": False,
    "contains": False,
    "pop": "dflt",
    "incr": 0,
    "decr": 0,
    "ttl": 0,
    "touch": False,
    "persist": False,
    "get_or_set": "computed",
    "find": [],
    "get_by_index": {},
    "count_by_index": 0,
    "delete_by_index": 0,
    "prune": 0,
}


def admin_calls(svc: CacheService) -> dict[str, Callable[[], Any]]:
    """Calls that raise even under ``FAIL_SILENTLY``: an operator must see them fail."""

    def hold_lock() -> None:
        with svc.lock("l", timeout=5, blocking_timeout=0.1):
            pass

    return {
        "keys": svc.keys,
        "count": svc.count,
        "clear": svc.clear,
        "stats": svc.stats,
        "lock": hold_lock,
    }


def async_calls(svc: CacheService) -> dict[str, Callable[[], Awaitable[Any]]]:
    async def hold_lock() -> None:
        async with svc.lock("l", timeout=5, blocking_timeout=0.1):
            pass

    return {
        "get": lambda: svc.aget("a", "dflt"),
        "set": lambda: svc.aset("a", 1, indexes={"i": "v"}),
        "pop": lambda: svc.apop("a", "dflt"),
        "incr": lambda: svc.aincr("n"),
        "find": lambda: svc.afind("i", "v"),
        "count_by_index": lambda: svc.acount_by_index("i", "v"),
        "delete_by_index": lambda: svc.adelete_by_index("i", "v"),
        "get_or_set": lambda: svc.aget_or_set("a", lambda: "computed"),
        "clear": svc.aclear,
        "keys": svc.akeys,
        "lock": hold_lock,
    }


ASYNC_ADMIN = {"clear", "keys", "lock"}


def check_every_call(
    alias: str, cause: type[BaseException], tally: Tally, caplog: pytest.LogCaptureFixture
) -> None:
    """Loud namespaces raise ``CacheUnavailable`` from ``cause``; quiet ones return defaults."""
    loud = CacheService(unique_namespace("loud"), default_ttl=60, cache=alias)
    quiet = CacheService(unique_namespace("quiet"), default_ttl=60, cache=alias, fail_silently=True)

    def timed(call: Callable[[], Any]) -> Any:
        started = time.monotonic()
        try:
            return call()
        finally:
            elapsed = time.monotonic() - started
            tally.add("operations")
            if elapsed > BOUND:
                tally.add("calls_over_bound")
                tally.note(f"{call} took {elapsed:.2f} s")

    def all_at_once(calls: dict[str, Callable[[], Any]]) -> dict[str, Any]:
        """Run the calls concurrently (each must still end in bound); name -> result or error."""
        results: dict[str, Any] = {}

        def run(name: str, call: Callable[[], Any]) -> None:
            try:
                results[name] = timed(call)
            except Exception as exc:
                results[name] = exc

        threads = [threading.Thread(target=run, args=item) for item in calls.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(BOUND + 10)
        return results

    for name, outcome in all_at_once({**sync_calls(loud), **admin_calls(loud)}).items():
        assert isinstance(outcome, CacheUnavailable), (name, outcome)
        assert loud.namespace in str(outcome)
        assert isinstance(outcome.__cause__, cause), (name, outcome.__cause__)
    with caplog.at_level(logging.WARNING, logger="agenthub_cache"):
        for name, outcome in all_at_once(sync_calls(quiet)).items():
            assert outcome == SILENT[name], (name, outcome)
        for name, outcome in all_at_once(admin_calls(quiet)).items():
            assert isinstance(outcome, CacheUnavailable), (name, outcome)
    warned = [r for r in caplog.records if quiet.namespace in r.getMessage()]
    assert len(warned) == 1, "one warning per interval, not one per call"

    async def twins() -> None:
        for svc in (loud, quiet):
            calls = async_calls(svc)
            started = time.monotonic()
            outcomes = await asyncio.gather(
                *(call() for call in calls.values()), return_exceptions=True
            )
            assert time.monotonic() - started < BOUND
            tally.add("operations", len(calls))
            for name, outcome in zip(calls, outcomes, strict=True):
                if svc is quiet and name not in ASYNC_ADMIN:
                    assert outcome == SILENT[name], (name, outcome)
                    continue
                assert isinstance(outcome, CacheUnavailable), (name, outcome)
                assert isinstance(outcome.__cause__, cause), (name, outcome.__cause__)
            await svc.aclose()

    asyncio.run(twins())


@pytest.mark.parametrize("alias", ALIASES)
def test_nothing_listening(
    alias: str, stores: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    url = f"redis://127.0.0.1:{servers.free_port()}"
    tally = Tally()
    with override_settings(CACHES={**stores, **alias_settings(url)}):
        check_every_call(alias, redis.exceptions.ConnectionError, tally, caplog)
    tally.add("faults_injected")
    tally.add("faults_survived")
    record(f"policy: nothing listening ({alias})", tally)
    assert not tally.bad(), tally.notes


def test_bad_ttls_are_refused_before_any_io(stores: dict[str, Any]) -> None:
    """Nothing listens, yet an out-of-range TTL is a ValueError, not CacheUnavailable."""
    url = f"redis://127.0.0.1:{servers.free_port()}"
    with override_settings(CACHES={**stores, **alias_settings(url)}):
        for alias in ALIASES:
            svc = CacheService(unique_namespace("range"), default_ttl=60, cache=alias)
            with pytest.raises(ValueError, match=rf"{svc.namespace}.*from 0 to"):
                svc.set("k", 1, ttl=10**20)
            with pytest.raises(ValueError, match=rf"{svc.namespace}.*from 0 to"):
                svc.touch("k", 10**20)
            with pytest.raises(ValueError, match=rf"{svc.namespace}.*from 0 to"):
                svc.incr("k", ttl=10**20)
            with pytest.raises(CacheUnavailable):
                svc.set("k", 1, ttl=10)


def test_incr_default_is_what_a_silenced_outage_returns(stores: dict[str, Any]) -> None:
    """A rate limit must not let everything through while the store is down: under
    ``FAIL_SILENTLY`` ``incr`` returns the caller's ``default`` (0 when none is given)."""
    url = f"redis://127.0.0.1:{servers.free_port()}"
    with override_settings(CACHES={**stores, **alias_settings(url)}):
        quiet = CacheService(unique_namespace("rl"), default_ttl=60, cache="dr", fail_silently=True)
        limit = 5
        assert quiet.incr("ip", ttl=60) == 0
        assert quiet.incr("ip", ttl=60, default=limit + 1) == limit + 1
        assert quiet.decr("slots", default=-1) == -1

        async def twins() -> None:
            assert await quiet.aincr("ip", ttl=60, default=limit + 1) == limit + 1
            assert await quiet.adecr("slots", default=7) == 7
            await quiet.aclose()

        asyncio.run(twins())
        loud = CacheService(unique_namespace("rl"), default_ttl=60, cache="dr")
        with pytest.raises(CacheUnavailable):
            loud.incr("ip", default=limit + 1)  # only silenced outages return it
        with pytest.raises(ValueError, match=rf"{quiet.namespace}.*default must be an int"):
            quiet.incr("ip", default="6")  # type: ignore[arg-type]


@pytest.fixture
def proxied(stores: dict[str, Any]) -> Iterator[Proxy]:
    srv = servers.redis_server().start()
    proxy = Proxy(srv.port).start()
    with override_settings(CACHES={**stores, **alias_settings(proxy.url)}):
        yield proxy
    proxy.stop()
    srv.stop()


@pytest.mark.parametrize("alias", ALIASES)
def test_black_holed_calls_time_out_in_bound_and_recover(
    proxied: Proxy, alias: str, caplog: pytest.LogCaptureFixture
) -> None:
    tally = Tally()
    probe = CacheService(unique_namespace("probe"), default_ttl=60, cache=alias)
    assert probe.set("k", 1)
    proxied.blackhole()
    tally.add("faults_injected")
    try:
        check_every_call(alias, redis.exceptions.TimeoutError, tally, caplog)
    finally:
        proxied.heal()
    assert probe.get("k") == 1  # no restart: the next call just works
    tally.add("faults_survived")
    record(f"policy: black hole ({alias})", tally)
    assert not tally.bad(), tally.notes
    probe.clear()


def test_warning_is_rate_limited(
    proxied: Proxy, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(policy, "WARNING_INTERVAL", 0.5)
    quiet = CacheService(unique_namespace("rate"), default_ttl=60, cache="dr", fail_silently=True)
    proxied.reset()
    proxied.blackhole()
    try:
        with caplog.at_level(logging.WARNING, logger="agenthub_cache"):
            started = time.monotonic()
            calls = 0
            while time.monotonic() - started < 1.2:
                assert quiet.get("k", "d") == "d"
                calls += 1
    finally:
        proxied.heal()
    warned = [r for r in caplog.records if quiet.namespace in r.getMessage()]
    assert calls >= 2
    assert 2 <= len(warned) <= 3, [r.getMessage() for r in warned]
    assert "get()" in warned[0].getMessage()


# -- refused: always raises ------------------------------------------------------------------


@pytest.mark.parametrize("alias", ALIASES)
def test_out_of_memory_raises_even_when_failing_silently(
    alias: str, stores: dict[str, Any]
) -> None:
    srv = servers.redis_server(None, "--maxmemory", "2mb", "--maxmemory-policy", "noeviction")
    srv.start()
    try:
        with override_settings(CACHES={**stores, **alias_settings(srv.url)}):
            quiet = CacheService(
                unique_namespace("oom"), default_ttl=600, cache=alias, fail_silently=True
            )
            assert quiet.set("kept", "small", indexes={"i": "v"})
            big = "x" * 20_000
            refusals: list[CacheRefused] = []
            for n in range(1_000):  # fill until the server refuses, then a few times more
                try:
                    quiet.set(f"big{n}", big, indexes={"i": "v", "n": str(n)})
                except CacheRefused as exc:
                    refusals.append(exc)
                    if len(refusals) == 5:
                        break
            assert len(refusals) == 5
            for refusal in refusals:  # the namespace and the server's own reason
                assert isinstance(refusal.__cause__, redis.exceptions.OutOfMemoryError)
                assert quiet.namespace in str(refusal)
                assert "command not allowed when used memory" in str(refusal)
            with pytest.raises(CacheRefused, match=rf"{quiet.namespace}.*refused set_many"):
                quiet.set_many({f"many{n}": big for n in range(5)})
            with pytest.raises(CacheRefused, match="used memory"):
                quiet.incr("counter")

            async def twin() -> None:
                with pytest.raises(CacheRefused, match="used memory"):
                    await quiet.aset("abig", big, indexes={"i": "v"})
                assert "kept" in await quiet.afind("i", "v")  # reads work on a full server
                assert (await quiet.aget_by_index("i", "v"))["kept"] == "small"
                await quiet.aclose()

            asyncio.run(twin())
            assert quiet.get("kept") == "small"  # reads still work, by index too
            stored = set(quiet.find("i", "v"))
            assert "kept" in stored
            assert set(quiet.get_by_index("i", "v")) == stored
            with raw_client(quiet) as client:
                assert redis_dangling(quiet, client) == []
            assert quiet.delete_by_index("n", "0") == 1  # deleting is allowed, and frees
            assert quiet.clear() is not None
            assert quiet.set("after", 1)  # room again: no restart needed
            quiet.clear()
    finally:
        srv.stop()


@pytest.mark.parametrize("alias", ALIASES)
def test_no_permission_raises_even_when_failing_silently(
    alias: str, stores: dict[str, Any]
) -> None:
    srv = servers.redis_server().start()
    try:
        admin = redis.Redis(host=srv.host, port=srv.port)
        admin.acl_setuser(
            "reader", enabled=True, passwords=["+readpw"], keys=["*"], commands=["+@all", "-@write"]
        )
        admin.close()
        url = srv.url
        with override_settings(
            CACHES={**stores, **alias_settings(url, user="reader", password="readpw")}
        ):
            quiet = CacheService(
                unique_namespace("noperm"), default_ttl=60, cache=alias, fail_silently=True
            )
            assert quiet.get("k", "missing") == "missing"
            for refused in (
                lambda: quiet.set("k", 1, indexes={"i": "v"}),
                lambda: quiet.incr("n"),
                lambda: quiet.delete("k"),
            ):
                with pytest.raises(
                    CacheRefused, match=rf"{quiet.namespace}.*(NOPERM|can't run|no permissions)"
                ) as info:
                    refused()
                assert isinstance(info.value.__cause__, redis.exceptions.ResponseError)

            async def twins() -> None:
                with pytest.raises(CacheRefused, match=r"NOPERM|can't run|no permissions"):
                    await quiet.aset("k", 1)
                await quiet.aclose()

            asyncio.run(twins())
    finally:
        srv.stop()


@pytest.mark.parametrize("alias", ALIASES)
def test_wrong_password_raises_even_when_failing_silently(
    alias: str, stores: dict[str, Any]
) -> None:
    srv = servers.redis_server(None, "--requirepass", "right").start()
    try:
        with override_settings(
            CACHES={**stores, **alias_settings(srv.url, user="default", password="wrong")}
        ):
            quiet = CacheService(
                unique_namespace("badpw"), default_ttl=60, cache=alias, fail_silently=True
            )
            with pytest.raises(CacheRefused, match=quiet.namespace) as caught:
                quiet.get("k")
            assert isinstance(caught.value.__cause__, redis.exceptions.AuthenticationError)
            assert "wrong" not in str(caught.value)
            with pytest.raises(CacheRefused):
                quiet.set("k", 1)
    finally:
        srv.stop()


# -- the app's default timeouts ---------------------------------------------------------------


def test_default_timeouts_bound_calls_on_a_frozen_server(stores: dict[str, Any]) -> None:
    """No timeouts in OPTIONS: the app's defaults still end every call in bound."""
    bound = (
        redis_connections.DEFAULT_SOCKET_TIMEOUT
        + redis_connections.DEFAULT_SOCKET_CONNECT_TIMEOUT
        + 1.5
    )
    srv = servers.redis_server().start()
    try:
        with override_settings(CACHES={**stores, **alias_settings(srv.url, timeouts=False)}):
            services = {a: CacheService(unique_namespace("dflt"), cache=a) for a in ALIASES}
            for svc in services.values():
                assert svc.set("k", 1)
                provider = svc.provider
                assert isinstance(provider, RedisProvider)
                kwargs = provider.connection.client.connection_pool.connection_kwargs
                assert kwargs["socket_timeout"] == redis_connections.DEFAULT_SOCKET_TIMEOUT
                assert (
                    kwargs["socket_connect_timeout"]
                    == redis_connections.DEFAULT_SOCKET_CONNECT_TIMEOUT
                )
            outcomes: dict[str, Any] = {}

            def sync_get(alias: str) -> None:
                started = time.monotonic()
                try:
                    services[alias].get("k")
                except CacheUnavailable as exc:
                    outcomes[f"sync {alias}"] = (exc.__cause__, time.monotonic() - started)

            def async_get(alias: str) -> None:
                async def get() -> None:
                    started = time.monotonic()
                    try:
                        await services[alias].aget("k")
                    except CacheUnavailable as exc:
                        outcomes[f"async {alias}"] = (exc.__cause__, time.monotonic() - started)
                    await services[alias].aclose()

                asyncio.run(get())

            async def warm() -> None:  # open the async pools before the freeze
                for svc in services.values():
                    assert await svc.aget("k") == 1

            asyncio.run(warm())
            srv.freeze()
            try:
                threads = [
                    threading.Thread(target=fn, args=(alias,))
                    for alias in ALIASES
                    for fn in (sync_get, async_get)
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(bound + 5)
            finally:
                srv.thaw()
            assert sorted(outcomes) == sorted(
                f"{kind} {alias}" for alias in ALIASES for kind in ("sync", "async")
            )
            for name, (cause, elapsed) in outcomes.items():
                assert isinstance(cause, redis.exceptions.TimeoutError), (name, cause)
                assert elapsed < bound, (name, elapsed)
            for svc in services.values():
                assert svc.get("k") == 1
                svc.clear()
    finally:
        srv.stop()


# -- memcached --------------------------------------------------------------------------------


def memcached_alias(location: str, **options: Any) -> dict[str, Any]:
    return {
        "mc": {
            "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
            "LOCATION": location,
            "OPTIONS": options,
        }
    }


def test_memcached_down_then_back(stores: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    """With W004's options an outage is an error on every call, for as long as it lasts.

    pymemcache's defaults would answer the second and later calls of the first second with a
    silent miss (and drop writes); the app must see the outage on each call, and work again
    once the server is back, with no restart.
    """
    from pymemcache.exceptions import MemcacheError

    srv = servers.memcached_server()
    if srv is None:
        pytest.skip("memcached is not installed (apt-get install memcached)")
    srv.start()
    tally = Tally()
    try:
        options = {**checks.PYMEMCACHE_OPTIONS, "dead_timeout": 0.5, "timeout": TIMEOUT}
        with override_settings(CACHES={**stores, **memcached_alias(srv.location, **options)}):
            assert checks.W004 not in [m.id for m in checks.check_hazards()]
            loud = CacheService(unique_namespace("mc"), default_ttl=60, cache="mc")
            quiet = CacheService(
                unique_namespace("mcq"), default_ttl=60, cache="mc", fail_silently=True
            )
            assert loud.set("k", "v")
            assert loud.get("k") == "v"
            srv.kill()
            tally.add("faults_injected")
            deadline = time.monotonic() + 1.5  # past pymemcache's default retry_timeout
            while time.monotonic() < deadline:
                with pytest.raises(CacheUnavailable) as info:
                    loud.get("k")
                assert isinstance(info.value.__cause__, (ConnectionError, MemcacheError))
                with pytest.raises(CacheUnavailable):
                    loud.set("k", "w")
                with caplog.at_level(logging.WARNING, logger="agenthub_cache"):
                    assert quiet.get("k", "dflt") == "dflt"
                    assert quiet.set("k", "w") is False
                tally.add("operations", 4)
                time.sleep(0.05)
            srv.start()
            deadline = time.monotonic() + 10
            while True:
                try:
                    assert loud.set("k", "back")
                    break
                except CacheUnavailable:
                    assert time.monotonic() < deadline, "memcached came back, the app did not"
                    time.sleep(0.1)
            assert loud.get("k") == "back"
            tally.add("faults_survived")
    finally:
        srv.stop()
    record("policy: memcached down and back", tally)
    assert not tally.bad(), tally.notes


def test_pymemcache_defaults_warn(stores: dict[str, Any]) -> None:
    for options in ({}, {"retry_attempts": 2}, {**checks.PYMEMCACHE_OPTIONS, "ignore_exc": True}):
        with override_settings(
            CACHES={**stores, **memcached_alias("127.0.0.1:1", **options)},
            AGENTHUB_CACHE={"NAMESPACES": {"a": {"CACHE": "mc"}}},
        ):
            assert [m.id for m in checks.check_hazards()] == [checks.W004], options
    with override_settings(
        CACHES={**stores, **memcached_alias("127.0.0.1:1", **checks.PYMEMCACHE_OPTIONS)},
        AGENTHUB_CACHE={"NAMESPACES": {"a": {"CACHE": "mc"}}},
    ):
        assert checks.check_hazards() == []
