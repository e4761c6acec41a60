"""The mixed workload of the load and fault tests, and the invariants checked after it.

Every stored value embeds its own key (and the index values it was filed under), so a reply
that reaches the wrong caller is seen at once. Writes are partitioned: a worker writes only
its own keys and deletes by index only its own groups, so it can model what must be stored;
reads, ``get_by_index`` and the shared ``bucket`` index span every worker's keys. Counters
live in a second namespace that is never flushed: ``incr`` always adds 1, so every successful
call returns a value no other call returned, and the final count is exact.

A call that fails with ``CacheUnavailable`` (only allowed under faults) has an unknown outcome:
a timed-out write may still land later. The keys (or index group) it touched are left out of
the lost-write checks for the rest of the run; every other check still applies to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis
from django.core.cache import caches
from django.db import connections

from agenthub_cache import CacheService, CacheUnavailable, NotSupported, keys
from agenthub_cache.providers.redis import RedisProvider
from tests.reliability import Tally

T = TypeVar("T")

KEYS = 10_000
BUCKETS = [f"b{n}" for n in range(32)]  # shared index values, filed into by every worker
GROUPS = 8  # per-worker index values (``group``), deleted by index by their owner only
COUNTERS = [f"counter:{n}" for n in range(64)]
TTL = 600  # long enough that nothing expires during a run

#: (operation, weight) of the mix; ``clear`` runs in a flusher of its own.
MIX = [
    ("get", 28),
    ("get_many", 5),
    ("set", 25),
    ("delete", 5),
    ("pop", 5),
    ("delete_by_index", 2),
    ("incr", 15),
    ("get_by_index", 5),
    ("find", 5),
]


def key_name(i: int) -> str:
    return f"u:{i}"


def value_for(key: str, bucket: str, group: str, seq: int) -> dict[str, Any]:
    return {"key": key, "bucket": bucket, "group": group, "seq": seq}


class Flushes:
    """Counts flushes, so a worker knows whether a flush may have run since it wrote a key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = 0
        self.running = 0

    def begin(self) -> None:
        with self._lock:
            self.started += 1
            self.running += 1

    def end(self) -> None:
        with self._lock:
            self.running -= 1

    def mark(self) -> int | None:
        """A mark to take before a write; ``None`` if a flush is running now."""
        with self._lock:
            return None if self.running else self.started

    def unchanged(self, mark: int | None) -> bool:
        with self._lock:
            return mark is not None and self.running == 0 and self.started == mark


@dataclass
class Entry:
    value: dict[str, Any] | None  # None: deleted
    mark: int | None


@dataclass
class Bound:
    """Every call must return within ``seconds`` (None: no bound checked)."""

    seconds: float | None
    worst: float = 0.0


