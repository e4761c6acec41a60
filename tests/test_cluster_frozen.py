"""Startup nodes that accept connections and never answer (``servers.frozen_listeners``): the
async methods never block the event loop while the cluster is looked for. Needs no cluster."""

from __future__ import annotations

import asyncio
import itertools
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
