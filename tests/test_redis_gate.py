"""``Gate``, the async cluster client's cap on commands in flight (``max_connections``): at
most ``limit`` holders, the rest served in turn, and no place lost or kept by a waiter that is
cancelled or times out. Needs no server."""

from __future__ import annotations

import asyncio

import pytest

from agenthub_cache.providers.redis.gate import Gate


async def test_places_up_to_the_limit_then_none() -> None:
    gate = Gate(2)
    assert gate.enter_now()
    assert gate.enter_now()
    assert not gate.enter_now()
    gate.leave()
    assert gate.enter_now()
    assert gate.free == 0


async def test_waiters_are_served_in_turn_and_newcomers_do_not_overtake() -> None:
    gate = Gate(1)
    assert gate.enter_now()
    served: list[int] = []

    async def waiter(n: int) -> None:
        await gate.wait()
        served.append(n)

    tasks = [asyncio.create_task(waiter(n)) for n in range(3)]
    await asyncio.sleep(0)  # all three queued
    gate.leave()  # handed to waiter 0, not put back as free
    assert gate.free == 0
    assert not gate.enter_now()  # a newcomer waits behind the queue
    await asyncio.sleep(0)
    assert served == [0]
    gate.leave()
    await asyncio.sleep(0)
    gate.leave()
    await asyncio.gather(*tasks)
    assert served == [0, 1, 2]
    gate.leave()
    assert (gate.free, len(gate.waiters)) == (1, 0)


async def test_a_cancelled_waiter_keeps_no_place_and_loses_none() -> None:
    gate = Gate(1)
    assert gate.enter_now()
    waiting = asyncio.create_task(gate.wait())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert not gate.waiters
    gate.leave()
    assert gate.free == 1


async def test_a_place_handed_to_a_waiter_cancelled_meanwhile_goes_on_to_the_next() -> None:
    gate = Gate(1)
    assert gate.enter_now()
    first = asyncio.create_task(gate.wait())
    second = asyncio.create_task(gate.wait())
    await asyncio.sleep(0)
    gate.leave()  # handed to ``first``...
    first.cancel()  # ...which is cancelled before it runs again
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 1)  # so ``second`` has it
    assert (gate.free, len(gate.waiters)) == (0, 0)
    gate.leave()
    assert gate.free == 1


async def test_a_wait_that_times_out_holds_no_place() -> None:
    gate = Gate(1)
    assert gate.enter_now()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await gate.wait()
    assert not gate.waiters
    gate.leave()
    assert gate.enter_now()