@dataclass
class Shared:
    """What the workers of one run share."""

    svc: CacheService
    counters: CacheService
    tally: Tally
    bound: Bound
    faults: bool
    workers: int
    flushes: Flushes = field(default_factory=Flushes)
    stop: threading.Event = field(default_factory=threading.Event)
    incr_returns: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    incr_unknown: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    last_success: dict[int, float] = field(default_factory=dict)
    unavailable: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Model:
    """One worker's view of its own keys, and the checks of every reply it gets."""

    def __init__(self, shared: Shared, worker: int, seed: int) -> None:
        self.s = shared
        self.worker = worker
        self.rng = random.Random(seed)
        self.own = [key_name(i) for i in range(worker, KEYS, shared.workers)]
        self.groups = [f"w{worker}-g{g}" for g in range(GROUPS)]
        self.entries: dict[str, Entry] = {}
        self.uncertain: set[str] = set()
        self.uncertain_groups: set[str] = set()
        self.seq = 0
        self.ops = [op for op, _ in MIX]
        self.weights = [w for _, w in MIX]

    # -- bookkeeping --------------------------------------------------------------------------

    def choose(self) -> str:
        return self.rng.choices(self.ops, self.weights)[0]

    def timed_ok(self, started: float) -> None:
        elapsed = time.monotonic() - started
        s = self.s
        s.tally.add("operations")
        s.last_success[self.worker] = time.monotonic()
        self._bound(elapsed)

    def timed_unavailable(self, started: float, exc: CacheUnavailable) -> None:
        s = self.s
        if not s.faults:
            raise exc
        s.tally.add("operations")
        with s.lock:
            s.unavailable += 1
        self._bound(time.monotonic() - started)

    def _bound(self, elapsed: float) -> None:
        bound = self.s.bound
        bound.worst = max(bound.worst, elapsed)
        if bound.seconds is not None and elapsed > bound.seconds:
            self.s.tally.add("calls_over_bound")
            self.s.tally.note(f"a call took {elapsed:.2f} s (bound {bound.seconds} s)")

    def unknown(self, key: str, new_group: str | None = None) -> None:
        """A call on ``key`` failed: it may still land, so its groups become unknowable too."""
        self.uncertain.add(key)
        entry = self.entries.get(key)
        if entry is not None and entry.value is not None:
            self.uncertain_groups.add(entry.value["group"])
        if new_group is not None:
            self.uncertain_groups.add(new_group)

    def certain(self, key: str) -> Entry | None:
        """The modelled entry of an own key, if nothing since its write makes it unknowable."""
        if key in self.uncertain:
            return None
        entry = self.entries.get(key)
        if entry is None or not self.s.flushes.unchanged(entry.mark):
            return None
        if entry.value is not None and entry.value["group"] in self.uncertain_groups:
            return None
        return entry

    def check_reply(self, key: str, got: Any, op: str) -> None:
        if got is None:
            return
        if not isinstance(got, dict) or got.get("key") != key:
            self.s.tally.add("mismatched_replies")
            self.s.tally.note(f"{op}({key!r}) returned {got!r}")

    def lost(self, message: str) -> None:
        self.s.tally.add("lost_writes")
        self.s.tally.note(message)

    def violation(self, message: str) -> None:
        self.s.tally.add("index_violations")
        self.s.tally.note(message)

    # -- what each operation expects (shared by the sync and async workers) ----------------

    def new_value(self, key: str) -> tuple[dict[str, Any], dict[str, str]]:
        self.seq += 1
        bucket, group = self.rng.choice(BUCKETS), self.rng.choice(self.groups)
        return value_for(key, bucket, group, self.seq), {"bucket": bucket, "group": group}

    def after_read_own(self, key: str, got: Any, op: str) -> None:
        self.check_reply(key, got, op)
        entry = self.certain(key)
        if entry is not None and got != entry.value:
            self.lost(f"{op}({key!r}) returned {got!r}, expected {entry.value!r}")

    def after_delete(self, key: str, existed: bool, op: str) -> None:
        entry = self.certain(key)
        if entry is not None and existed != (entry.value is not None):
            self.lost(f"{op}({key!r}) -> {existed}, expected the entry {entry.value!r}")

    def after_delete_by_index(self, group: str, deleted: int, mark: int | None) -> None:
        filed = [k for k, e in self.entries.items() if e.value and e.value["group"] == group]
        exact = (
            all(self.certain(k) is not None for k in filed) and group not in self.uncertain_groups
        )
        if exact and self.s.flushes.unchanged(mark) and deleted != len(filed):
            self.violation(f"delete_by_index(group, {group!r}) -> {deleted}, filed {len(filed)}")
        for k in filed:
            self.entries[k] = Entry(None, mark)

    def after_find_own(self, group: str, found: list[str], mark: int | None) -> None:
        if group in self.uncertain_groups or not self.s.flushes.unchanged(mark):
            return
        filed = {k for k, e in self.entries.items() if e.value and e.value["group"] == group}
        if any(self.certain(k) is None for k in filed | set(found) if k in self.entries):
            return
        if set(found) != filed:
            self.violation(f"find(group, {group!r}) -> {sorted(found)[:5]}..., filed {len(filed)}")

    def after_get_by_index(self, bucket: str, found: dict[str, Any]) -> None:
        for key, value in found.items():
            self.check_reply(key, value, "get_by_index")
            if isinstance(value, dict) and value.get("bucket") != bucket:
                self.violation(f"get_by_index(bucket, {bucket!r}) returned {key!r}: {value!r}")

    def after_incr(self, counter: str, value: int) -> None:
        with self.s.lock:
            self.s.incr_returns[counter].append(value)

    def unknown_incr(self, counter: str) -> None:
        with self.s.lock:
            self.s.incr_unknown[counter] += 1


