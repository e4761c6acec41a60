"""Namespaces on the non-Redis backends against the raw Django backend underneath (issue 13).

    python -m benchmarks.backends            # every backend found; a few minutes
    python -m benchmarks.backends --quick    # fewer rounds, 2,000 instead of 10,000 index values
    python -m benchmarks.backends --json     # the results as JSON (what benchmarks.run reads)

Runs in a process of its own, because it configures its own settings: a SQLite file and a
file-cache directory in a temp dir, a private memcached and a private PostgreSQL (initdb +
postgres on free loopback ports) when their binaries are installed; a backend whose server is
missing is left out with a note. Every ratio compares paths measured in the same run, taking
turns within each round (``harness.measure``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from typing import Any

sys.path.insert(0, os.getcwd())

from benchmarks.harness import KEYS, VALUE, Report, Row, loop_ops, measure

#: Single-operation goals of issue 13: (get, set) as a fraction of the raw backend.
GOALS = {
    "memcached": (0.9, 0.8),
    "sqlite": (0.9, 0.8),
    "postgres": (0.9, 0.8),
    "files": (0.8, 0.8),
    "locmem": (0.6, 0.5),
}
PG_TABLE = "bench_cache_pg"
_COUNTER = itertools.count()


class PostgresRouter:
    """The PostgreSQL cache table lives in the ``pg`` database; everything else in SQLite."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return "pg" if getattr(model._meta, "db_table", "") == PG_TABLE else None

    db_for_write = db_for_read


def settings_for(
    workdir: str, memcached: str | None, postgres: dict[str, Any] | None
) -> dict[str, Any]:
    big = {"MAX_ENTRIES": 10_000_000}
    caches: dict[str, Any] = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "locmem": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "bench",
            "OPTIONS": big,
        },
        "files": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": f"{workdir}/files",
            "OPTIONS": big,
        },
        "sqlite": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "bench_cache",
            "OPTIONS": big,
        },
    }
    databases: dict[str, Any] = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": f"{workdir}/bench.sqlite3",
            "OPTIONS": {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"},
        }
    }
    if memcached is not None:
        caches["memcached"] = {
            "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
            "LOCATION": memcached,
            "OPTIONS": {"retry_attempts": 0, "dead_timeout": 5},
        }
    if postgres is not None:
        databases["pg"] = postgres
        caches["postgres"] = {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": PG_TABLE,
            "OPTIONS": big,
        }
    return {
        "SECRET_KEY": "bench",
        "USE_TZ": True,
        "INSTALLED_APPS": ["agenthub_cache"],
        "DATABASES": databases,
        "DATABASE_ROUTERS": [f"{__name__}.PostgresRouter"],
        "CACHES": caches,
        "AGENTHUB_CACHE": {"NAMESPACES": {}},
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
    }


def configure(config: dict[str, Any]) -> None:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(**config)
        django.setup()


@contextmanager
def stores(workdir: str) -> Iterator[tuple[dict[str, Any], list[str]]]:
    from tests import servers

    notes: list[str] = []
    with ExitStack() as stack:
        memcached = servers.memcached_server()
        if memcached is None:
            notes.append("memcached not installed: its rows are missing.")
        else:
            memcached.start()
            stack.callback(memcached.stop)
        postgres = servers.postgres_server()
        if postgres is None:
            notes.append("PostgreSQL binaries not installed: its rows are missing.")
        else:
            postgres.start()
            stack.callback(postgres.stop)
        config = settings_for(
            workdir,
            memcached.location if memcached is not None else None,
            postgres.database() if postgres is not None else None,
        )
        yield config, notes


# -- single operations ------------------------------------------------------------------------


