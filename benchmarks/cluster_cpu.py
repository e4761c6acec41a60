"""Client CPU per operation on a Redis Cluster: namespace vs raw redis-py, sync and async.

    python -m benchmarks.cluster_cpu                 # 15 rounds of 2,000 operations per path
    python -m benchmarks.cluster_cpu --rounds 31 --cpus none

The ops/s ratios of ``benchmarks.cluster`` swing by ±10% between runs on a shared 2-CPU machine.
This measures what the namespace path itself costs instead: the CPU time of this process
(``time.process_time``: the client's Python, redis-py and its socket system calls; the
servers' time is not in it) per ``get``/``set`` of a namespace spread over 16 tags, against
raw ``RedisCluster.get``/``set`` of the same pickled 1 KB value, and per ``aget``/``aset`` from
64 tasks against raw ``redis.asyncio`` ``RedisCluster``. The paths take turns in every round
(which goes first alternates); the table shows each path's median and the median of the
per-round differences, which a drifting machine moves less. Starts its own 3 + 3 cluster
(``tests/servers.py``); with ``--cpus split`` (default) its servers run on CPU 1 and this
process on CPU 0.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pickle
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
sys.path.insert(0, os.getcwd())

from benchmarks.harness import KEYS, VALUE, pin

TASKS = 64


def rounds_of(
    paths: dict[str, Callable[[int], float]], n: int, rounds: int
) -> dict[str, list[float]]:
    """CPU µs per operation of each path, per round; the paths take turns."""
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for path in paths.values():
        path(min(n, 256))
    for round_ in range(rounds):
        order = list(paths.items())
        if round_ % 2:
            order.reverse()
        for name, path in order:
            samples[name].append(path(n))
    return samples


def sync_path(op: Callable[[str], object]) -> Callable[[int], float]:
    def run(n: int) -> float:
        keys = KEYS
        started = time.process_time()
        for i in range(n):
            op(keys[i % 1000])
        return (time.process_time() - started) / n * 1e6

    return run


def async_path(
    loop: asyncio.AbstractEventLoop, op: Callable[[str], Awaitable[object]]
) -> Callable[[int], float]:
    async def worker(start: int, count: int) -> None:
        keys = KEYS
        for i in range(start, start + count):
            await op(keys[i % 1000])

    async def tasks(per: int) -> None:
        await asyncio.gather(*(worker(t * per, per) for t in range(TASKS)))

    def run(n: int) -> float:
        per = max(1, n // TASKS)
        started = time.process_time()
        loop.run_until_complete(tasks(per))
        return (time.process_time() - started) / (per * TASKS) * 1e6

    return run


def report(title: str, samples: dict[str, list[float]], pairs: list[tuple[str, str]]) -> None:
    print(f"\n{title}")
    for name, values in samples.items():
        print(f"  {name:34s} {statistics.median(values):7.1f} µs CPU/op")
    for raw, namespace in pairs:
        extra = statistics.median(
            b - a for a, b in zip(samples[raw], samples[namespace], strict=True)
        )
        ratio = statistics.median(
            a / b for a, b in zip(samples[raw], samples[namespace], strict=True)
        )
        print(f"  {namespace}: {extra:+.1f} µs/op over {raw}; raw/namespace CPU {ratio:.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="operations per path per round")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--cpus", choices=["split", "none"], default="split")
    args = parser.parse_args(argv)
    import django
    import redis.asyncio.cluster as acluster
    import redis.cluster as scluster
    from django.test.utils import override_settings

    from tests import servers
    from tests.conftest import cluster_cache_settings

    django.setup()
    cluster = servers.redis_cluster()
    try:
        if args.cpus == "split":
            pin(0, 0)
            for server in cluster.nodes:
                assert server.process is not None
                pin(server.process.pid, 1)
        caches = {
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            "cluster": {**cluster_cache_settings(cluster), "KEY_PREFIX": ""},
        }
        spaces = {"bench16": {"CACHE": "cluster", "TTL": None, "SLOTS": 16}}
        nodes = [(s.host, s.port) for s in cluster.primaries]
        stored = pickle.dumps(VALUE, pickle.HIGHEST_PROTOCOL)
        with override_settings(CACHES=caches, AGENTHUB_CACHE={"NAMESPACES": spaces}):
            from agenthub_cache import namespaces

            service = namespaces["bench16"]
            raw = scluster.RedisCluster(
                startup_nodes=[scluster.ClusterNode(h, p) for h, p in nodes]
            )
            for key in KEYS:
                raw.set(key, stored)
                service.set(key, VALUE)
            time.sleep(1.1)  # past the namespace's first second (index_use.GRACE_SECONDS)
            paths = {
                "raw RedisCluster get": sync_path(raw.get),
                "namespace get": sync_path(service.get),
                "raw RedisCluster set": sync_path(lambda k: raw.set(k, stored)),
                "namespace set": sync_path(lambda k: service.set(k, VALUE)),
            }
            samples = rounds_of(paths, args.n, args.rounds)
            report(
                "sync, one call at a time",
                samples,
                [
                    ("raw RedisCluster get", "namespace get"),
                    ("raw RedisCluster set", "namespace set"),
                ],
            )
            raw.close()

            loop = asyncio.new_event_loop()
            araw: Any = acluster.RedisCluster(
                startup_nodes=[acluster.ClusterNode(h, p) for h, p in nodes], max_connections=100
            )
            loop.run_until_complete(araw.initialize())
            apaths = {
                "raw asyncio RedisCluster get": async_path(loop, araw.get),
                "namespace aget": async_path(loop, service.aget),
                "raw asyncio RedisCluster set": async_path(loop, lambda k: araw.set(k, stored)),
                "namespace aset": async_path(loop, lambda k: service.aset(k, VALUE)),
            }
            samples = rounds_of(apaths, args.n, args.rounds)
            report(
                f"async, {TASKS} tasks",
                samples,
                [
                    ("raw asyncio RedisCluster get", "namespace aget"),
                    ("raw asyncio RedisCluster set", "namespace aset"),
                ],
            )
            loop.run_until_complete(araw.aclose())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
