"""Several step generators on one server at once: a round trip per step, not per generator.

A namespace spread over N hash tags reads an index with N copies of the same steps, one per
tag. ``run_together`` drives the copies whose tags live on one node in lockstep: each round,
every copy's next step goes into one pipeline, so N copies of a 2-round-trip read take 2
round trips. An atomic batch goes into that pipeline as ``MULTI`` ... ``EXEC`` (it stays
atomic: Redis queues what follows MULTI on that connection alone). A step that cannot share
a pipeline (a ``Sleep``, or an atomic batch whose replies redis-py would post-process) makes
its copy finish on its own with the usual driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agenthub_cache.providers.redis.connections import Connection
from agenthub_cache.providers.redis.driver import (
    Batch,
    Cmd,
    Lua,
    Step,
    Steps,
    again,
    command,
    queue,
    run,
)

#: Commands whose reply inside EXEC is what redis-py returns for them outside it (no reply
#: callback changes their shape), so an atomic batch of these can be inlined.
_RAW_SAFE = frozenset({"MGET", "GET", "ZRANGE", "ZRANGEBYSCORE", "EXISTS", "ZCARD"})


def _inlineable(step: Step) -> bool:
    if isinstance(step, Cmd | Lua):
        return True
    if isinstance(step, Batch):
        return all(
            isinstance(call, Cmd) and str(call.args[0]).upper() in _RAW_SAFE for call in step.calls
        ) or (not step.atomic and all(isinstance(call, Cmd | Lua) for call in step.calls))
    return False


def run_together(connection: Connection, all_steps: Sequence[Steps[Any]]) -> list[Any]:
    """Drive every generator of ``all_steps`` on ``connection``; their results in order."""
    results: list[Any] = [None] * len(all_steps)
    pending: dict[int, Step] = {}
    for n, steps in enumerate(all_steps):
        try:
            pending[n] = next(steps)
        except StopIteration as done:
            results[n] = done.value
    while pending:
        for n in [n for n, step in pending.items() if not _inlineable(step)]:
            results[n] = run(connection, _resumed(pending.pop(n), all_steps[n]))
        if not pending:
            break
        replies = _send(connection, list(pending.values()))
        for (n, _), reply in zip(list(pending.items()), replies, strict=True):
            steps = all_steps[n]
            try:
                if isinstance(reply, Exception):
                    pending[n] = steps.throw(reply)
                else:
                    pending[n] = steps.send(reply)
            except StopIteration as done:
                del pending[n]
                results[n] = done.value
    return results


def _send(connection: Connection, steps: list[Step]) -> list[Any]:
    """One pipeline for all ``steps``; each one's reply (an exception object if it failed)."""
    pipe = connection.client.pipeline(transaction=False)
    spans: list[tuple[int, int, Step]] = []
    for step in steps:
        start = len(pipe.command_stack)
        if isinstance(step, Cmd | Lua):
            queue(pipe, command(step, connection.scripts))
        elif isinstance(step, Batch):
            if step.atomic:
                queue(pipe, ("MULTI",))
            for call in step.calls:
                queue(pipe, command(call, connection.scripts))
            if step.atomic:
                queue(pipe, ("EXEC",))
        spans.append((start, len(pipe.command_stack), step))
    raw = pipe.execute(raise_on_error=False)
    replies: list[Any] = []
    for start, end, step in spans:
        if isinstance(step, Batch) and step.atomic:
            replies.append(raw[end - 1])
        elif isinstance(step, Batch):
            replies.append(
                [_rerun(connection, c, r) for c, r in zip(step.calls, raw[start:end], strict=True)]
            )
        else:
            assert isinstance(step, Cmd | Lua)
            replies.append(_rerun(connection, step, raw[start]))
    return replies


def _rerun(connection: Connection, call: Cmd | Lua, reply: Any) -> Any:
    """A script the server lost (SCRIPT FLUSH, restart), or that asked for more index keys
    declared, is run again by itself (``driver.again``)."""
    rerun = again(call, reply)
    if rerun is None:
        return reply
    return connection.run_script(rerun.script, rerun.keys, rerun.args)


def _resumed(first: Step, steps: Steps[Any]) -> Steps[Any]:
    """``steps`` again, from the step it already yielded (``first``)."""
    step = first
    while True:
        try:
            reply = yield step
        except BaseException as exc:
            try:
                step = steps.throw(exc)
            except StopIteration as done:
                return done.value
            continue
        try:
            step = steps.send(reply)
        except StopIteration as done:
            return done.value
