"""Operations of the Redis provider that take more than one round trip, written once.

Each is a generator of steps (``driver``: ``Cmd``, ``Lua``, ``Batch``, ``Sleep``), run by the
sync or the async driver: listing and counting a namespace, its stats, reading and deleting
by index, pruning, and ``get_or_set`` (the shared ``stampede`` algorithm, its actions spelled
as Redis commands). Flushing is in ``flush``.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

from redis.exceptions import OutOfMemoryError, ResponseError

from agenthub_cache import keys
from agenthub_cache.providers import stampede
from agenthub_cache.providers.redis.driver import Batch, Cmd, Free, Lua, Sleep, Steps, Take, chunks
from agenthub_cache.providers.redis.layout import KeyLayout, escape
from agenthub_cache.providers.redis.scripts import CHUNK

#: SCAN's COUNT hint: ~1000 keys examined per call keeps each call well under a millisecond.
SCAN_COUNT = 1000
#: Most keys per MGET when reading an index.
MGET_CHUNK = 10_000
#: How many keys ``stats()`` samples with MEMORY USAGE.
MEMORY_SAMPLES = 64


def text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


# -- listing ----------------------------------------------------------------------------------


def scan(match: str) -> Steps[list[bytes]]:
    """Every key matching ``match``, deduplicated (SCAN may repeat keys while rehashing)."""
    found: dict[bytes, None] = {}
    cursor = 0
    while True:
        cursor, batch = yield Cmd(("SCAN", cursor, "MATCH", match, "COUNT", SCAN_COUNT))
        found.update(dict.fromkeys(batch))
        if cursor == 0:
            return list(found)


def count(layout: KeyLayout) -> Steps[int]:
    entry = keys.ENTRY.encode()
    found = yield from scan(layout.match(f"{keys.ENTRY}:"))
    return sum(1 for stored in found if layout.kind_of(stored) == entry)


def stats(layout: KeyLayout, index_values: bool = False) -> Steps[dict[str, Any]]:
    """Entries and indexes by SCAN; memory from MEMORY USAGE of a random sample of keys.

    ``index_values``: also return the ``(name, value)`` suffixes of the index keys found
    (``"index_values"``, a set), so that a namespace spread over several hash tags, one index
    set per tag, counts each index value once.
    """
    kind_by_key = {k: layout.kind_of(k) for k in (yield from scan(layout.match()))}
    stored = [k for k, kind in kind_by_key.items() if kind is not None]  # the app's own keys
    kinds = [kind_by_key[k] for k in stored]
    sample = random.sample(stored, min(MEMORY_SAMPLES, len(stored)))
    sizes = (yield Batch([Cmd(("MEMORY USAGE", k)) for k in sample])) if sample else []
    known = [int(size) for size in sizes if size is not None]
    memory = round(sum(known) / len(known) * len(stored)) if known else 0
    found: dict[str, Any] = {
        "entries": kinds.count(keys.ENTRY.encode()),
        "indexes": kinds.count(keys.INDEX.encode()),
        "index_names": sorted(
            {
                layout.index_name_of(k)
                for k, kind in zip(stored, kinds, strict=True)
                if kind == keys.INDEX.encode()
            }
        ),
        "memory_bytes": memory,
        "memory_sampled_keys": len(known),
        "stored_keys": len(stored),
    }
    if index_values:
        cut = len(layout.listed_prefix().encode())
        found["index_values"] = {k[cut:] for k in stored if kind_by_key[k] == keys.INDEX.encode()}
    return found


# -- indexes ----------------------------------------------------------------------------------


#: How far behind the server's clock ours may be before ``live_entries`` misses members
#: (the first read filters by our clock; the exact cut is by the server's, in the snapshot).
CLOCK_SKEW_MS = 300_000


def live_entries(layout: KeyLayout, name: str, value: str) -> Steps[tuple[list[str], list[Any]]]:
    """``(keys, stored values)`` of the entries filed under (name, value) now; ``None`` for
    a value that must not be returned.

    Two round trips, values never copied through Lua: first the candidate members, then one
    MULTI/EXEC snapshot of their values beside the members filed here at that instant. So an
    entry re-filed, deleted or expired between the two reads is never returned under this
    value. Up to ``MGET_CHUNK`` members the snapshot re-reads the index (its reply is cheaper
    than sending every member again); a larger index is read per chunk, each snapshot checking
    the chunk's scores with ZMSCORE against the server's TIME. Servers without ZMSCORE (Redis
    < 6.2), and full ones, get the same guarantee from one script.
    """
    idx = layout.index(name, value)
    since = int(time.time() * 1000) - CLOCK_SKEW_MS
    members: list[bytes] = yield Cmd(("ZRANGEBYSCORE", idx, since, "+inf"))
    if not members:
        return [], []
    try:
        if len(members) <= MGET_CHUNK:
            values = yield from _snapshot_whole(layout, idx, since, members)
        else:
            values = yield from _snapshot_by_chunk(layout, idx, members)
    except ResponseError as exc:
        # Old servers lack ZMSCORE; a full one (noeviction) queues nothing in MULTI, not even
        # reads: the script takes the same snapshot without a transaction.
        # (redis-py 6.x's async pipeline drops the server's message, "unknown command", and
        # keeps only the command: an error naming ZMSCORE here is that one.)
        message = str(exc).lower()
        unknown = "unknown command" in message or "(zmscore " in message
        if not (unknown or isinstance(exc, OutOfMemoryError)):
            raise
        return (yield from _live_entries_by_script(layout, idx, members))
    return keys.unescape_many(members), values


def _snapshot_whole(
    layout: KeyLayout, idx: str, since: int, members: list[bytes]
) -> Steps[list[Any]]:
    """The members' values beside the index re-read in one MULTI: a member filed here now is
    live (its entry expires when its score says, and an expired entry has no value)."""
    stored, filed = yield Batch(
        [Cmd(("MGET", *layout.entries(members))), Cmd(("ZRANGEBYSCORE", idx, since, "+inf"))],
        atomic=True,
    )
    still = set(filed)
    return [raw if member in still else None for member, raw in zip(members, stored, strict=True)]


def _snapshot_by_chunk(layout: KeyLayout, idx: str, members: list[bytes]) -> Steps[list[Any]]:
    """Per chunk, its values beside its scores and the server's clock in one MULTI."""
    values: list[Any] = []
    for group in chunks(members, MGET_CHUNK):
        (seconds, micros), stored, scores = yield Batch(
            [
                Cmd(("TIME",)),
                Cmd(("MGET", *layout.entries(list(group)))),
                Cmd(("ZMSCORE", idx, *group)),
            ],
            atomic=True,
        )
        now = seconds * 1000 + micros // 1000
        values += [
            raw if score is not None and score > now else None
            for raw, score in zip(stored, scores, strict=True)
        ]
    return values