class SyncWorker(Model):
    def run(self) -> None:
        while not self.s.stop.is_set():
            self.step()

    def call(self, fn: Callable[[], T]) -> tuple[bool, T | None]:
        started = time.monotonic()
        try:
            result = fn()
        except CacheUnavailable as exc:
            self.timed_unavailable(started, exc)
            return False, None
        self.timed_ok(started)
        return True, result

    def step(self) -> None:
        svc, rng, op = self.s.svc, self.rng, self.choose()
        if op == "get":
            key = rng.choice(self.own) if rng.random() < 0.5 else key_name(rng.randrange(KEYS))
            ok, got = self.call(lambda: svc.get(key))
            if ok:
                if key in self.own:
                    self.after_read_own(key, got, "get")
                else:
                    self.check_reply(key, got, "get")
        elif op == "get_many":
            wanted = [key_name(rng.randrange(KEYS)) for _ in range(20)]
            ok, found = self.call(lambda: svc.get_many(wanted))
            for key, value in (found or {}).items():
                if key not in wanted:
                    self.s.tally.add("mismatched_replies")
                self.check_reply(key, value, "get_many")
        elif op == "set":
            key = rng.choice(self.own)
            value, indexes = self.new_value(key)
            mark = self.s.flushes.mark()
            ok, stored = self.call(lambda: svc.set(key, value, ttl=TTL, indexes=indexes))
            if not ok:
                self.unknown(key, indexes["group"])
                return
            assert stored is True
            self.entries[key] = Entry(value, mark)
            if rng.random() < 0.25:
                ok, got = self.call(lambda: svc.get(key))
                if ok:
                    self.after_read_own(key, got, "get after set")
        elif op in ("delete", "pop"):
            key = rng.choice(self.own)
            mark = self.s.flushes.mark()
            if op == "delete":
                ok, existed = self.call(lambda: svc.delete(key))
                if ok:
                    self.after_delete(key, bool(existed), "delete")
            else:
                ok, got = self.call(lambda: svc.pop(key))
                if ok:
                    self.after_read_own(key, got, "pop")
            if ok:
                self.entries[key] = Entry(None, mark)
            else:
                self.unknown(key)
        elif op == "delete_by_index":
            group = rng.choice(self.groups)
            mark = self.s.flushes.mark()
            ok, deleted = self.call(lambda: svc.delete_by_index("group", group))
            if ok:
                self.after_delete_by_index(group, int(deleted or 0), mark)
            else:
                self.uncertain_groups.add(group)
        elif op == "incr":
            counter = rng.choice(COUNTERS)
            ok, value = self.call(lambda: self.s.counters.incr(counter, ttl=TTL))
            if ok:
                self.after_incr(counter, int(value or 0))
            else:
                self.unknown_incr(counter)
        elif op == "get_by_index":
            bucket = rng.choice(BUCKETS)
            ok, found = self.call(lambda: svc.get_by_index("bucket", bucket))
            if ok:
                self.after_get_by_index(bucket, found or {})
        elif op == "find":
            group = rng.choice(self.groups)
            mark = self.s.flushes.mark()
            ok, found = self.call(lambda: svc.find("group", group))
            if ok:
                self.after_find_own(group, found or [], mark)


