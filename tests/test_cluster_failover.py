"""A primary lost mid-load: SIGKILL the primary that owns part of a namespace while 8
threads and 64 async tasks read and write it. Calls fail only with ``CacheUnavailable`` (or
return the default under ``FAIL_SILENTLY``) for the failover window; then they succeed again
in the same process; no value read is ever another key's; no index is left pointing at a
missing entry once pruned. On a cluster of its own (the shared one stays whole)."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core.cache import caches
from django.test.utils import override_settings

from agenthub_cache import CacheService, CacheUnavailable, namespaces
from tests import servers
from tests.conftest import cluster_cache_settings, unique_namespace

pytestmark = [
    pytest.mark.extended,
    # redis-py closes the connections of a node it drops from the slot map (the killed
    # primary) in background tasks; once in CI one was still open when collected, its
    # ResourceWarning raised as unraisable in a later test. The load's loop now waits for
    # those tasks, and what is left is collected (and ignored) here, as test_sentinel_failover
    # does for redis-py's sentinel connections.
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

ALIAS = "failover"
THREADS, TASKS, KEYS = 8, 64, 40
#: Seconds from the kill to the first success on the lost primary's slot, at most: node
#: timeout (1 s) + election + redis-py's slot map refresh, with room for a loaded machine.
RECOVERY_BOUND = 20.0
#: Seconds without an error, every worker busy, that count as recovered; and how long the load
#: may take to get there after the kill (the window is ~2-5 s unloaded).
QUIET, DEADLINE = 3.0, 60.0


@dataclass
class Tally:
    """What the load saw: each error and success with its time and worker, wrong reads."""

    errors: list[tuple[float, str]] = field(default_factory=list)
    successes: list[tuple[float, str]] = field(default_factory=list)
    wrong: list[Any] = field(default_factory=list)
    unexpected: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ok(self, who: str) -> None:
        with self.lock:
            self.successes.append((time.monotonic(), who))

    def unavailable(self, who: str) -> None:
        with self.lock:
            self.errors.append((time.monotonic(), who))

    def last_error(self) -> float | None:
        with self.lock:
            return self.errors[-1][0] if self.errors else None


@pytest.fixture(scope="module")
def doomed_cluster() -> Iterator[servers.Cluster]:
    cluster = servers.redis_cluster()
    yield cluster
    cluster.stop()


@pytest.fixture
def spaces(stores: dict[str, Any], doomed_cluster: servers.Cluster) -> Iterator[dict[str, str]]:
    names = {"strict": unique_namespace("fo"), "silent": unique_namespace("fos")}
    configured = {**stores, ALIAS: cluster_cache_settings(doomed_cluster)}
    declared = {
        names["strict"]: {"CACHE": ALIAS, "TTL": 300, "SLOTS": 8},
        names["silent"]: {"CACHE": ALIAS, "TTL": 300, "SLOTS": 8, "FAIL_SILENTLY": True},
    }
    with override_settings(CACHES=configured, AGENTHUB_CACHE={"NAMESPACES": declared}):
        yield names
        caches.close_all()


def check(tally: Tally, service: CacheService, key: str, value: Any) -> None:
    if value is not None and (not isinstance(value, dict) or value.get("key") != key):
        tally.wrong.append((service.namespace, key, value))


def sync_worker(service: CacheService, n: int, stop: threading.Event, tally: Tally) -> None:
    i, who = 0, f"th{n}"
    while not stop.is_set():
        key = f"t{n}:{i % KEYS}"
        try:
            service.set(key, {"key": key, "i": i}, indexes={"group": str(i % 3)})
            check(tally, service, key, service.get(key))
            if i % 10 == 0:
                for found, value in service.get_by_index("group", str(i % 3)).items():
                    check(tally, service, found, value)
            if i % 7 == 0:
                service.incr(f"c{n}")
            tally.ok(who)
        except CacheUnavailable:
            tally.unavailable(who)
            time.sleep(0.01)
        except Exception as exc:
            tally.unexpected.append(exc)
        i += 1


async def async_worker(service: CacheService, n: int, stop: threading.Event, tally: Tally) -> None:
    i, who = 0, f"task{n}"
    while not stop.is_set():
        key = f"a{n}:{i % KEYS}"
        try:
            await service.aset(key, {"key": key, "i": i}, indexes={"group": str(i % 3)})
            check(tally, service, key, await service.aget(key))
            if i % 10 == 0:
                for found, value in (await service.aget_by_index("group", str(i % 3))).items():
                    check(tally, service, found, value)
            tally.ok(who)
        except CacheUnavailable:
            tally.unavailable(who)
            await asyncio.sleep(0.01)
        except Exception as exc:
            tally.unexpected.append(exc)
        i += 1


def async_load(service: CacheService, stop: threading.Event, tally: Tally) -> None:
    async def main() -> None:
        await asyncio.gather(*(async_worker(service, n, stop, tally) for n in range(TASKS)))
        # redis-py's background disconnects of the dropped node: asyncio.run would cancel them
        others = asyncio.all_tasks() - {asyncio.current_task()}
        await asyncio.gather(*others, return_exceptions=True)

    asyncio.run(main())


@pytest.fixture(autouse=True)
def _collect_dropped_connections() -> Iterator[None]:
    """Collect what redis-py dropped while this module's filter applies (left to a later
    test, it fails that one)."""
    yield
    gc.collect()


def owner_of_tag0(service: CacheService, cluster: servers.Cluster) -> servers.Server:
    provider: Any = service.provider
    location = provider.connection.node(provider.layouts[0].listed_prefix()).location
    return next(s for s in cluster.primaries if s.location == location)


def wait_recovered(service: CacheService, key: str) -> float:
    """Seconds until a write and read on ``key`` (the lost primary's slot) succeed."""
    started = time.monotonic()
    while time.monotonic() - started < RECOVERY_BOUND:
        try:
            if service.set(key, {"key": key}) and service.get(key) == {"key": key}:
                return time.monotonic() - started
        except CacheUnavailable:
            pass
        time.sleep(0.05)
    raise AssertionError(f"no recovery within {RECOVERY_BOUND} s")


def test_primary_killed_under_mixed_load(
    spaces: dict[str, str], doomed_cluster: servers.Cluster
) -> None:
    strict, silent = namespaces[spaces["strict"]], namespaces[spaces["silent"]]
    stop, tally, silent_tally = threading.Event(), Tally(), Tally()
    threads = [
        threading.Thread(target=sync_worker, args=(strict, n, stop, tally)) for n in range(THREADS)
    ]
    threads.append(threading.Thread(target=async_load, args=(strict, stop, tally)))
    threads.append(threading.Thread(target=sync_worker, args=(silent, 99, stop, silent_tally)))
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.5)
        assert tally.successes
        assert not tally.unexpected, tally.unexpected[:3]
        victim = owner_of_tag0(strict, doomed_cluster)
        probe = next(
            k
            for k in (f"probe{n}" for n in range(1000))
            if strict.provider._layout_for(k) is strict.provider.layouts[0]  # type: ignore[attr-defined]
        )
        killed = time.monotonic()
        victim.kill()  # SIGKILL: no goodbye to the cluster
        recovered_in = wait_recovered(strict, probe)
        # The load goes on until it has run QUIET seconds without an error (or DEADLINE).
        while time.monotonic() - killed < DEADLINE:
            last = tally.last_error() or killed
            if time.monotonic() - last >= QUIET:
                break
            time.sleep(0.2)
        stopped = time.monotonic()
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    last_error = tally.last_error()
    print(
        f"recovered in {recovered_in:.2f} s; errors {len(tally.errors)} until "
        f"{(last_error or killed) - killed:.2f} s after the kill; ok {len(tally.successes)}"
    )
    assert not tally.unexpected, (len(tally.unexpected), tally.unexpected[:3])
    assert not silent_tally.unexpected, silent_tally.unexpected[:3]
    assert tally.wrong == []
    assert silent_tally.wrong == []
    assert silent_tally.errors == []  # FAIL_SILENTLY: defaults, never an exception
    assert recovered_in < RECOVERY_BOUND
    # The failover window was seen (calls on the lost primary's slots failed), and only after
    # the kill ...
    assert last_error is not None, "the load never saw the failover window"
    assert [who for t, who in tally.errors if t < killed] == []
    # ... and it closed: the load then ran QUIET seconds with no error, in this process, and
    # every worker, sync and async, succeeded again after the last error.
    assert stopped - last_error >= QUIET, (
        f"still failing {stopped - killed:.1f} s after the kill (last error "
        f"{last_error - killed:.1f} s after it)"
    )
    after = {who for t, who in tally.successes if t > last_error}
    assert after == {f"th{n}" for n in range(THREADS)} | {f"task{n}" for n in range(TASKS)}
    for service in (strict, silent):
        service.prune()
        assert_prune_clean(service)
        service.clear()


def assert_prune_clean(service: CacheService) -> None:
    """Every member of every index set of the namespace has its entry."""
    provider: Any = service.provider
    client = provider.connection.client
    for layout in provider.layouts:
        for idx in client.scan_iter(match=layout.match("i:"), target_nodes=client.PRIMARIES):
            for member in client.zrange(idx, 0, -1):
                entry = layout.entry(member.decode())
                assert client.exists(entry), (idx, member)
