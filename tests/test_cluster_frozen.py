"""Startup nodes that accept connections and never answer (``servers.frozen_listeners``): the
async methods never block the event loop while the cluster is looked for. Needs no cluster."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test.utils import override_settings

from agenthub_cache import CacheService, CacheUnavailable
from tests import servers

CLUSTER = "agenthub_cache.backends.RedisClusterCache"
#: Seconds each startup node may take to answer, in these tests.
SOCKET_TIMEOUT = 1.0


@pytest.fixture
def frozen_alias() -> Iterator[str]:
    """A cluster alias whose only startup node accepts connections and never answers."""
    with servers.frozen_listeners(1) as location:
        options = {"SOCKET_TIMEOUT": SOCKET_TIMEOUT, "SOCKET_CONNECT_TIMEOUT": SOCKET_TIMEOUT}
        alias = {"BACKEND": CLUSTER, "LOCATION": location, "OPTIONS": options}
        with override_settings(CACHES={**settings.CACHES, "frozen": alias}):
            yield "frozen"


async def longest_stall(calls: Awaitable[Any]) -> tuple[float, Any]:
    """Await ``calls`` while a task ticks every 10 ms; the longest the loop went without a
    tick (so without running anything else), and what ``calls`` returned."""
    ticks: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        while not done.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.05)
    try:
        result = await calls
    finally:
        done.set()
        await ticker
    return max(b - a for a, b in itertools.pairwise(ticks)), result


MULTI_STEP: list[Callable[[CacheService], Awaitable[Any]]] = [
    lambda s: s.afind("idx", "v"),
    lambda s: s.aget_by_index("idx", "v"),
    lambda s: s.adelete_by_index("idx", "v"),
    lambda s: s.aget_or_set("k", 1),
    lambda s: s.aclear(),
    lambda s: s.astats(),
    lambda s: s.akeys(),
    lambda s: s.acount(),
    lambda s: s.aprune(),
]


async def test_multi_step_async_methods_never_block_the_loop(frozen_alias: str) -> None:
    """Each of them looked for the node of its slot with the sync client, which read the slot
    map on the loop's thread: the loop stood still for a socket timeout (1 s) per call. Now
    the loop's async client reads it, and the loop keeps running."""
    service = CacheService("frozen-loop", default_ttl=60, cache=frozen_alias)
    calls = asyncio.gather(*(call(service) for call in MULTI_STEP), return_exceptions=True)
    stall, results = await longest_stall(calls)
    assert [type(r) for r in results] == [CacheUnavailable] * len(MULTI_STEP), results
    assert stall < SOCKET_TIMEOUT / 2, f"the loop stood still for {stall:.2f} s"


#: Hanging startup nodes, and the socket timeout, of the tests of a call's time: asked one
#: after another (redis-py's way) they cost HANGING * TIMEOUT = 4 s per call.
HANGING, TIMEOUT = 8, 0.5
#: A call's time, at most: a few timeouts (for a loaded machine), half of what asking the
#: nodes in turn takes.
CALL_BOUND = 4 * TIMEOUT


@pytest.fixture
def hanging_alias() -> Iterator[str]:
    with servers.frozen_listeners(HANGING) as location:
        options = {"SOCKET_TIMEOUT": TIMEOUT, "SOCKET_CONNECT_TIMEOUT": TIMEOUT}
        alias = {"BACKEND": CLUSTER, "LOCATION": location, "OPTIONS": options}
        with override_settings(CACHES={**settings.CACHES, "hanging": alias}):
            yield "hanging"


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.monotonic()
    try:
        result = call()
    except Exception as exc:
        result = exc
    return time.monotonic() - started, result


def test_hanging_startup_nodes_cost_one_timeout_per_call(hanging_alias: str) -> None:
    """Eight startup nodes that never answer: each call fails (CacheUnavailable naming them)
    after about one socket timeout, not eight in turn; and eight threads calling at once each
    get the outcome of the attempt they waited for, instead of trying again one after another
    (which took the eighth thread 8 attempts)."""
    service = CacheService("hanging", default_ttl=60, cache=hanging_alias)
    for call in (lambda: service.get("k"), lambda: service.find("idx", "v")):
        took, result = timed(call)
        assert took < CALL_BOUND, f"{took:.2f} s"
        assert isinstance(result, CacheUnavailable), result
        assert "no startup node" in str(result)
    results: list[tuple[float, Any]] = []
    barrier = threading.Barrier(8)

    def caller() -> None:
        barrier.wait()
        results.append(timed(lambda: service.set("k", 1)))

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(isinstance(result, CacheUnavailable) for _, result in results), results
    assert max(took for took, _ in results) < CALL_BOUND, results


async def test_hanging_startup_nodes_cost_one_timeout_per_async_call(hanging_alias: str) -> None:
    service = CacheService("hanging", default_ttl=60, cache=hanging_alias)
    for make in (lambda: service.aget("k"), lambda: service.afind("idx", "v")):
        started = time.monotonic()
        with pytest.raises(CacheUnavailable) as raised:
            await make()
        assert time.monotonic() - started < CALL_BOUND
        assert "no startup node" in str(raised.value)
    started = time.monotonic()
    results = await asyncio.gather(
        *(service.aset(f"k{n}", n) for n in range(50)), return_exceptions=True
    )
    assert all(isinstance(result, CacheUnavailable) for result in results), results[:3]
    assert time.monotonic() - started < CALL_BOUND


@pytest.mark.extended
def test_a_cluster_behind_hanging_startup_nodes_is_found_at_once(
    redis_cluster: servers.Cluster,
) -> None:
    """Seven hanging startup nodes and one of the test cluster's: the client is built from
    the node that answers, so the first calls, sync and async, succeed in less than one
    socket timeout (1 s here). Asked in turn (redis-py shuffles them), a hanging node came
    first 7 times in 8, costing a timeout each."""
    with servers.frozen_listeners(HANGING - 1) as hanging:
        options = {"SOCKET_TIMEOUT": 1.0, "SOCKET_CONNECT_TIMEOUT": 1.0}
        alias = {
            "BACKEND": CLUSTER,
            "LOCATION": [*hanging, redis_cluster.urls[0]],
            "OPTIONS": options,
        }
        with override_settings(CACHES={**settings.CACHES, "behind": alias}):
            service = CacheService("behind", default_ttl=60, cache="behind")
            took, result = timed(lambda: service.set("k", 1, indexes={"g": "1"}))
            assert took < 1.0, f"{took:.2f} s"
            assert result is True

            async def first_async_calls() -> list[str]:
                return await service.afind("g", "1")

            took, result = timed(lambda: asyncio.run(first_async_calls()))
            assert took < 1.0, f"{took:.2f} s"
            assert result == ["k"]
            service.clear()
