"""Flush one namespace of N keys beside N others, with a PING probe in another process."""

from __future__ import annotations

import time
from typing import Any

from benchmarks.harness import Layout, Report, Row, probe


def fill(client: Any, keys: list[str], value: bytes) -> None:
    for start in range(0, len(keys), 2000):
        client.mset(dict.fromkeys(keys[start : start + 2000], value))


def raw_scan_unlink(client: Any, match: str) -> int:
    """The floor: SCAN COUNT 1000 + UNLINK, each batch's UNLINK sent with the next SCAN."""
    deleted, cursor, pending = 0, 0, []
    while True:
        pipe = client.pipeline(transaction=False)
        if pending:
            pipe.unlink(*pending)
        pipe.scan(cursor, match=match, count=1000)
        replies = pipe.execute()
        if pending:
            deleted += replies[0]
        cursor, pending = replies[-1]
        if cursor == 0:
            if pending:
                deleted += client.unlink(*pending)
            return deleted


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
    for name in (
        "django-redis delete_pattern",
        "raw SCAN + UNLINK",
        "namespace clear (SCAN + UNLINK)",
    ):
        fill(raw, stored, small)
        assert raw.dbsize() == 2 * count
        with probe(env["host"], env["port"], layout.probe) as pings:
            started = time.perf_counter()
            if name.startswith("django-redis"):
                deleted = dr.delete_pattern("ahc:flushme:*")
            elif name.startswith("raw"):
                deleted = raw_scan_unlink(raw, provider.layout.match())
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
    report.goal(
        f"flush keys/s / raw SCAN + UNLINK ({count:,} keys)",
        ours / results["raw SCAN + UNLINK"],
        0.9,
    )
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