def _live_entries_by_script(
    layout: KeyLayout, idx: str, members: list[bytes]
) -> Steps[tuple[list[str], list[Any]]]:
    """The snapshot of ``_snapshot_whole`` taken by a script, a chunk of candidates per call."""
    found, values = [], []
    for group in chunks(members, CHUNK):
        group = list(group)
        flat: list[bytes] = yield Lua("live_entries", [idx, *layout.entries(group)], group)
        found += flat[0::2]
        values += flat[1::2]
    return keys.unescape_many(found), values


def filed_call(layout: KeyLayout, script: str, idx: str, name: str, group: Sequence[str]) -> Lua:
    stored: list[str] = [idx]
    for member in group:
        stored += (layout.entry(member), layout.meta(member))
    return Lua(script, stored, [name, *group])


def delete_by_index(layout: KeyLayout, name: str, value: str) -> Steps[int]:
    """Delete the entries still filed under (name, value), a bounded chunk per script."""
    idx = layout.index(name, value)
    members = [text(m) for m in (yield Cmd(("ZRANGE", idx, 0, -1)))]
    deleted = 0
    for group in chunks(members, CHUNK):
        deleted += int((yield filed_call(layout, "delete_filed", idx, name, group)))
    return deleted


def prune(layout: KeyLayout) -> Steps[int]:
    """Drop expired members by score, then re-check the rest against entries and metas."""
    dropped = 0
    index = keys.INDEX.encode()
    for idx_raw in (yield from scan(layout.match(f"{keys.INDEX}:"))):
        if layout.kind_of(idx_raw) != index:
            continue  # not an index the app wrote
        idx, name = idx_raw.decode(), layout.index_name_of(idx_raw)
        dropped += int((yield Lua("prune_expired", [idx], [])))
        members = [text(m) for m in (yield Cmd(("ZRANGE", idx, 0, -1)))]
        for group in chunks(members, CHUNK):
            dropped += int((yield filed_call(layout, "prune_members", idx, name, group)))
    return dropped


# -- get_or_set -------------------------------------------------------------------------------


def get_or_set(
    layout: KeyLayout,
    key: str,
    default: Any,
    wait: float,
    decode: Callable[[Any], Any],
    store: Callable[[Any, bool], Lua],
) -> Steps[Any]:
    """``stampede.get_or_set`` in Redis commands: the entry read by GET and written by the
    ``set`` script (``store``), the guard a lock key taken and freed with a random token by
    redis-py's ``Lock`` (``Take``/``Free``: the provider's one lock, as ``service.lock()``)."""
    entry = layout.entry(escape(key))
    guard, token = layout.lock("get_or_set", key), secrets.token_hex(8)

    def perform(action: stampede.Action) -> Steps[Any]:
        if isinstance(action, stampede.Read):
            raw = yield Cmd(("GET", entry))
            return stampede.MISSING if raw is None else decode(raw)
        if isinstance(action, stampede.TakeGuard):
            return bool((yield Take(guard, token, action.seconds)))
        if isinstance(action, stampede.Store):
            yield store(action.value, action.only_if_absent)
        elif isinstance(action, stampede.Release):
            yield Free(guard, token)
        else:
            yield Sleep(action.seconds)
        return None

    return stampede.translate(stampede.get_or_set(default, wait), perform)
