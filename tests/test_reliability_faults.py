"""Faults on a Redis the tests start: frozen, killed mid-flush and mid-write, a faulty network.

The mixed workload of ``reliability_workload`` runs in threads (sync) and in tasks on an
event loop (async) while the server is frozen with SIGSTOP and resumed, killed with SIGKILL
and restarted on the same port (with an append-only file fsynced on every write, so what was
acknowledged survives), or reached through ``tests.proxy`` while it delays, cuts replies in
the middle or black-holes. Throughout: every call returns within its bound (timeouts come
from the backend's OPTIONS), no reply reaches the wrong caller, the service recovers with no
restart; afterwards no acknowledged write or increment is lost, every live entry is
reachable from each of its indexes, and after ``prune`` no index member points at a missing
entry.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.test.utils import override_settings

from agenthub_cache import CacheService, CacheUnavailable
from tests import servers
from tests.conftest import unique_namespace
from tests.proxy import Proxy
from tests.reliability import Profile, Tally, profiles, record
from tests.reliability_workload import (
    GROUPS,
    Bound,
    Model,
    Shared,
    Threads,
    check_state,
    final_flush,
    raw_client,
    recovered,
    redis_dangling,
    run_sync,
    start_async,
    value_for,
)

pytestmark = pytest.mark.filterwarnings("error")

#: Socket and connect timeout of every alias here (seconds).
TIMEOUT = 0.5
#: The most one call may take: a connect and a command, each timing out, and some slack.
BOUND = 2 * TIMEOUT + 1.5
#: The server persists every write before replying, so a SIGKILL loses nothing acknowledged.
DURABLE = ("--appendonly", "yes", "--appendfsync", "always")
ALIASES = ["dr", "dj"]


def alias_settings(url: str) -> dict[str, Any]:
    """A django-redis alias and a Django ``RedisCache`` alias on ``url``, with short timeouts."""
    return {
        "dr": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"{url}/0",
            "OPTIONS": {"SOCKET_TIMEOUT": TIMEOUT, "SOCKET_CONNECT_TIMEOUT": TIMEOUT},
        },
        "dj": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"{url}/0",
            "OPTIONS": {"socket_timeout": TIMEOUT, "socket_connect_timeout": TIMEOUT},
        },
    }


@pytest.fixture
def server(stores: dict[str, Any]) -> Iterator[servers.Server]:
    srv = servers.redis_server(None, *DURABLE).start()
    with override_settings(CACHES={**stores, **alias_settings(srv.url)}):
        yield srv
    srv.stop()


def shared_for(alias: str, tally: Tally, workers: int) -> Shared:
    svc = CacheService(unique_namespace("fault"), default_ttl=600, cache=alias)
    counters = CacheService(unique_namespace("fcount"), default_ttl=600, cache=alias)
    return Shared(svc, counters, tally, Bound(BOUND), faults=True, workers=workers)


def verify(request: pytest.FixtureRequest, runs: list[tuple[Shared, list[Model]]]) -> None:
    """Invariants after the faults, then a final flush; records the figures of the test."""
    tally = runs[0][0].tally
    for shared, models in runs:
        svc = shared.svc
        until = time.monotonic() + 15  # the first calls after a restart may find it loading
        while True:
            try:
                check_state(shared, models)
                svc.prune()
                break
            except CacheUnavailable:
                assert time.monotonic() < until, "the service did not recover"
                time.sleep(0.2)
        with raw_client(svc) as client:
            for problem in redis_dangling(svc, client):
                tally.add("index_violations")
                tally.note(problem)
            left = final_flush(svc, client)
            shared.counters.clear()
        assert left == 0, f"{left} keys of {svc.namespace} left after the final flush"
    record(request.node.nodeid, tally)
    worst = max(shared.bound.worst for shared, _ in runs)
    assert not tally.bad(), (tally.bad(), tally.notes, f"worst call {worst:.2f} s")


# -- SIGSTOP ---------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", profiles())
@pytest.mark.parametrize("alias", ALIASES)
def test_frozen_server_during_mixed_load(
    server: servers.Server, alias: str, profile: Profile, request: pytest.FixtureRequest
) -> None:
    """Freeze the server ``profile.freezes`` times for ``profile.freeze_seconds`` each."""
    tally = Tally()
    sync, tasks = shared_for(alias, tally, 6), shared_for(alias, tally, 16)
    tasks.stop = sync.stop
    threads, workers = run_sync(sync, flush_every=(0.5, 1.5))
    async_workers = start_async(tasks, threads, flush_every=None)
    try:
        assert recovered([sync, tasks], since=0.0)
        for _ in range(profile.freezes):
            time.sleep(1.0)
            server.freeze()
            tally.add("faults_injected")
            time.sleep(profile.freeze_seconds)
            server.thaw()
            if recovered([sync, tasks], since=time.monotonic()):
                tally.add("faults_survived")
        time.sleep(0.5)
    finally:
        server.thaw()
        sync.stop.set()
        threads.join()
    assert sync.unavailable + tasks.unavailable > 0, "the freezes were never noticed"
    verify(request, [(sync, list(workers)), (tasks, list(async_workers))])
    assert tally["faults_survived"] == tally["faults_injected"] == profile.freezes


# -- SIGKILL ---------------------------------------------------------------------------------


def restart(server: servers.Server) -> None:
    server.kill()
    time.sleep(0.3)
    server.start()


@pytest.mark.parametrize("profile", profiles())
@pytest.mark.parametrize("alias", ALIASES)
def test_killed_mid_indexed_writes(
    server: servers.Server, alias: str, profile: Profile, request: pytest.FixtureRequest
) -> None:
    """SIGKILL while indexed writes are in flight; restart on the same port; no restart here."""
    tally = Tally()
    sync, tasks = shared_for(alias, tally, 6), shared_for(alias, tally, 16)
    tasks.stop = sync.stop
    threads, workers = run_sync(sync, flush_every=None)
    async_workers = start_async(tasks, threads, flush_every=None)
    kills = 2 if not profile.full else 6
    try:
        assert recovered([sync, tasks], since=0.0)
        for _ in range(kills):
            time.sleep(max(1.0, profile.seconds / kills))
            restart(server)
            tally.add("faults_injected")
            if recovered([sync, tasks], since=time.monotonic()):
                tally.add("faults_survived")
        time.sleep(0.5)
    finally:
        sync.stop.set()
        threads.join()
    assert sync.unavailable + tasks.unavailable > 0, "the kills were never noticed"
    verify(request, [(sync, list(workers)), (tasks, list(async_workers))])
    assert tally["faults_survived"] == tally["faults_injected"] == kills


@pytest.mark.parametrize("profile", profiles())
@pytest.mark.parametrize("alias", ALIASES)
def test_killed_mid_flush(
    server: servers.Server, alias: str, profile: Profile, request: pytest.FixtureRequest
) -> None:
    """SIGKILL while ``clear()`` runs, restart: the flush fails in bound, then completes."""
    tally = Tally()
    rounds = 1 if not profile.full else 4
    entries = 30_000
    for _ in range(rounds):
        svc = CacheService(unique_namespace("kflush"), default_ttl=600, cache=alias)
        for start in range(0, entries, 5_000):
            svc.set_many({f"p{n}": {"key": f"p{n}"} for n in range(start, start + 5_000)})
        for n in range(2_000):
            key = f"f{n}"
            svc.set(
                key,
                value_for(key, f"b{n % 7}", f"g{n % GROUPS}", n),
                indexes={"bucket": f"b{n % 7}", "group": f"g{n % GROUPS}"},
            )
        tally.add("operations", entries // 5_000 + 2_000)
        with raw_client(svc) as client:
            before = client.dbsize()
            outcome: list[BaseException | int | None] = []

            def flush(svc: CacheService = svc, outcome: list[Any] = outcome) -> None:
                started = time.monotonic()
                try:
                    outcome.append(svc.clear())
                except CacheUnavailable as exc:
                    outcome.append(exc)
                outcome.append(time.monotonic() - started)

            threads = Threads()
            threads.start(flush, "flush")
            deadline = time.monotonic() + 10
            while client.dbsize() > before * 0.9 and time.monotonic() < deadline:
                time.sleep(0.002)
            killed_at = time.monotonic()
            server.kill()
            tally.add("faults_injected")
            threads.join()
            assert isinstance(outcome[0], CacheUnavailable), f"the flush was not cut: {outcome}"
            assert isinstance(outcome[0].__cause__, redis.exceptions.ConnectionError)
            assert time.monotonic() - killed_at < BOUND
            server.start()
            client.connection_pool.disconnect()
            partial = client.dbsize()
            assert 0 < partial < before, "the kill did not land mid-flush"
            until = time.monotonic() + 15
            while True:
                try:
                    svc.prune()
                    break
                except CacheUnavailable:
                    assert time.monotonic() < until
                    time.sleep(0.2)
            tally.add("operations")
            problems = redis_dangling(svc, client)
            for n in range(7):
                for key in svc.find("bucket", f"b{n}"):
                    if svc.get(key) is None:
                        problems.append(f"find(bucket, b{n}) returned gone {key!r}")
            live = svc.get_many([f"f{n}" for n in range(2_000)])
            filed = {k for g in range(GROUPS) for k in svc.find("group", f"g{g}")}
            problems += [f"{key!r} survived unreachable" for key in set(live) - filed]
            tally.add("index_violations", len(problems))
            for problem in problems[:10]:
                tally.note(problem)
            left = final_flush(svc, client)
            assert left == 0
            tally.add("faults_survived")
    record(request.node.nodeid, tally)
    assert not tally.bad(), (tally.bad(), tally.notes)


# -- a faulty network --------------------------------------------------------------------------


@pytest.fixture
def proxied(stores: dict[str, Any]) -> Iterator[Proxy]:
    srv = servers.redis_server().start()
    proxy = Proxy(srv.port).start()
    with override_settings(CACHES={**stores, **alias_settings(proxy.url)}):
        yield proxy
    proxy.stop()
    srv.stop()


@pytest.mark.parametrize("profile", profiles())
@pytest.mark.parametrize("alias", ALIASES)
def test_delayed_cut_and_blackholed_replies(
    proxied: Proxy, alias: str, profile: Profile, request: pytest.FixtureRequest
) -> None:
    """Each fault for a while during mixed load, then healed: every caller gets its own reply."""
    tally = Tally()
    sync, tasks = shared_for(alias, tally, 6), shared_for(alias, tally, 16)
    tasks.stop = sync.stop
    threads, workers = run_sync(sync, flush_every=(0.5, 1.5))
    async_workers = start_async(tasks, threads, flush_every=None)
    hold = max(1.0, profile.seconds / 6)
    faults: list[tuple[str, Any]] = [
        ("slow replies, within the timeout", lambda: proxied.delay(TIMEOUT / 3)),
        ("replies later than the timeout", lambda: proxied.delay(TIMEOUT * 2)),
        ("replies cut in the middle", lambda: proxied.cut(10**6)),
        ("a black hole", proxied.blackhole),
        ("every connection reset", proxied.reset),
    ]
    rounds = 1 if not profile.full else 3
    try:
        assert recovered([sync, tasks], since=0.0)
        for _ in range(rounds):
            for _name, inject in faults:
                inject()
                tally.add("faults_injected")
                time.sleep(hold)
                proxied.heal()
                if recovered([sync, tasks], since=time.monotonic()):
                    tally.add("faults_survived")
                time.sleep(0.3)
    finally:
        proxied.heal()
        sync.stop.set()
        threads.join()
    assert proxied.stats.cut_replies > 0
    assert proxied.stats.dropped_chunks > 0
    assert sync.unavailable + tasks.unavailable > 0
    verify(request, [(sync, list(workers)), (tasks, list(async_workers))])
    assert tally["faults_survived"] == tally["faults_injected"] == rounds * len(faults)


def test_a_late_reply_never_reaches_the_next_caller(proxied: Proxy) -> None:
    """The reply to a timed-out GET arrives after the timeout; the next GET gets its own."""
    for alias in ALIASES:
        svc = CacheService(unique_namespace("late"), default_ttl=60, cache=alias)
        svc.set("a", "value of a")
        svc.set("b", "value of b")
        for _ in range(2):
            proxied.delay(TIMEOUT * 1.5)
            with pytest.raises(CacheUnavailable):
                svc.get("a")
            proxied.heal()
            assert svc.get("b") == "value of b"
            time.sleep(TIMEOUT)  # the late reply to "a" has arrived somewhere by now
            assert svc.get("b") == "value of b"
        done = threading.Event()

        async def late_async(svc: CacheService = svc, done: threading.Event = done) -> None:
            proxied.delay(TIMEOUT * 1.5)
            with pytest.raises(CacheUnavailable):
                await svc.aget("a")
            proxied.heal()
            assert await svc.aget("b") == "value of b"
            await asyncio.sleep(TIMEOUT)
            assert await svc.aget("b") == "value of b"
            await svc.aclose()
            done.set()

        asyncio.run(late_async())
        assert done.is_set()
        svc.clear()