def single_ops(report: Report, aliases: list[str], n: int, rounds: int) -> None:
    from django.core.cache import caches

    from agenthub_cache import CacheService
    from agenthub_cache.providers.index_use import GRACE_SECONDS

    for alias in aliases:
        raw, ns = caches[alias], CacheService("bench", default_ttl=600, cache=alias)
        created = time.monotonic()
        for key in KEYS:
            raw.set(key, VALUE, 600)
            ns.set(key, VALUE)
        # A namespace's unindexed writes skip "is this key filed?" once it is older than this
        # (an indexed write within its first moments then waits for nobody): measure the
        # namespace as it runs for the rest of its life.
        time.sleep(max(0.0, created + GRACE_SECONDS + 0.1 - time.monotonic()))
        count = max(200, n // {"locmem": 1, "sqlite": 4, "memcached": 4}.get(alias, 8))
        print(f"\n{alias}: get and set (1 KB values, one at a time)")
        results = measure(
            {
                f"{alias}: raw get": loop_ops(raw.get),
                f"{alias}: namespace get": loop_ops(ns.get),
                f"{alias}: raw set": loop_ops(lambda k, raw=raw: raw.set(k, VALUE, 600)),
                f"{alias}: namespace set": loop_ops(lambda k, ns=ns: ns.set(k, VALUE)),
            },
            count,
            rounds,
        )
        report.add(alias, results)
        get_goal, set_goal = GOALS[alias]
        for op, goal in (("get", get_goal), ("set", set_goal)):
            ratio = results[f"{alias}: namespace {op}"] / results[f"{alias}: raw {op}"]
            report.goal(f"{alias} namespace {op} / raw {op}", ratio, goal)
        ns.clear()


# -- four processes writing into one namespace on PostgreSQL ----------------------------------


def _writer(config: dict[str, Any], through: str, worker: int, count: int, start: Any) -> None:
    configure(config)
    from django.core.cache import caches

    from agenthub_cache import CacheService

    raw, ns = caches["postgres"], CacheService("bench-writers", default_ttl=600, cache="postgres")
    write: Callable[[str], object] = (
        (lambda k: raw.set(k, VALUE, 600)) if through == "raw" else (lambda k: ns.set(k, VALUE))
    )
    write(f"warm-{worker}")
    start.wait()
    for i in range(count):
        write(f"w{worker}-{i % 500}")


def concurrent_writers(
    report: Report, config: dict[str, Any], processes: int, count: int, rounds: int
) -> None:
    context = multiprocessing.get_context("spawn")
    samples: dict[str, list[float]] = {"raw": [], "namespace": []}
    print(f"\npostgres: {processes} processes writing unindexed entries")
    for _ in range(rounds):
        for through in samples:
            start = context.Event()
            workers = [
                context.Process(target=_writer, args=(config, through, w, count, start))
                for w in range(processes)
            ]
            for w in workers:
                w.start()
            time.sleep(3.0)  # every worker configured and connected
            began = time.perf_counter()
            start.set()
            for w in workers:
                w.join()
            samples[through].append(processes * count / (time.perf_counter() - began))
    results = {
        f"postgres, {processes} processes: raw DatabaseCache set": max(samples["raw"]),
        f"postgres, {processes} processes: namespace set": max(samples["namespace"]),
    }
    report.add("postgres writers", results, "ops/s (all processes, best round)")
    raw_rate, ns_rate = results.values()
    report.goal(
        f"{processes} processes, namespace set / raw set (PostgreSQL)", ns_rate / raw_rate, 0.8
    )


# -- the generic index directory: set with one index, 100 vs many distinct live values --------


def index_growth(report: Report, aliases: list[str], many: int, n: int, rounds: int) -> None:
    from agenthub_cache import CacheService

    for alias in aliases:
        print(f"\n{alias}: set with one index, 100 vs {many:,} distinct live values")
        small = CacheService("bench-idx-small", default_ttl=600, cache=alias)
        large = CacheService("bench-idx-large", default_ttl=600, cache=alias)
        small.clear()
        large.clear()
        for i in range(100):
            small.set(f"seed{i}", 1, indexes={"tag": f"seed{i}"})
        started = time.perf_counter()
        for i in range(many):
            large.set(f"seed{i}", 1, indexes={"tag": f"seed{i}"})
        fill = time.perf_counter() - started

        def add_values(service: CacheService, count: int) -> float:
            """Seconds for ``count`` sets, each filing a new key under a new index value; the
            keys are deleted again afterwards, so the number of live values stays put."""
            added = [f"new{next(_COUNTER)}" for _ in range(count)]
            began = time.perf_counter()
            for key in added:
                service.set(key, 1, indexes={"tag": key})
            took = time.perf_counter() - began
            for key in added:
                service.delete(key)
            return took

        samples: dict[str, list[float]] = {"small": [], "large": []}
        add_values(small, 50)
        add_values(large, 50)
        for turn in range(rounds):  # which goes first alternates (checkpoints, caches)
            order = [("small", small), ("large", large)]
            for name, service in order if turn % 2 == 0 else order[::-1]:
                samples[name].append(n / add_values(service, n))
        results = {
            f"{alias}: indexed set, 100 values": statistics.median(samples["small"]),
            f"{alias}: indexed set, {many:,} values": statistics.median(samples["large"]),
        }
        report.add(f"{alias} index", results)
        report.rows.append(Row(f"{alias} index", f"{alias}: filling {many:,} values", fill, "s"))
        ratio = (
            results[f"{alias}: indexed set, 100 values"]
            / results[f"{alias}: indexed set, {many:,} values"]
        )
        report.goal(f"{alias} indexed set: {many:,} values slower than 100 by", ratio, 1.2, False)
        small.clear()
        large.clear()


def run(args: argparse.Namespace) -> Report:
    from django.core.management import call_command

    report = Report()
    n, rounds = (2000, 3) if args.quick else (4000, 5)
    many = 2_000 if args.quick else 10_000
    workdir = tempfile.mkdtemp(prefix="agenthub-cache-bench-")
    load_before = os.getloadavg()
    started = time.monotonic()
    try:
        with stores(workdir) as (config, notes):
            configure(config)
            call_command("createcachetable", verbosity=0)
            aliases = [
                a
                for a in ("locmem", "files", "sqlite", "memcached", "postgres")
                if a in config["CACHES"]
            ]
            if "postgres" in aliases:
                call_command("createcachetable", database="pg", verbosity=0)
            report.notes += notes
            if "single" not in args.skip:
                single_ops(report, aliases, n, rounds)
            if "writers" not in args.skip and "postgres" in aliases:
                concurrent_writers(report, config, 4, 300 if args.quick else 1000, rounds)
            if "index" not in args.skip:
                index_growth(report, ["locmem", "sqlite"], many, n // 4, rounds)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    load_after = os.getloadavg()
    report.notes.append(
        f"Backends: load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
        f"{time.monotonic() - started:.0f} s; {rounds} rounds, median (writers: best) reported."
    )
    return report


def merge_into(report: Report, quick: bool) -> None:
    """Run this benchmark in a subprocess (its own settings) and add its results to ``report``."""
    import subprocess

    from benchmarks.harness import Goal

    argv = [sys.executable, "-m", "benchmarks.backends", "--json", *(["--quick"] if quick else [])]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    print(done.stdout.rpartition("JSON:")[0], end="")
    found = json.loads(done.stdout.rpartition("JSON:")[2])
    report.rows += [Row(**row) for row in found["rows"]]
    report.goals += [Goal(**goal) for goal in found["goals"]]
    report.notes += found["notes"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the results as JSON last")
    parser.add_argument(
        "--skip", action="append", default=[], choices=["single", "writers", "index"]
    )
    args = parser.parse_args(argv)
    report = run(args)
    if args.json:
        print("JSON:" + json.dumps(asdict(report)))
    else:
        print("\n" + report.markdown("## Backends"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
