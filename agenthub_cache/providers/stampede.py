"""Stampede-protected ``get_or_set``: the one algorithm, for every store.

``get_or_set`` is a generator that does no I/O: it yields what it needs done (``Read`` the
entry, ``TakeGuard``, ``Store``, ``Release`` the guard, ``Sleep``) and receives each result.
Each provider performs those actions with its own I/O: the generic provider with its
backend's get/add/set and a ``CacheLock`` guard (``drive``); the Redis provider as commands
and Lua, run on its sync or async client by its step drivers (``translate``). An error of
an action is thrown back into the generator, so a guard taken is still released.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

S = TypeVar("S")

#: What ``Read`` returns for a missing entry (``None`` may be a stored value).
MISSING: Any = object()
#: Least life of the guard, so a computer's guard outlives the round trips around it.
GUARD_SECONDS = 1.0
#: A waiter polls after 5 ms, then twice as long each time, up to every 50 ms: a quick
#: computation is seen at once, a slow one costs about 20 reads a second per waiter.
FIRST_POLL, LAST_POLL = 0.005, 0.05


@dataclass(frozen=True, slots=True)
class Read:
    """Read the entry; the reply is its value, or ``MISSING``."""


@dataclass(frozen=True, slots=True)
class TakeGuard:
    """Take the key's guard if free, without waiting, for ``seconds``; the reply: taken?"""

    seconds: float


@dataclass(frozen=True, slots=True)
class Store:
    """Write ``value`` (only if the entry is still absent: ``only_if_absent``)."""

    value: Any
    only_if_absent: bool


@dataclass(frozen=True, slots=True)
class Release:
    """Release the guard taken (only if it is still ours: it may have expired)."""


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


Action = Read | TakeGuard | Store | Release | Sleep
Plan = Generator[Action, Any, Any]
READ, RELEASE = Read(), Release()


def get_or_set(default: Any, wait: float) -> Plan:
    """One caller computes a missing value under a short guard; the others poll for it.

    Waiters give up after ``wait`` seconds and compute it themselves (storing it only if
    still absent), so a crashed computer delays the others by at most ``wait``. What
    ``default`` raises propagates, after the guard is released.
    """
    value = yield READ
    if value is not MISSING:
        return value
    if (yield TakeGuard(max(wait, GUARD_SECONDS))):
        try:
            value = yield READ
            if value is MISSING:
                value = resolve_default(default)
                yield Store(value, only_if_absent=False)
            return value
        finally:
            yield RELEASE
    deadline, delay = time.monotonic() + wait, FIRST_POLL
    while time.monotonic() < deadline:
        yield Sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, LAST_POLL)
        value = yield READ
        if value is not MISSING:
            return value
    value = resolve_default(default)
    yield Store(value, only_if_absent=True)
    return value


def resolve_default(default: Any) -> Any:
    return default() if callable(default) else default


def drive(plan: Plan, perform: Callable[[Action], Any]) -> Any:
    """Run ``plan``, each action done by ``perform``, which returns its result."""
    try:
        action = next(plan)
        while True:
            try:
                reply = perform(action)
            except BaseException as exc:  # let the plan's finally release the guard
                action = plan.throw(exc)
            else:
                action = plan.send(reply)
    except StopIteration as done:
        return done.value


def translate(
    plan: Plan, perform: Callable[[Action], Generator[S, Any, Any]]
) -> Generator[S, Any, Any]:
    """``plan`` as the steps of another sans-IO driver: ``perform(action)`` yields the steps
    that do one action and returns its result."""
    try:
        action = next(plan)
        while True:
            try:
                reply = yield from perform(action)
            except BaseException as exc:  # cancellation too: let the plan's finally run
                action = plan.throw(exc)
            else:
                action = plan.send(reply)
    except StopIteration as done:
        return done.value
