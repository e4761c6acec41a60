"""``Gate``: at most ``limit`` holders at once on one event loop; the others wait in turn.

What ``asyncio.Semaphore`` does for the async cluster client's ``max_connections``, with an
entry that costs nothing while a place is free: ``free`` and ``waiters`` are plain attributes,
so a caller takes a place with a test and a decrement, no coroutine (``asyncio.Semaphore``'s
``locked()`` check, ``acquire()`` coroutine and ``release()`` cost ~2 µs of client CPU per
command in the benchmark's I/O loop). A place given back goes straight to the longest waiter,
so a newcomer never overtakes the queue; a waiter cancelled (or timed out) loses no place and
keeps none.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque


class Gate:
    """At most ``limit`` holders at once; the rest wait, first come first served."""

    __slots__ = ("free", "waiters")

    def __init__(self, limit: int) -> None:
        #: Places nobody holds. While anyone waits it is 0 (a place given back is handed on).
        self.free = limit
        self.waiters: deque[asyncio.Future[None]] = deque()

    def enter_now(self) -> bool:
        """Take a place if one is free and nobody waits for one; ``False`` otherwise."""
        if self.free > 0 and not self.waiters:
            self.free -= 1
            return True
        return False

    async def wait(self) -> None:
        """Wait for a place (``enter_now`` said no). Cancelled, it holds none afterwards."""
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.leave()  # handed a place just as it was cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):  # leave() may have dropped it already
                    self.waiters.remove(waiter)
            raise

    def leave(self) -> None:
        """Give a place back: to the longest waiter still waiting, else to ``free``."""
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1