class AsyncWorker(Model):
    async def run(self) -> None:
        while not self.s.stop.is_set():
            await self.step()

    async def call(self, fn: Callable[[], Awaitable[T]]) -> tuple[bool, T | None]:
        started = time.monotonic()
        try:
            result = await fn()
        except CacheUnavailable as exc:
            self.timed_unavailable(started, exc)
            return False, None
        self.timed_ok(started)
        return True, result

    async def step(self) -> None:
        svc, rng, op = self.s.svc, self.rng, self.choose()
        if op == "get":
            key = rng.choice(self.own) if rng.random() < 0.5 else key_name(rng.randrange(KEYS))
            if rng.random() < 0.05:  # cancel a read in flight: the next reply must not shift
                with contextlib.suppress(TimeoutError, CacheUnavailable):
                    await asyncio.wait_for(svc.aget(key), timeout=rng.choice([0, 0.0002, 0.001]))
                return
            ok, got = await self.call(lambda: svc.aget(key))
            if ok:
                if key in self.own:
                    self.after_read_own(key, got, "aget")
                else:
                    self.check_reply(key, got, "aget")
        elif op == "get_many":
            wanted = [key_name(rng.randrange(KEYS)) for _ in range(20)]
            ok, found = await self.call(lambda: svc.aget_many(wanted))
            for key, value in (found or {}).items():
                if key not in wanted:
                    self.s.tally.add("mismatched_replies")
                self.check_reply(key, value, "aget_many")
        elif op == "set":
            key = rng.choice(self.own)
            value, indexes = self.new_value(key)
            mark = self.s.flushes.mark()
            ok, stored = await self.call(lambda: svc.aset(key, value, ttl=TTL, indexes=indexes))
            if not ok:
                self.unknown(key, indexes["group"])
                return
            assert stored is True
            self.entries[key] = Entry(value, mark)
            if rng.random() < 0.25:
                ok, got = await self.call(lambda: svc.aget(key))
                if ok:
                    self.after_read_own(key, got, "aget after aset")
        elif op in ("delete", "pop"):
            key = rng.choice(self.own)
            mark = self.s.flushes.mark()
            if op == "delete":
                ok, existed = await self.call(lambda: svc.adelete(key))
                if ok:
                    self.after_delete(key, bool(existed), "adelete")
            else:
                ok, got = await self.call(lambda: svc.apop(key))
                if ok:
                    self.after_read_own(key, got, "apop")
            if ok:
                self.entries[key] = Entry(None, mark)
            else:
                self.unknown(key)
        elif op == "delete_by_index":
            group = rng.choice(self.groups)
            mark = self.s.flushes.mark()
            ok, deleted = await self.call(lambda: svc.adelete_by_index("group", group))
            if ok:
                self.after_delete_by_index(group, int(deleted or 0), mark)
            else:
                self.uncertain_groups.add(group)
        elif op == "incr":
            counter = rng.choice(COUNTERS)
            ok, value = await self.call(lambda: self.s.counters.aincr(counter, ttl=TTL))
            if ok:
                self.after_incr(counter, int(value or 0))
            else:
                self.unknown_incr(counter)
        elif op == "get_by_index":
            bucket = rng.choice(BUCKETS)
            ok, found = await self.call(lambda: svc.aget_by_index("bucket", bucket))
            if ok:
                self.after_get_by_index(bucket, found or {})
        elif op == "find":
            group = rng.choice(self.groups)
            mark = self.s.flushes.mark()
            ok, found = await self.call(lambda: svc.afind("group", group))
            if ok:
                self.after_find_own(group, found or [], mark)


# -- running --------------------------------------------------------------------------------


