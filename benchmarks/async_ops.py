"""Async measurements: 1 and 64 concurrent tasks, against redis.asyncio, aiocache, cashews."""

from __future__ import annotations

import pickle
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.harness import KEYS, VALUE, Report, ameasure, task_ops


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
