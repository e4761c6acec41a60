"""How the Redis provider flushes a namespace: list its keys, delete them batch by batch.

``clear`` is a generator of steps (``driver``), run by the sync or async driver, on one
server or on the cluster node that owns a hash tag's slot; the keys come from a listing
(``ScanListing`` by default, ``SlotListing`` on a cluster).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from agenthub_cache import keys
from agenthub_cache.providers.redis.driver import Batch, Cmd, Lua, Steps, chunks
from agenthub_cache.providers.redis.layout import KeyLayout
from agenthub_cache.providers.redis.scripts import CHUNK
from agenthub_cache.providers.redis.steps import SCAN_COUNT, filed_call, text


class ScanListing:
    """How ``clear`` finds keys by default: SCAN MATCH over the server, cursor by cursor."""

    def __init__(self, match: str) -> None:
        self.match, self.cursor = match, 0

    def ask(self, kept: int) -> Cmd:
        return Cmd(("SCAN", self.cursor, "MATCH", self.match, "COUNT", SCAN_COUNT))

    def found(self, reply: Any) -> tuple[list[bytes], bool]:
        """The keys of a reply, and whether to ask again."""
        self.cursor, batch = reply
        self.cursor = int(self.cursor)
        return list(batch), self.cursor != 0


#: Keys of others in a namespace's slot past which ``clear`` goes back to SCAN (each
#: GETKEYSINSLOT call would return them all again).
SLOT_KEPT_LIMIT = 10 * SCAN_COUNT


class SlotListing:
    """Keys by ``CLUSTER GETKEYSINSLOT`` (a namespace's hash tag names its slot): only that
    slot's keys are read, where a SCAN walks the whole node. It has no cursor: asked again
    after each batch's deletes, it returns the slot's keys that are left, those the flush
    keeps (index sets, drained after the batch; another tag's keys in the same slot;
    someone else's) first; so it asks for those plus a batch, until the slot has no more."""

    def __init__(self, slot: int) -> None:
        self.slot, self.asked = slot, SCAN_COUNT

    def ask(self, kept: int) -> Cmd:
        self.asked = kept + SCAN_COUNT
        return Cmd(("CLUSTER", "GETKEYSINSLOT", self.slot, self.asked))

    def found(self, reply: Any) -> tuple[list[bytes], bool]:
        batch = list(reply)
        return batch, len(batch) >= self.asked


Listing = ScanListing | SlotListing


def clear(
    layout: KeyLayout, progress: Callable[[int], None] | None, listing: Listing | None = None
) -> Steps[int]:
    """List the namespace and delete what it finds, each batch sent with the next listing
    call (SCAN by default; ``SlotListing`` on a cluster).

    Never KEYS, FLUSHDB or a long script: the server serves other clients between calls.
    Entries (and metas) found go through the ``delete`` script, which files each entry out of
    its indexes as it goes; an index set found is drained by deleting the entries still filed
    in it, never UNLINKed whole: a write racing the flush may have filed an entry there after
    SCAN passed that entry's key, and it must not survive unreachable from its index. Locks
    and the rest are UNLINKed. Returns how many entries were deleted.
    """
    listing = listing or ScanListing(layout.match())
    prefix = layout.listed_prefix()
    entry_prefix, meta_prefix = f"{prefix}{keys.ENTRY}:", f"{prefix}{keys.META}:"
    member_at = len(entry_prefix.encode())  # entry and meta prefixes are equally long
    entry, meta, index = (kind.encode() for kind in (keys.ENTRY, keys.META, keys.INDEX))
    kind_of = layout.kind_of
    deleted = 0
    found, more = listing.found((yield listing.ask(0)))
    while True:
        members: dict[bytes, None] = {}
        indexes, others, removed = [], [], 0
        for stored in found:
            kind = kind_of(stored)
            if kind in (entry, meta):
                members[stored[member_at:]] = None
                removed += 1
            elif kind == index:
                indexes.append(stored)
            elif kind is not None:  # locks; a key the app cannot have written stays
                others.append(stored)
                removed += 1
        calls: list[Cmd | Lua] = [
            _delete_call(entry_prefix.encode(), meta_prefix.encode(), group)
            for group in chunks(list(members), SCAN_COUNT)
        ]
        deletes = len(calls)
        if others:
            calls.append(Cmd(("UNLINK", *others)))
        kept = len(found) - removed  # still there when the listing is asked again
        if more and isinstance(listing, SlotListing) and kept > SLOT_KEPT_LIMIT:
            listing = ScanListing(layout.match())  # a slot crowded with others' keys
        if more:
            calls.append(listing.ask(kept))
        replies: list[Any] = []
        if len(calls) == 1:
            replies = [(yield calls[0])]
        elif calls:
            replies = yield Batch(calls)
        deleted += sum(int(reply) for reply in replies[:deletes])
        for idx in indexes:
            deleted += yield from _drain_index(layout, idx)
        if progress is not None:
            progress(deleted)
        if not more:
            return deleted
        found, more = listing.found(replies[-1])


def _delete_call(entry_prefix: bytes, meta_prefix: bytes, members: Sequence[bytes]) -> Lua:
    """The ``delete`` script for these members (their entry and meta keys in KEYS)."""
    stored: list[bytes] = []
    for member in members:
        stored += (entry_prefix + member, meta_prefix + member)
    return Lua("delete", stored, list(members))


#: Most rounds ``clear`` spends emptying one index set that writers keep filing into.
DRAIN_ROUNDS = 1000


def _drain_index(layout: KeyLayout, idx: bytes) -> Steps[int]:
    """Delete the entries filed in one index set, a window of members per script, until it
    is empty: entries still filed here are deleted (and filed out of their other indexes),
    the other members dropped (``delete_filed``)."""
    name, deleted, index = layout.index_name_of(idx), 0, idx.decode()
    for _ in range(DRAIN_ROUNDS):
        members = [text(m) for m in (yield Cmd(("ZRANGE", idx, 0, CHUNK - 1)))]
        if not members:
            break
        deleted += int((yield filed_call(layout, "delete_filed", index, name, members)))
    return deleted
