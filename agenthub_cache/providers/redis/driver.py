"""The steps' vocabulary and the drivers that run them on a Redis server.

An operation of several round trips is a generator that yields the commands it needs
(``Cmd``, ``Lua``, a pipelined ``Batch``, a lock to ``Take`` or ``Free``, or a ``Sleep``) and
receives their replies; ``run``
drives it on the sync client, ``arun`` on the event loop's ``redis.asyncio`` client. So the
sync and async twins share every line of logic, and neither hops threads. Errors from a
command are thrown back into the generator, so its ``finally`` blocks (releasing a guard)
still talk to the server. The operations themselves are in ``steps``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from redis.commands.core import AsyncScript, Script
from redis.exceptions import NoScriptError

from agenthub_cache.providers.redis import lock
from agenthub_cache.providers.redis.connections import AsyncHandle, Connection
from agenthub_cache.providers.redis.declared import declared_again

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Cmd:
    args: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Lua:
    script: str
    keys: Sequence[Any]
    args: Sequence[Any]


@dataclass(frozen=True, slots=True)
class Batch:
    """Commands sent together in one pipeline; replies as a list. ``atomic`` wraps them in
    MULTI/EXEC, so they run back to back with no other client's command in between (not for
    ``declared.READS_FILINGS``: a call of those may have to be sent again, which EXEC cannot)."""

    calls: Sequence[Cmd | Lua]
    atomic: bool = False


@dataclass(frozen=True, slots=True)
class Take:
    """Take the lock ``key`` with ``token`` for ``seconds`` if free (redis-py's ``Lock``, as
    every lock of the provider: ``lock``); the reply: taken?"""

    key: str
    token: str
    seconds: float


@dataclass(frozen=True, slots=True)
class Free:
    """Free the lock ``key`` if ``token`` still holds it."""

    key: str
    token: str


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


Step = Cmd | Lua | Batch | Take | Free | Sleep
Steps = Generator[Step, Any, T]


# -- drivers ----------------------------------------------------------------------------------


def run(connection: Connection, steps: Steps[T]) -> T:
    """Drive ``steps`` on the sync client."""
    client, scripts = connection.client, connection.scripts
    execute: Callable[..., Any] = client.execute_command
    try:
        step = next(steps)
        while True:
            try:
                if isinstance(step, Cmd):
                    reply = execute(*step.args)
                elif isinstance(step, Lua):
                    reply = connection.run_script(step.script, step.keys, step.args)
                elif isinstance(step, Batch) and not step.atomic:
                    pipe = client.pipeline(transaction=False)
                    for call in step.calls:
                        queue(pipe, command(call, scripts))
                    replies = pipe.execute(raise_on_error=False)
                    for n, call in _unloaded(step, replies):  # after a SCRIPT FLUSH or restart
                        replies[n] = connection.run_script(call.script, call.keys, call.args)
                    reply = replies
                elif isinstance(step, Batch):
                    pipe = client.pipeline(transaction=True)
                    for call in step.calls:
                        if isinstance(call, Cmd):
                            queue(pipe, call.args)
                        else:
                            scripts[call.script](call.keys, call.args, client=pipe)
                    reply = pipe.execute()
                elif isinstance(step, Take):
                    reply = lock.take(client, step.key, step.token, step.seconds)
                elif isinstance(step, Free):
                    lock.free(client, step.key, step.token)
                    reply = None
                else:
                    time.sleep(step.seconds)
                    reply = None
            except BaseException as exc:  # cancellation too: let the steps' finally run
                step = steps.throw(exc)
            else:
                step = steps.send(reply)
    except StopIteration as done:
        result: T = done.value
        return result


async def arun(handle: AsyncHandle, steps: Steps[T]) -> T:
    """Drive ``steps`` on this event loop's ``redis.asyncio`` client."""
    client, scripts = handle.client, handle.scripts
    execute: Callable[..., Awaitable[Any]] = client.execute_command
    try:
        step = next(steps)
        while True:
            try:
                if isinstance(step, Cmd):
                    reply = await execute(*step.args)
                elif isinstance(step, Lua):
                    reply = await handle.run_script(step.script, step.keys, step.args)
                elif isinstance(step, Batch) and not step.atomic:
                    pipe = client.pipeline(transaction=False)
                    for call in step.calls:
                        queue(pipe, command(call, scripts))
                    replies = await pipe.execute(raise_on_error=False)
                    for n, call in _unloaded(step, replies):
                        replies[n] = await handle.run_script(call.script, call.keys, call.args)
                    reply = replies
                elif isinstance(step, Batch):
                    pipe = client.pipeline(transaction=True)
                    for call in step.calls:
                        if isinstance(call, Cmd):
                            queue(pipe, call.args)
                        else:
                            await scripts[call.script](call.keys, call.args, client=pipe)
                    reply = await pipe.execute()
                elif isinstance(step, Take):
                    reply = await lock.atake(client, step.key, step.token, step.seconds)
                elif isinstance(step, Free):
                    await lock.afree(client, step.key, step.token)
                    reply = None
                else:
                    await asyncio.sleep(step.seconds)
                    reply = None
            except BaseException as exc:  # cancellation too: let the steps' finally run
                step = steps.throw(exc)
            else:
                step = steps.send(reply)
    except StopIteration as done:
        result: T = done.value
        return result


def queue(pipe: Any, args: tuple[Any, ...]) -> None:
    """Add a command to a (sync or async) pipeline; it only buffers, so it never awaits."""
    pipe.execute_command(*args)


def command(call: Cmd | Lua, scripts: Mapping[str, Script | AsyncScript]) -> tuple[Any, ...]:
    """A pipelined call as one command: a script is a bare EVALSHA.

    Not through ``Script.__call__``, which makes the pipeline send SCRIPT EXISTS first: one
    more round trip for every batch of a flush. A script the server lost is run again by
    itself (``_unloaded``); only ``atomic`` batches, whose calls cannot be re-run one by one,
    keep that check.
    """
    if isinstance(call, Cmd):
        return call.args
    return ("EVALSHA", scripts[call.script].sha, len(call.keys), *call.keys, *call.args)


def _unloaded(step: Batch, replies: list[Any]) -> list[tuple[int, Lua]]:
    """The scripts of a non-atomic batch to run again by themselves (the batch's other calls
    ran): those that failed as not loaded, and those that asked for more index keys declared
    (``again``); any other error reply is raised, as ``execute()`` would have."""
    unloaded = []
    for n, (call, reply) in enumerate(zip(step.calls, replies, strict=True)):
        rerun = again(call, reply)
        if rerun is not None:
            unloaded.append((n, rerun))
        elif isinstance(reply, Exception):
            raise reply
    return unloaded


def again(call: Cmd | Lua, reply: Any) -> Lua | None:
    """A pipelined script call to send again by itself, or ``None`` if ``reply`` is its answer:
    a script the server lost (SCRIPT FLUSH, restart), or one that asked for index keys its
    call did not declare (sent with them declared: ``declared.declared_again``)."""
    if not isinstance(call, Lua):
        return None
    if isinstance(reply, NoScriptError):
        return call
    more = declared_again(call.script, call.keys, reply, 0)
    return None if more is None else Lua(call.script, more, call.args)


def chunks(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    """``items`` in slices of at most ``size``: a job split into bounded calls."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
