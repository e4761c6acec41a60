"""Flush one namespace of N keys beside N others, with a PING probe in another process."""

from __future__ import annotations

import time
from typing import Any

from benchmarks.harness import Layout, Report, Row, probe


def fill(client: Any, keys: list[str], value: bytes) -> None:
    for start in range(0, len(keys), 2000):
        client.mset(dict.fromkeys(keys[start : start + 2000], value))


def flush(report: Report, env: dict[str, Any], count: int, layout: Layout) -> None:
    from django.core.cache import caches

    from agenthub_cache import CacheService

    raw = env["raw1"]  # database 1: django-redis's
    dr = caches["dr"]
    svc = CacheService("flushme", default_ttl=None, cache="dr")
    provider: Any = svc.provider  # to name the stored keys of the namespace to fill in
    stored = [provider.layout.entry(f"k{n}") for n in range(count)]
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
                deleted = svc.clear()
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
