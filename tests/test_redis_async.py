"""The Redis provider's async side: real ``redis.asyncio``, one client per event loop.

Loops come and go (``asyncio.run`` twice, loops in threads, pytest-asyncio's, uvloop); each
loop's connections close when it shuts down, with no ResourceWarning (tests run with
warnings as errors, and ``test_closed_loops_leave_no_connections`` looks explicitly).
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from agenthub_cache import CacheService
from agenthub_cache.providers import threaded
from agenthub_cache.providers.redis import RedisProvider, connections
from tests.conftest import make_service

pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture
def svc(redis_backend: str) -> Iterator[CacheService]:
    service = make_service(redis_backend, default_ttl=60)
    yield service
    service.clear()


@pytest.fixture
def no_thread_hops(monkeypatch: pytest.MonkeyPatch) -> None:
    """The generic provider's fallback (``sync_to_async``) must never be reached."""

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the Redis provider hopped to a thread")

    monkeypatch.setattr(threaded, "sync_to_async", forbidden)


def server_clients(svc: CacheService) -> int:
    provider = svc.provider
    assert isinstance(provider, RedisProvider)
    kwargs = provider.connection.client.connection_pool.connection_kwargs
    with redis.Redis(host=kwargs["host"], port=kwargs["port"]) as probe:
        return len(probe.client_list()) - 1


async def test_every_async_twin_is_native(svc: CacheService, no_thread_hops: None) -> None:
    assert await svc.aset("a", {"v": 1}, indexes={"grp": "g"})
    assert await svc.aadd("b", 2, indexes={"grp": "g"})
    assert not await svc.aadd("b", 3)
    assert await svc.aget("a") == {"v": 1}
    assert await svc.aget_many(["a", "b", "c"]) == {"a": {"v": 1}, "b": 2}
    assert await svc.aset_many({"c": 3, "d": 4}) == []
    assert await svc.ahas_key("c")
    assert sorted(await svc.afind("grp", "g")) == ["a", "b"]
    assert await svc.aget_by_index("grp", "g") == {"a": {"v": 1}, "b": 2}
    assert await svc.aincr("n", 5, ttl=30) == 5
    assert await svc.adecr("n") == 4
    assert await svc.attl("n") == 30
    assert await svc.atouch("n", 10)
    assert await svc.attl("n") == 10
    assert await svc.apersist("n")
    assert await svc.attl("n") is None
    assert await svc.apop("d") == 4
    assert await svc.apop("d", "gone") == "gone"
    assert await svc.aget_or_set("e", lambda: "made") == "made"
    assert sorted(await svc.akeys()) == ["a", "b", "c", "e", "n"]
    assert await svc.acount() == 5
    assert (await svc.astats())["entries"] == 5
    assert await svc.adelete_by_index("grp", "g") == 2
    assert await svc.aprune() == 0
    assert await svc.adelete("c")
    assert await svc.adelete_many(["e", "n", "zz"]) == 2
    async with svc.lock("L", timeout=5, blocking_timeout=0):
        with pytest.raises(Exception, match="could not acquire"):
            async with svc.lock("L", timeout=5, blocking_timeout=0):
                pass
    await svc.aset_many({f"x{n}": n for n in range(50)})
    seen: list[int] = []
    assert await svc.aclear(progress=seen.append) == 50
    assert seen[-1] == 50


async def test_sync_and_async_read_each_other(svc: CacheService) -> None:
    svc.set("s", ["sync"], indexes={"by": "sync"})
    await svc.aset("a", ["async"], indexes={"by": "async"})
    assert await svc.aget("s") == ["sync"]
    assert svc.get("a") == ["async"]
    assert await svc.afind("by", "sync") == ["s"]
    assert svc.find("by", "async") == ["a"]
    svc.incr("n")
    await svc.aincr("n")
    assert svc.get("n") == 2
    assert await svc.aget("n") == 2
    await svc.aset("s", "moved", indexes={"by": "async"})
    assert svc.find("by", "sync") == []
    assert sorted(svc.find("by", "async")) == ["a", "s"]


