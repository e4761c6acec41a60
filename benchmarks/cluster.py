"""Benchmark the Redis Cluster backend and provider (issue 9) in one run, as ratios.

    python -m benchmarks.cluster                     # 1,000,000-key flush: several minutes
    python -m benchmarks.cluster --quick             # 100,000-key flush
    python -m benchmarks.cluster --write /tmp/cluster.md

Starts its own 3-primary + 3-replica cluster and one single redis-server on free loopback
ports (``tests/servers.py``; never the machine's 6379). Measures:

* namespace ``get``/``set`` on the cluster vs raw redis-py ``RedisCluster`` ``get``/``set``;
* ``aget``/``aset`` from 64 tasks vs raw ``redis.asyncio`` ``RedisCluster``;
* ``get_by_index`` of 10,000 entries with ``SLOTS = 16`` vs ``SLOTS = 1``;
* flush of one namespace (``SLOTS = 16``, so over all 3 primaries) of N keys beside N others,
  vs the same flush on the single server, with a PING probe on every primary; the others'
  keys are counted before and after;
* how a flush could list a tag's keys on its primary: SCAN MATCH over the node vs
  ``CLUSTER GETKEYSINSLOT`` (keys found per second, and the longest single call).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pickle
import statistics
import sys
import time
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
sys.path.insert(0, os.getcwd())

from benchmarks.harness import (
    KEYS,
    VALUE,
    Report,
    Row,
    ameasure,
    loop_ops,
    measure,
    probe,
    task_ops,
)

CLUSTER_ALIAS, SINGLE_ALIAS = "cluster", "single"


def spaces() -> dict[str, dict[str, Any]]:
    on = {"CACHE": CLUSTER_ALIAS, "TTL": None}
    return {
        "bench": on,
        "bench16": {**on, "SLOTS": 16},
        "idx1": {**on, "SLOTS": 1},
        "idx16": {**on, "SLOTS": 16},
        "flush16": {**on, "SLOTS": 16},
        "keep": on,
        "flushone": {"CACHE": SINGLE_ALIAS, "TTL": None},
        "keepone": {"CACHE": SINGLE_ALIAS, "TTL": None},
    }


def single_ops(report: Report, raw: Any, n: int, rounds: int) -> None:
    from agenthub_cache import namespaces

    svc, one = namespaces["bench16"], namespaces["bench"]
    stored = pickle.dumps(VALUE, pickle.HIGHEST_PROTOCOL)
    for key in KEYS:
        raw.set(key, stored)
        svc.set(key, VALUE)
        one.set(key, VALUE)
    print("\nget/set, one at a time (the namespace over 16 tags, as raw keys spread; and in one)")
    results = measure(
        {
            "raw RedisCluster GET": loop_ops(raw.get),
            "namespace get": loop_ops(svc.get),
            "namespace get, SLOTS=1 (one primary)": loop_ops(one.get),
            "raw RedisCluster SET": loop_ops(lambda k: raw.set(k, stored)),
            "namespace set": loop_ops(lambda k: svc.set(k, VALUE)),
            "namespace set, SLOTS=1 (one primary)": loop_ops(lambda k: one.set(k, VALUE)),
        },
        n,
        rounds,
    )
    report.add("cluster single ops", results)
    report.goal(
        "namespace get / raw RedisCluster get",
        results["namespace get"] / results["raw RedisCluster GET"],
        0.9,
    )
    report.goal(
        "namespace set / raw RedisCluster set",
        results["namespace set"] / results["raw RedisCluster SET"],
        0.9,
    )


def async_ops(report: Report, nodes: list[tuple[str, int]], n: int, rounds: int) -> None:
    import redis.asyncio.cluster as acluster

    from agenthub_cache import namespaces

    svc, one = namespaces["bench16"], namespaces["bench"]
    stored = pickle.dumps(VALUE, pickle.HIGHEST_PROTOCOL)

    async def main() -> dict[str, float]:
        raw = acluster.RedisCluster(
            startup_nodes=[acluster.ClusterNode(h, p) for h, p in nodes], max_connections=100
        )
        await raw.initialize()  # redis-py 8.1 fails when 64 tasks initialize it at once
        try:
            return await ameasure(
                {
                    "raw asyncio RedisCluster GET, 64 tasks": task_ops(raw.get, 64),
                    "namespace aget, 64 tasks": task_ops(svc.aget, 64),
                    "namespace aget, SLOTS=1, 64 tasks": task_ops(one.aget, 64),
                    "raw asyncio RedisCluster SET, 64 tasks": task_ops(
                        lambda k: raw.set(k, stored), 64
                    ),
                    "namespace aset, 64 tasks": task_ops(lambda k: svc.aset(k, VALUE), 64),
                    "namespace aset, SLOTS=1, 64 tasks": task_ops(lambda k: one.aset(k, VALUE), 64),
                },
                n,
                rounds,
            )
        finally:
            await raw.aclose()

    print("\naget/aset, 64 concurrent tasks")
    results = asyncio.run(main())
    report.add("cluster async", results)
    report.goal(
        "namespace aget / raw asyncio RedisCluster get (64 tasks)",
        results["namespace aget, 64 tasks"] / results["raw asyncio RedisCluster GET, 64 tasks"],
        0.85,
    )
    report.goal(
        "namespace aset / raw asyncio RedisCluster set (64 tasks)",
        results["namespace aset, 64 tasks"] / results["raw asyncio RedisCluster SET, 64 tasks"],
        0.85,
    )


def index_read(report: Report, entries: int, rounds: int) -> None:
    from agenthub_cache import namespaces

    print(f"\nget_by_index of {entries:,} entries under one value")
    times: dict[str, float] = {}
    for name in ("idx1", "idx16"):
        svc = namespaces[name]
        for n in range(entries):
            svc.set(f"e{n}", VALUE, indexes={"group": "all"})
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            found = svc.get_by_index("group", "all")
            samples.append((time.perf_counter() - started) * 1000)
            assert len(found) == entries, (name, len(found))
        times[f"get_by_index, SLOTS={1 if name == 'idx1' else 16}"] = statistics.median(samples)
        svc.clear()
    report.add("cluster get_by_index", times, "ms")
    report.goal(
        f"get_by_index {entries:,}: SLOTS=16 time / SLOTS=1 time",
        times["get_by_index, SLOTS=16"] / times["get_by_index, SLOTS=1"],
        1.5,
        higher=False,
    )


def _fill(client: Any, keys: list[str], value: bytes) -> None:
    for start in range(0, len(keys), 5000):
        client.mset_nonatomic(dict.fromkeys(keys[start : start + 5000], value))


def _stored(service: Any, count: int) -> list[str]:
    provider: Any = service.provider
    return [provider._layout_for(f"k{n}").entry(f"k{n}") for n in range(count)]


def listing(report: Report, client: Any, service: Any) -> None:
    """On the primary of one tag: SCAN the node vs CLUSTER GETKEYSINSLOT for the tag's keys."""
    provider: Any = service.provider
    layout = provider.layouts[0]
    node = client.get_node_from_key(layout.listed_prefix())
    redis_node = client.get_redis_connection(node)
    slot = client.keyslot(layout.listed_prefix())
    in_slot = int(redis_node.execute_command("CLUSTER COUNTKEYSINSLOT", slot))
    started, found, worst, cursor = time.perf_counter(), 0, 0.0, 0
    while True:
        call = time.perf_counter()
        cursor, batch = redis_node.scan(cursor, match=layout.match(), count=1000)
        worst = max(worst, time.perf_counter() - call)
        found += len(batch)
        if cursor == 0:
            break
    scan_rate = found / (time.perf_counter() - started)
    calls = []
    for _ in range(20):
        call = time.perf_counter()
        redis_node.execute_command("CLUSTER GETKEYSINSLOT", slot, 1000)
        calls.append(time.perf_counter() - call)
    gks_rate = 1000 / statistics.median(calls)
    report.add(
        "cluster flush listing (one tag's primary)",
        {
            f"SCAN MATCH over the node ({in_slot:,} keys in the tag's slot, "
            f"{int(redis_node.dbsize()):,} on the node): keys found/s": scan_rate,
            "CLUSTER GETKEYSINSLOT 1000: keys found/s": gks_rate,
        },
        "keys/s",
    )
    report.add(
        "cluster flush listing (one tag's primary)",
        {
            "SCAN COUNT 1000: longest call": worst * 1000,
            "GETKEYSINSLOT 1000: longest call": max(calls) * 1000,
        },
        "ms",
    )


