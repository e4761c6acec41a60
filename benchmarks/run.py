"""Benchmark the Redis provider against its peers, side by side, in one process.

    python -m benchmarks.run            # full: ~5 minutes, 1,000,000-key flush
    python -m benchmarks.run --quick    # ~1 minute, 100,000-key flush
    python -m benchmarks.run --write benchmarks/RESULTS.md

Starts its own redis-server on a free loopback port (never the one on 6379) and prints a
Markdown table of ops/s and ratios against the goals of issue 3. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import pickle
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

VALUE = "x" * 1000  # a 1 KB str; raw paths store its pickle, already serialized
KEYS = [f"key:{n}" for n in range(1000)]


# -- results ----------------------------------------------------------------------------------


@dataclass
class Row:
    section: str
    name: str
    value: float
    unit: str = "ops/s"
    note: str = ""


@dataclass
class Goal:
    text: str
    ratio: float
    target: float
    higher_is_better: bool = True

    @property
    def met(self) -> bool:
        return self.ratio >= self.target if self.higher_is_better else self.ratio <= self.target


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, section: str, results: dict[str, float], unit: str = "ops/s") -> None:
        for name, value in results.items():
            self.rows.append(Row(section, name, value, unit))
            print(f"  {name:<44} {value:>12,.1f} {unit}", flush=True)

    def goal(self, text: str, ratio: float, target: float, higher: bool = True) -> None:
        goal = Goal(text, ratio, target, higher)
        self.goals.append(goal)
        sign = ">=" if higher else "<="
        print(
            f"  -> {text}: {ratio:.2f}x (goal {sign} {target}x) {'MET' if goal.met else 'MISSED'}"
        )

    def markdown(self, header: str) -> str:
        lines = [header, "", "| goal | ratio | target | |", "| --- | ---: | ---: | --- |"]
        for g in self.goals:
            sign = ">=" if g.higher_is_better else "<="
            lines.append(
                f"| {g.text} | {g.ratio:.2f}x | {sign} {g.target}x | {'met' if g.met else '**missed**'} |"
            )
        lines += ["", "| section | path | result |", "| --- | --- | ---: |"]
        for r in self.rows:
            value = f"{r.value:,.0f}" if r.value >= 100 else f"{r.value:,.2f}"
            lines.append(f"| {r.section} | {r.name} | {value} {r.unit} |")
        if self.notes:
            lines += ["", *[f"- {n}" for n in self.notes]]
        return "\n".join(lines) + "\n"


# -- timing -----------------------------------------------------------------------------------


def measure(paths: dict[str, Callable[[int], object]], n: int, rounds: int) -> dict[str, float]:
    """Median ops/s of each path; the paths take turns within every round."""
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for path in paths.values():
        path(min(n, 200))  # warm up connections and caches
    for _ in range(rounds):
        for name, path in paths.items():
            started = time.perf_counter()
            path(n)
            samples[name].append(n / (time.perf_counter() - started))
    return {name: statistics.median(values) for name, values in samples.items()}


async def ameasure(
    paths: dict[str, Callable[[int], Awaitable[object]]], n: int, rounds: int
) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for path in paths.values():
        await path(min(n, 256))
    for _ in range(rounds):
        for name, path in paths.items():
            started = time.perf_counter()
            await path(n)
            samples[name].append(n / (time.perf_counter() - started))
    return {name: statistics.median(values) for name, values in samples.items()}


def loop_ops(op: Callable[[str], object]) -> Callable[[int], None]:
    def run(n: int) -> None:
        keys = KEYS
        for i in range(n):
            op(keys[i % 1000])

    return run


def task_ops(
    op: Callable[[str], Awaitable[object]], tasks: int
) -> Callable[[int], Awaitable[None]]:
    async def worker(start: int, count: int) -> None:
        keys = KEYS
        for i in range(start, start + count):
            await op(keys[i % 1000])

    async def run(n: int) -> None:
        per = max(1, n // tasks)
        await asyncio.gather(*(worker(t * per, per) for t in range(tasks)))

    return run


# -- the setup --------------------------------------------------------------------------------


def pin(pid: int, cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, {cpu % (os.cpu_count() or 1)})


@dataclass
class Layout:
    """Which CPU the server, this process and the PING probe run on."""

    server: int | None
    client: int | None
    probe: int | None
    text: str


LAYOUTS = {
    "split": Layout(
        1, 0, 1, "redis-server on CPU 1, benchmark on CPU 0 (as with a separate server)"
    ),
    "same": Layout(0, 0, 1, "redis-server and benchmark on CPU 0 (strictest: no wake-up latency)"),
    "none": Layout(None, None, None, "no pinning (results flip with the scheduler)"),
}


def caches_for(url: str) -> dict[str, Any]:
    return {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "dr": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": f"{url}/1"},
        "dj": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": f"{url}/2"},
    }


def versions() -> dict[str, str]:
    found = {}
    for dist in ("Django", "django-redis", "redis", "hiredis", "aiocache", "cashews", "uvloop"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "not installed"
    return found


def machine(server_binary: str) -> list[str]:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    server = subprocess.run([server_binary, "--version"], capture_output=True, text=True).stdout
    return [
        f"{os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}",
        f"Python {platform.python_version()}; "
        + ", ".join(f"{k} {v}" for k, v in versions().items()),
        f"{server.split(' sha=')[0].strip()} (private, loopback, no persistence)",
    ]


def ping_probe(host: str, port: int, cpu: int | None, stop: Any, out: Any) -> None:
    """In its own process: PING every millisecond until ``stop``; report the worst latency."""
    import redis

    pin(0, cpu)
    client = redis.Redis(host=host, port=port)
    client.ping()
    out.put("ready")
    worst, count = 0.0, 0
    while not stop.is_set():
        started = time.perf_counter()
        client.ping()
        worst = max(worst, time.perf_counter() - started)
        count += 1
        time.sleep(0.001)
    out.put((worst, count))
    client.close()


@contextlib.contextmanager
def probe(host: str, port: int, cpu: int | None) -> Iterator[dict[str, float]]:
    context = multiprocessing.get_context("spawn")
    stop, out = context.Event(), context.Queue()
    process = context.Process(target=ping_probe, args=(host, port, cpu, stop, out))
    process.start()
    assert out.get(timeout=30) == "ready"
    result: dict[str, float] = {}
    try:
        yield result
    finally:
        stop.set()
        worst, count = out.get(timeout=30)
        process.join(10)
        result.update(worst_ms=worst * 1000, pings=count)


# -- sections ---------------------------------------------------------------------------------


def single_ops(report: Report, env: dict[str, Any], n: int, rounds: int) -> None:
    raw, dr, dj, ns_dr, ns_dj = (env[k] for k in ("raw", "dr", "dj", "ns_dr", "ns_dj"))
    payload = pickle.dumps(VALUE)
    for key in KEYS:
        raw.set(key, payload, px=600_000)
        dr.set(key, VALUE, 600)
        dj.set(key, VALUE, 600)
        ns_dr.set(key, VALUE)
        ns_dj.set(key, VALUE)
    for op in ("get", "set"):
        print(f"\n{op} (1 KB values, one at a time)")
        if op == "get":
            paths = {
                "raw redis-py GET": loop_ops(raw.get),
                "django-redis get": loop_ops(dr.get),
                "Django RedisCache get": loop_ops(dj.get),
                "namespace get (django-redis)": loop_ops(ns_dr.get),
                "namespace get (Django RedisCache)": loop_ops(ns_dj.get),
            }
        else:
            paths = {
                "raw redis-py SET PX": loop_ops(lambda k: raw.set(k, payload, px=600_000)),
                "django-redis set": loop_ops(lambda k: dr.set(k, VALUE, 600)),
                "Django RedisCache set": loop_ops(lambda k: dj.set(k, VALUE, 600)),
                "namespace set (django-redis)": loop_ops(lambda k: ns_dr.set(k, VALUE)),
                "namespace set (Django RedisCache)": loop_ops(lambda k: ns_dj.set(k, VALUE)),
            }
        results = measure(paths, n, rounds)
        report.add(op, results)
        names = list(results)
        report.goal(
            f"namespace {op} / django-redis {op}", results[names[3]] / results[names[1]], 1.0
        )
        report.goal(
            f"namespace {op} / Django RedisCache {op}", results[names[4]] / results[names[2]], 2.5
        )
        report.rows.append(
            Row(op, f"(namespace {op} / raw redis-py)", results[names[3]] / results[names[0]], "x")
        )


def batches(report: Report, env: dict[str, Any], n: int, rounds: int) -> None:
    raw, dr, dj, ns_dr, ns_dj = (env[k] for k in ("raw", "dr", "dj", "ns_dr", "ns_dj"))
    groups = [KEYS[i : i + 100] for i in range(0, 1000, 100)]
    mappings = [dict.fromkeys(group, VALUE) for group in groups]
    payload = pickle.dumps(VALUE)

    def raw_set_many(group: list[str]) -> None:
        pipe = raw.pipeline(transaction=False)
        for key in group:
            pipe.set(key, payload, px=600_000)
        pipe.execute()

    def batch(op: Callable[[int], object]) -> Callable[[int], None]:
        def run(count: int) -> None:
            for i in range(count):
                op(i % 10)

        return run

    print("\nbatches of 100 keys (ops/s counts keys)")
    per_key = 100
    get_paths = {
        "raw MGET": batch(lambda i: raw.mget(groups[i])),
        "django-redis get_many": batch(lambda i: dr.get_many(groups[i])),
        "Django RedisCache get_many": batch(lambda i: dj.get_many(groups[i])),
        "namespace get_many (django-redis)": batch(lambda i: ns_dr.get_many(groups[i])),
        "namespace get_many (Django RedisCache)": batch(lambda i: ns_dj.get_many(groups[i])),
    }
    set_paths = {
        "raw pipelined SET PX": batch(lambda i: raw_set_many(groups[i])),
        "django-redis set_many": batch(lambda i: dr.set_many(mappings[i], 600)),
        "Django RedisCache set_many": batch(lambda i: dj.set_many(mappings[i], 600)),
        "namespace set_many (django-redis)": batch(lambda i: ns_dr.set_many(mappings[i])),
        "namespace set_many (Django RedisCache)": batch(lambda i: ns_dj.set_many(mappings[i])),
    }
    for label, paths in (("get_many", get_paths), ("set_many", set_paths)):
        results = {k: v * per_key for k, v in measure(paths, max(10, n // 100), rounds).items()}
        report.add(label, results, "keys/s")
        names = list(results)
        report.goal(
            f"namespace {label} / django-redis {label} (100 keys)",
            results[names[3]] / results[names[1]],
            2.0,
        )


def indexed_set(report: Report, env: dict[str, Any], n: int, rounds: int) -> None:
    raw, ns_dr, ns_dj = env["raw"], env["ns_dr"], env["ns_dj"]
    payload = pickle.dumps(VALUE)
    print("\nset with two indexes")
    results = measure(
        {
            "raw redis-py SET PX": loop_ops(lambda k: raw.set(k, payload, px=600_000)),
            "namespace set, 2 indexes (django-redis)": loop_ops(
                lambda k: ns_dr.set(k, VALUE, indexes={"user": k[-1], "kind": "bench"})
            ),
            "namespace set, 2 indexes (Django RedisCache)": loop_ops(
                lambda k: ns_dj.set(k, VALUE, indexes={"user": k[-1], "kind": "bench"})
            ),
        },
        n,
        rounds,
    )
    report.add("indexed set", results)
    names = list(results)
    report.goal("set with two indexes / raw SET", results[names[1]] / results[names[0]], 0.7)
    ns_dr.clear()
    ns_dj.clear()


async def async_section(
    report: Report, env: dict[str, Any], loop_name: str, n: int, rounds: int
) -> None:
    import redis.asyncio as aredis
    from aiocache import RedisCache as AioRedisCache
    from aiocache.serializers import PickleSerializer
    from cashews import Cache

    host, port = env["host"], env["port"]
    dr, ns_dr, ns_dj = env["dr"], env["ns_dr"], env["ns_dj"]
    payload = pickle.dumps(VALUE)
    raw = aredis.Redis(host=host, port=port, db=3)
    aio = AioRedisCache(
        endpoint=host, port=port, db=4, serializer=PickleSerializer(), namespace="aio"
    )
    cashews = Cache()
    cashews.setup(f"redis://{host}:{port}/5")
    for key in KEYS:
        await raw.set(key, payload, px=600_000)
        await aio.set(key, VALUE, ttl=600)
        await cashews.set(key, VALUE, expire=600)
        await ns_dr.aset(key, VALUE)
        await ns_dj.aset(key, VALUE)
    try:
        for op in ("get", "set"):
            for tasks in (1, 64):
                label = f"a{op} {tasks} task{'s' if tasks > 1 else ''} ({loop_name})"
                print(f"\n{label}")
                if op == "get":
                    ops: dict[str, Callable[[str], Awaitable[object]]] = {
                        "raw redis.asyncio": raw.get,
                        "django-redis aget (sync_to_async)": dr.aget,
                        "aiocache": aio.get,
                        "cashews": cashews.get,
                        "namespace aget (django-redis)": ns_dr.aget,
                        "namespace aget (Django RedisCache)": ns_dj.aget,
                    }
                else:
                    ops = {
                        "raw redis.asyncio": lambda k: raw.set(k, payload, px=600_000),
                        "django-redis aset (sync_to_async)": lambda k: dr.aset(k, VALUE, 600),
                        "aiocache": lambda k: aio.set(k, VALUE, ttl=600),
                        "cashews": lambda k: cashews.set(k, VALUE, expire=600),
                        "namespace aset (django-redis)": lambda k: ns_dr.aset(k, VALUE),
                        "namespace aset (Django RedisCache)": lambda k: ns_dj.aset(k, VALUE),
                    }
                results = await ameasure(
                    {name: task_ops(fn, tasks) for name, fn in ops.items()}, n, rounds
                )
                report.add(label, results)
                ours, base = (
                    results["namespace a" + op + " (django-redis)"],
                    results["raw redis.asyncio"],
                )
                if tasks == 64:
                    report.goal(f"{label}: namespace / raw redis.asyncio", ours / base, 0.85)
                    report.goal(f"{label}: namespace / aiocache", ours / results["aiocache"], 1.0)
                    report.goal(f"{label}: namespace / cashews", ours / results["cashews"], 1.0)
    finally:
        await raw.aclose()
        await aio.close()
        await cashews.close()


def index_read(report: Report, env: dict[str, Any], rounds: int) -> None:
    raw, ns_dr = env["raw"], env["ns_dr"]
    print("\nget_by_index of 10,000 entries (1 KB values)")
    for start in range(0, 10_000, 500):
        for n in range(start, start + 500):
            ns_dr.set(f"member:{n}", VALUE, indexes={"group": "big"})
    payload = pickle.dumps(VALUE)
    member_keys = [f"manual:member:{n}" for n in range(10_000)]
    for start in range(0, 10_000, 1000):
        raw.mset({k: payload for k in member_keys[start : start + 1000]})
    raw.delete("manual:index")
    raw.sadd("manual:index", *member_keys)

    def smembers_mget() -> dict[bytes, Any]:
        members = list(raw.smembers("manual:index"))
        return {
            m: pickle.loads(v)
            for m, v in zip(members, raw.mget(members), strict=False)
            if v is not None
        }

    assert len(smembers_mget()) == 10_000
    assert len(ns_dr.get_by_index("group", "big")) == 10_000
    samples: dict[str, list[float]] = {
        "SMEMBERS + MGET + pickle.loads": [],
        "namespace get_by_index": [],
    }
    for _ in range(rounds):
        for name, fn in (
            ("SMEMBERS + MGET + pickle.loads", smembers_mget),
            ("namespace get_by_index", lambda: ns_dr.get_by_index("group", "big")),
        ):
            started = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - started) * 1000)
    results = {name: statistics.median(values) for name, values in samples.items()}
    report.add("get_by_index", results, "ms")
    report.goal(
        "get_by_index 10k / SMEMBERS+MGET (time)",
        results["namespace get_by_index"] / results["SMEMBERS + MGET + pickle.loads"],
        1.2,
        higher=False,
    )
    ns_dr.clear()
    raw.delete("manual:index", *member_keys)


def fill(client: Any, keys: list[str], value: bytes) -> None:
    for start in range(0, len(keys), 2000):
        client.mset(dict.fromkeys(keys[start : start + 2000], value))


def flush(report: Report, env: dict[str, Any], count: int, layout: Layout) -> None:
    from django.core.cache import caches

    from agenthub_cache import CacheService

    raw = env["raw1"]  # database 1: django-redis's
    dr = caches["dr"]
    svc = CacheService("flushme", default_ttl=None, cache="dr")
    layout_keys: Any = svc.provider
    stored = [layout_keys.layout.entry(f"k{n}") for n in range(count)]
    small = dr.client.encode("v" * 20)
    print(f"\nflush one namespace of {count:,} keys beside {count:,} others")
    raw.flushdb()  # database 1 of the benchmark's own private server
    fill(raw, [f"other:{n}" for n in range(count // 2)], small)
    other = CacheService("keepme", cache="dr")
    fill(raw, [other.provider.layout.entry(f"k{n}") for n in range(count // 2)], small)  # type: ignore[attr-defined]
    results: dict[str, float] = {}
    for name in ("django-redis delete_pattern", "namespace clear (SCAN + UNLINK)"):
        fill(raw, stored, small)
        assert raw.dbsize() == 2 * count
        with probe(env["host"], env["port"], layout.probe) as pings:
            started = time.perf_counter()
            if name.startswith("django-redis"):
                deleted = dr.delete_pattern("ahc:flushme:*")
            else:
                deleted = svc.provider.clear()
            elapsed = time.perf_counter() - started
        assert deleted == count, (name, deleted)
        assert raw.dbsize() == count, "the other keys must be untouched"
        results[name] = count / elapsed
        results[f"{name}: worst concurrent PING"] = pings["worst_ms"]
        print(
            f"  {name}: {count / elapsed:,.0f} keys/s, worst PING {pings['worst_ms']:.1f} ms "
            f"({pings['pings']:.0f} pings)"
        )
    for name, value in results.items():
        report.rows.append(Row("flush", name, value, "ms" if "PING" in name else "keys/s"))
    ours = results["namespace clear (SCAN + UNLINK)"]
    report.goal(f"flush keys/s / 200,000 ({count:,} keys)", ours / 200_000, 1.0)
    report.goal(
        "flush worst concurrent PING / 15 ms",
        results["namespace clear (SCAN + UNLINK): worst concurrent PING"] / 15,
        1.0,
        higher=False,
    )
    report.goal(
        "flush keys/s / django-redis delete_pattern",
        ours / results["django-redis delete_pattern"],
        1.0,
    )
    raw.flushdb()


# -- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, 100,000-key flush")
    parser.add_argument("--cpus", choices=sorted(LAYOUTS), default="split")
    parser.add_argument("--flush-keys", type=int, default=None)
    parser.add_argument("--skip", action="append", default=[], help="section to skip")
    parser.add_argument("--write", metavar="PATH", help="also write the Markdown report here")
    args = parser.parse_args(argv)

    sys.path.insert(0, os.getcwd())
    import django
    import redis
    from django.test.utils import override_settings

    from tests import servers

    layout = LAYOUTS[args.cpus]
    n, rounds = (2000, 3) if args.quick else (5000, 5)
    flush_keys = args.flush_keys or (100_000 if args.quick else 1_000_000)
    server = servers.redis_server().start()
    assert server.process is not None
    pin(server.process.pid, layout.server)
    pin(0, layout.client)
    load_before = os.getloadavg()
    report = Report()
    report.notes.append(f"CPU layout: {layout.text}.")
    try:
        django.setup()
        with override_settings(CACHES=caches_for(server.url)):
            from django.core.cache import caches

            from agenthub_cache import CacheService

            env: dict[str, Any] = {
                "host": server.host,
                "port": server.port,
                "raw": redis.Redis(host=server.host, port=server.port, db=3),
                "raw1": redis.Redis(host=server.host, port=server.port, db=1),
                "dr": caches["dr"],
                "dj": caches["dj"],
                "ns_dr": CacheService("bench", default_ttl=600, cache="dr"),
                "ns_dj": CacheService("bench", default_ttl=600, cache="dj"),
            }
            started = time.monotonic()
            if "single" not in args.skip:
                single_ops(report, env, n, rounds)
            if "batch" not in args.skip:
                batches(report, env, n, rounds)
            if "indexed" not in args.skip:
                indexed_set(report, env, n, rounds)
            if "async" not in args.skip:
                asyncio.run(async_section(report, env, "asyncio", n, rounds))
                try:
                    import uvloop
                except ImportError:
                    report.notes.append("uvloop not installed: its async rows are missing.")
                else:
                    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                        runner.run(async_section(report, env, "uvloop", n, rounds))
            if "index" not in args.skip:
                index_read(report, env, rounds)
            if "flush" not in args.skip:
                pin(
                    server.process.pid,
                    LAYOUTS["split"].server if layout.server is not None else None,
                )
                flush(
                    report,
                    env,
                    flush_keys,
                    LAYOUTS["split"] if layout.server is not None else layout,
                )
            elapsed = time.monotonic() - started
    finally:
        server.stop()
    load_after = os.getloadavg()
    report.notes.append(
        f"Load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
        f"{elapsed:.0f} s; {rounds} rounds of {n} ops per path, median reported."
    )
    header = "\n".join(
        [
            f"## {'Quick' if args.quick else 'Full'} run, {time.strftime('%Y-%m-%d %H:%M')}",
            "",
            *[f"- {line}" for line in machine(server.argv[0])],
            f"- Command: `python -m benchmarks.run {' '.join(argv if argv is not None else sys.argv[1:])}`",
        ]
    )
    text = report.markdown(header)
    print("\n" + text)
    if args.write:
        with open(args.write, "w") as out:
            out.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
