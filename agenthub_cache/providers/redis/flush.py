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


#: Most index sets one flush remembers to look at again once its listing is done.
RECHECKED_INDEXES = 100_000


def clear(
    layout: KeyLayout, progress: Callable[[int], None] | None, listing: Listing | None = None
) -> Steps[int]:
    """List the namespace and delete what it finds, each batch sent with the next listing
    call (SCAN by default; ``SlotListing`` on a cluster). Returns how many entries were
    deleted.

    Never KEYS, FLUSHDB or a long script: the server serves other clients between calls.

    * Entry keys are UNLINKed as listed, like a raw SCAN + UNLINK: no script, nothing sent
      but the keys. An entry's index memberships are never read from its entry key but from
      its meta hash, which is left in place for its own turn.
    * A meta found goes through the ``delete`` script: its entry is deleted and filed out of
      the indexes the meta names. So the filings of an entry are dropped only together with
      its meta, and a later write of the key still finds and undoes them.
    * An index set found is drained (never UNLINKed whole): the entries still filed in it are
      deleted (``delete_filed``), so an entry filed there by a write racing the flush, after
      the listing passed that entry's keys, cannot survive unreachable from its index. The
      drained index sets are looked at again once the listing is done, and drained again if
      a racing write filed something in them meanwhile.
    * Locks are UNLINKed; a key under the prefix with a shape the app never writes stays.

    What a flush racing indexed writes may leave: an entry written during the flush under an
    index value that did not exist when the flush started (or past ``RECHECKED_INDEXES``),
    whose entry key was listed after its meta and that index set had been passed, loses its
    entry but keeps its meta and its membership: never returned by a read (a member is
    returned only with its value), undone by a later write of the key, reclaimed by ``prune``
    or when the deleted entry would have expired.
    """
    listing = listing or ScanListing(layout.match())
    prefix = layout.listed_prefix()
    entry_prefix = f"{prefix}{keys.ENTRY}:".encode()
    meta_prefix = f"{prefix}{keys.META}:".encode()
    member_at = len(entry_prefix)  # entry and meta prefixes are equally long
    entry, meta, index = (kind.encode() for kind in (keys.ENTRY, keys.META, keys.INDEX))
    kind_of, all_entries = layout.kind_of, layout.all_entries
    drained: dict[bytes, None] = {}
    deleted = 0
    found, more = listing.found((yield listing.ask(0)))
    while True:
        entries: list[bytes] = []
        metas: list[bytes] = []  # members whose meta was listed
        indexes: list[bytes] = []
        others: list[bytes] = []
        if all_entries(found):  # the common batch: one pass over it, no regex per key
            entries = found
        else:
            for stored in found:
                kind = kind_of(stored)
                if kind == entry:
                    entries.append(stored)
                elif kind == meta:
                    metas.append(stored[member_at:])
                elif kind == index:
                    indexes.append(stored)
                elif kind is not None:  # locks; a key the app cannot have written stays
                    others.append(stored)
        calls: list[Cmd | Lua] = [Cmd(("UNLINK", *group)) for group in chunks(entries, SCAN_COUNT)]
        calls += [
            _delete_call(entry_prefix, meta_prefix, group) for group in chunks(metas, SCAN_COUNT)
        ]
        deletes = len(calls)
        if others:
            calls.append(Cmd(("UNLINK", *others)))
        kept = len(found) - len(entries) - len(metas) - len(others)  # listed again by a SlotListing
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
            if len(drained) < RECHECKED_INDEXES:
                drained[idx] = None
        if not more:
            deleted += yield from _drain_again(layout, list(drained))
        if progress is not None:
            progress(deleted)
        if not more:
            return deleted
        found, more = listing.found(replies[-1])


def _drain_again(layout: KeyLayout, drained: list[bytes]) -> Steps[int]:
    """Drain again the index sets of ``drained`` that a racing write filed entries in since
    (an index set exists only while it has members)."""
    deleted = 0
    for group in chunks(drained, SCAN_COUNT):
        there = yield Batch([Cmd(("EXISTS", idx)) for idx in group])
        for idx, exists in zip(group, there, strict=True):
            if exists:
                deleted += yield from _drain_index(layout, idx)
    return deleted


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