def test_several_event_loops_in_a_row_and_in_threads(svc: CacheService) -> None:
    before = server_clients(svc)

    async def work(tag: str) -> Any:
        await svc.aset(tag, tag, indexes={"tag": tag})
        await asyncio.gather(*(svc.aincr("count") for _ in range(20)))
        return await svc.aget(tag), await svc.afind("tag", tag)

    assert asyncio.run(work("one")) == ("one", ["one"])
    assert asyncio.run(work("two")) == ("two", ["two"])
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda n=n: results.append(asyncio.run(work(f"t{n}"))))
        for n in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == [(f"t{n}", [f"t{n}"]) for n in range(4)]
    assert svc.get("count") == 120
    assert server_clients(svc) == before  # every loop closed its connections at shutdown


def test_uvloop_runs_and_closes(svc: CacheService) -> None:
    uvloop = pytest.importorskip("uvloop")
    before = server_clients(svc)

    async def work() -> Any:
        await asyncio.gather(*(svc.aset(f"k{n}", n) for n in range(64)))
        return sorted((await svc.aget_many([f"k{n}" for n in range(64)])).values())

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(work()) == list(range(64))
    assert server_clients(svc) == before


def test_closed_loops_leave_no_connections(svc: CacheService) -> None:
    registered = len(connections._handles)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            asyncio.run(svc.aset("x", 1))
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert len(connections._handles) == registered


async def test_aclose_closes_then_reopens(svc: CacheService) -> None:
    await svc.aset("k", 1)
    before = server_clients(svc)
    await svc.aclose()
    assert server_clients(svc) == before - 1
    assert await svc.aget("k") == 1


async def test_get_or_set_computes_once_across_tasks_and_loops(svc: CacheService) -> None:
    calls: list[int] = []

    def compute() -> str:
        calls.append(1)
        time.sleep(0.2)  # blocks its loop: the other loop's tasks still wait for it
        return "value"

    def other_loop() -> None:
        async def many() -> list[Any]:
            return list(await asyncio.gather(*(svc.aget_or_set("k", compute) for _ in range(5))))

        other.extend(asyncio.run(many()))

    other: list[Any] = []
    thread = threading.Thread(target=other_loop)
    thread.start()
    mine = await asyncio.gather(*(svc.aget_or_set("k", compute) for _ in range(10)))
    await asyncio.to_thread(thread.join, 30)
    assert mine == ["value"] * 10
    assert other == ["value"] * 5
    assert len(calls) == 1


async def test_cancelled_waiter_leaves_no_trace(svc: CacheService) -> None:
    provider = svc.provider
    assert isinstance(provider, RedisProvider)
    guard = provider.layout.lock("get_or_set", "k")
    await provider.connection.async_handle().client.set(guard, "other", px=5_000)
    waiter = asyncio.create_task(svc.aget_or_set("k", "mine", wait=5))
    await asyncio.sleep(0.05)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert await svc.aget("k") is None
    gc.collect()  # a generator that ignored GeneratorExit would warn here


async def test_async_lock_is_exclusive_across_tasks(svc: CacheService) -> None:
    inside: list[int] = []
    overlap: list[bool] = []

    async def critical(n: int) -> None:
        async with svc.lock("section", timeout=10, blocking_timeout=10):
            inside.append(n)
            overlap.append(len(inside) > 1)
            await asyncio.sleep(0.01)
            inside.remove(n)

    await asyncio.gather(*(critical(n) for n in range(8)))
    assert overlap == [False] * 8


async def test_sixty_four_tasks(svc: CacheService) -> None:
    await asyncio.gather(*(svc.aset(f"k{n}", n, indexes={"mod": str(n % 4)}) for n in range(64)))
    got = await asyncio.gather(*(svc.aget(f"k{n}") for n in range(64)))
    assert got == list(range(64))
    assert sorted(int(k[1:]) for k in await svc.afind("mod", "3")) == list(range(3, 64, 4))