class Threads:
    """Start targets in threads; ``join()`` re-raises the first error any of them raised."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def start(self, target: Callable[[], Any], name: str = "worker") -> None:
        def run() -> None:
            try:
                target()
            except BaseException as exc:
                self.errors.append(exc)
            finally:
                caches.close_all()
                connections.close_all()  # this thread's DB cache connection

        thread = threading.Thread(target=run, name=name, daemon=True)
        self.threads.append(thread)
        thread.start()

    def join(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        alive = [t.name for t in self.threads if t.is_alive()]
        if self.errors:
            raise self.errors[0]
        assert not alive, f"threads still running after {timeout} s: {alive}"


def flusher(shared: Shared, interval: tuple[float, float], seed: int = 99) -> Callable[[], None]:
    """A loop that clears the main namespace every ``interval`` seconds until stopped."""
    rng = random.Random(seed)

    def run() -> None:
        while not shared.stop.wait(rng.uniform(*interval)):
            shared.flushes.begin()
            try:
                shared.svc.clear()
                shared.tally.add("operations")
            except CacheUnavailable:
                if not shared.faults:
                    raise
            finally:
                shared.flushes.end()

    return run


async def async_flusher(shared: Shared, interval: tuple[float, float], seed: int = 98) -> None:
    rng = random.Random(seed)
    while not shared.stop.is_set():
        await asyncio.sleep(rng.uniform(*interval))
        if shared.stop.is_set():
            return
        shared.flushes.begin()
        try:
            await shared.svc.aclear()
            shared.tally.add("operations")
        except CacheUnavailable:
            if not shared.faults:
                raise
        finally:
            shared.flushes.end()


def run_sync(
    shared: Shared, flush_every: tuple[float, float] | None
) -> tuple[Threads, list[SyncWorker]]:
    """Start ``shared.workers`` sync workers (and a flusher); returns them running."""
    threads = Threads()
    workers = [SyncWorker(shared, w, seed=w) for w in range(shared.workers)]
    for worker in workers:
        threads.start(worker.run, f"worker-{worker.worker}")
    if flush_every is not None:
        threads.start(flusher(shared, flush_every), "flusher")
    return threads, workers


async def run_async(
    shared: Shared, seconds: float | None, flush_every: tuple[float, float] | None
) -> list[AsyncWorker]:
    """Run ``shared.workers`` tasks (and a flusher) on this loop for ``seconds``.

    With ``seconds=None`` they run until ``shared.stop`` is set (from another thread).
    """
    workers = [AsyncWorker(shared, w, seed=1000 + w) for w in range(shared.workers)]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    if flush_every is not None:
        tasks.append(asyncio.create_task(async_flusher(shared, flush_every)))
    if seconds is None:
        while not shared.stop.is_set():  # noqa: ASYNC110 (set from another thread)
            await asyncio.sleep(0.05)
    else:
        await asyncio.sleep(seconds)
    shared.stop.set()
    await asyncio.gather(*tasks)
    await shared.svc.aclose()
    await shared.counters.aclose()
    return workers


def start_async(
    shared: Shared, threads: Threads, flush_every: tuple[float, float] | None
) -> list[AsyncWorker]:
    """Run async workers on an event loop of their own thread until ``shared.stop``."""
    done: list[AsyncWorker] = []
    threads.start(lambda: done.extend(asyncio.run(run_async(shared, None, flush_every))), "loop")
    return done


def recovered(shareds: Iterable[Shared], since: float, timeout: float = 15.0) -> bool:
    """Wait until every worker has had a call succeed after ``since``."""
    deadline = time.monotonic() + timeout
    shareds = list(shareds)
    while time.monotonic() < deadline:
        if all(
            len(s.last_success) == s.workers and min(s.last_success.values()) > since
            for s in shareds
        ):
            return True
        time.sleep(0.05)
    return False


# -- invariants after a run -------------------------------------------------------------------


def universe() -> list[str]:
    return [key_name(i) for i in range(KEYS)]


def live_entries(svc: CacheService) -> dict[str, Any]:
    found: dict[str, Any] = {}
    names = universe()
    for start in range(0, len(names), 1000):
        found.update(svc.get_many(names[start : start + 1000]))
    return found


def check_state(shared: Shared, models: Iterable[Model]) -> dict[str, Any]:
    """With the workers stopped: values, modelled writes, both indexes, counters."""
    svc, tally = shared.svc, shared.tally
    live = live_entries(svc)
    for key, value in live.items():
        if not isinstance(value, dict) or value.get("key") != key:
            tally.add("mismatched_replies")
            tally.note(f"stored {key!r} holds {value!r}")
    for model in models:
        for key, entry in model.entries.items():
            if model.certain(key) is not None and live.get(key) != entry.value:
                model.lost(f"{key!r}: stored {live.get(key)!r}, last write {entry.value!r}")
    groups = {v["group"] for v in live.values() if isinstance(v, dict)}
    groups |= {f"w{w}-g{g}" for w in range(shared.workers) for g in range(GROUPS)}
    by_index: dict[tuple[str, str], set[str]] = {}
    for name, values in (("bucket", BUCKETS), ("group", sorted(groups))):
        for index_value in values:
            by_index[(name, index_value)] = set(svc.find(name, index_value))
    for (name, index_value), found in by_index.items():
        for key in found:
            value = live.get(key)
            if not isinstance(value, dict) or value.get(name) != index_value:
                tally.add("index_violations")
                tally.note(f"find({name}, {index_value!r}) returned {key!r}: {value!r}")
    for key, value in live.items():
        if not isinstance(value, dict):
            continue
        for name in ("bucket", "group"):
            if key not in by_index.get((name, value[name]), set()):
                tally.add("index_violations")
                tally.note(f"live {key!r} not reachable from {name}={value[name]!r}")
    check_counters(shared)
    return live


def check_counters(shared: Shared) -> None:
    tally = shared.tally
    for counter in COUNTERS:
        returned = shared.incr_returns.get(counter, [])
        unknown = shared.incr_unknown.get(counter, 0)
        final = int(shared.counters.get(counter) or 0)
        duplicates = len(returned) - len(set(returned))
        lost = max(0, len(returned) - final) + duplicates
        if lost:
            tally.add("lost_writes", lost)
            tally.note(f"{counter}: {len(returned)} increments, {duplicates} repeated, at {final}")
        if final > len(returned) + unknown:
            tally.add("lost_writes", final - len(returned) - unknown)
            tally.note(f"{counter}: at {final} after {len(returned)} (+{unknown} unknown)")


# -- Redis: what the server holds ---------------------------------------------------------------


def raw_client(svc: CacheService) -> redis.Redis:
    """A plain client to the server and database behind ``svc`` (for SCAN, ZRANGE, EXISTS)."""
    provider = svc.provider
    assert isinstance(provider, RedisProvider)
    kwargs = provider.connection.client.connection_pool.connection_kwargs
    return redis.Redis(
        host=kwargs.get("host", "127.0.0.1"),
        port=kwargs.get("port", 6379),
        db=kwargs.get("db", 0),
        username=kwargs.get("username"),
        password=kwargs.get("password"),
        socket_timeout=10,
    )


def stored_keys(svc: CacheService, client: redis.Redis) -> list[bytes]:
    """Every key of the namespace on the server, by SCAN over its stored prefix."""
    provider = svc.provider
    assert isinstance(provider, RedisProvider)
    return list(dict.fromkeys(client.scan_iter(match=provider.layout.match(), count=1000)))


def redis_dangling(svc: CacheService, client: redis.Redis) -> list[str]:
    """Index members whose entry is missing or whose meta files them elsewhere; orphan metas."""
    provider = svc.provider
    assert isinstance(provider, RedisProvider)
    layout, problems = provider.layout, []
    for idx in client.scan_iter(match=layout.match(f"{keys.INDEX}:"), count=1000):
        name = layout.index_name_of(idx)
        for raw in client.zrange(idx, 0, -1):
            member = raw.decode()
            if not client.exists(layout.entry(member)):
                problems.append(f"{idx!r} holds {member!r}, whose entry is gone")
            elif client.hget(layout.meta(member), name) != idx:
                problems.append(f"{idx!r} holds {member!r}, filed elsewhere")
    prefix = layout.listed_prefix().encode() + keys.META.encode() + b":"
    for meta in client.scan_iter(match=layout.match(f"{keys.META}:"), count=1000):
        member = meta[len(prefix) :].decode()
        if not client.exists(layout.entry(member)):
            problems.append(f"meta {meta!r} outlived its entry")
    return problems


def final_flush(svc: CacheService, client: redis.Redis | None) -> int:
    """Clear the namespace; return what is left of it (entries, or stored keys on Redis)."""
    svc.clear()
    left = len(live_entries(svc))
    with contextlib.suppress(NotSupported):
        left += svc.count()
    if client is not None:
        left += len(stored_keys(svc, client))
    return left