def flush(report: Report, cluster: Any, single: Any, count: int) -> None:
    import redis
    import redis.cluster as scluster

    from agenthub_cache import namespaces

    client = scluster.RedisCluster(
        startup_nodes=[scluster.ClusterNode(s.host, s.port) for s in cluster.primaries]
    )
    small = pickle.dumps("v" * 20, pickle.HIGHEST_PROTOCOL)
    target, keep = namespaces["flush16"], namespaces["keep"]
    print(f"\nflush one namespace of {count:,} keys beside {count:,} others")
    primaries = client.get_primaries()

    def total() -> int:
        return sum(int(client.get_redis_connection(p).dbsize()) for p in primaries)

    base = total()  # what the other sections left (their own namespaces)
    _fill(client, [f"other:{n}" for n in range(count // 2)], small)
    _fill(client, _stored(keep, count // 2), small)
    _fill(client, _stored(target, count), small)
    assert total() == base + 2 * count
    listing(report, client, target)
    results: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        pings = [stack.enter_context(probe(p.host, p.port, None)) for p in primaries]
        started = time.perf_counter()
        deleted = target.clear()
        elapsed = time.perf_counter() - started
    assert deleted == count, deleted
    assert total() == base + count, "the other keys must be untouched"
    results["cluster flush (SLOTS=16, 3 primaries)"] = count / elapsed
    worst = max(p["worst_ms"] for p in pings)
    results["cluster flush: worst PING of any primary"] = worst
    print(f"  cluster: {count / elapsed:,.0f} keys/s, worst PING {worst:.1f} ms")
    raw = redis.Redis(host=single.host, port=single.port)
    one, keep_one = namespaces["flushone"], namespaces["keepone"]
    _fill_single(raw, [f"other:{n}" for n in range(count // 2)], small)
    _fill_single(raw, _stored(keep_one, count // 2), small)
    _fill_single(raw, _stored(one, count), small)
    with probe(single.host, single.port, None) as single_ping:
        started = time.perf_counter()
        deleted = one.clear()
        elapsed = time.perf_counter() - started
    assert deleted == count
    assert int(raw.dbsize()) == count
    results["single-node flush"] = count / elapsed
    results["single-node flush: worst PING"] = single_ping["worst_ms"]
    print(f"  single: {count / elapsed:,.0f} keys/s, worst PING {single_ping['worst_ms']:.1f} ms")
    for name, value in results.items():
        report.rows.append(Row("cluster flush", name, value, "ms" if "PING" in name else "keys/s"))
    report.goal(
        f"cluster flush keys/s / single-node flush keys/s ({count:,} keys)",
        results["cluster flush (SLOTS=16, 3 primaries)"] / results["single-node flush"],
        1.5,
    )
    report.goal("cluster flush worst PING of any primary / 15 ms", worst / 15, 1.0, higher=False)
    keep.clear()
    keep_one.clear()
    client.close()
    raw.close()


def _fill_single(client: Any, keys: list[str], value: bytes) -> None:
    for start in range(0, len(keys), 5000):
        client.mset(dict.fromkeys(keys[start : start + 5000], value))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, 100,000-key flush")
    parser.add_argument("--flush-keys", type=int, default=None)
    parser.add_argument("--write", metavar="PATH", help="also write the Markdown report here")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        choices=["single", "async", "index", "flush"],
        help="run only these sections (repeatable)",
    )
    args = parser.parse_args(argv)
    import django
    from django.test.utils import override_settings

    from benchmarks.harness import machine
    from tests import servers
    from tests.conftest import cluster_cache_settings

    n, rounds = (2000, 3) if args.quick else (4000, 5)
    count = args.flush_keys or (100_000 if args.quick else 1_000_000)
    django.setup()
    cluster = servers.redis_cluster()
    single = servers.redis_server().start()
    report = Report()
    try:
        caches = {
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            CLUSTER_ALIAS: {**cluster_cache_settings(cluster), "KEY_PREFIX": ""},
            SINGLE_ALIAS: {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": single.url},
        }
        import redis.cluster as scluster

        nodes = [(s.host, s.port) for s in cluster.primaries]
        raw = scluster.RedisCluster(startup_nodes=[scluster.ClusterNode(h, p) for h, p in nodes])
        with override_settings(CACHES=caches, AGENTHUB_CACHE={"NAMESPACES": spaces()}):
            load = os.getloadavg()
            report.notes.append(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
            only = set(args.only) or {"single", "async", "index", "flush"}
            if "single" in only:
                single_ops(report, raw, n, rounds)
            if "async" in only:
                async_ops(report, nodes, n, rounds)
            if "index" in only:
                index_read(report, 10_000, rounds)
            if "flush" in only:
                flush(report, cluster, single, count)
            load = os.getloadavg()
            report.notes.append(f"load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        raw.close()
    finally:
        cluster.stop()
        single.stop()
    binary = servers.redis_binary() or "redis-server"
    header = "\n".join(f"- {line}" for line in machine(binary))
    text = report.markdown(
        header + f"\n- Command: `python -m benchmarks.cluster {' '.join(argv or sys.argv[1:])}`"
    )
    print("\n" + text)
    if args.write:
        with open(args.write, "w") as out:
            out.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
