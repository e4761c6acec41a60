"""Whether a namespace was ever indexed: what lets a write without indexes skip its one check.

A write without indexes on a generic store first asks "is this key filed under an index?" (its
meta record, ``GenericProvider.maybe_filed``), so that a re-set without indexes takes the key
out of its indexes. In a namespace that was never indexed the answer is always no, and on
memcached the question is half of what a ``set`` costs. So each namespace (each generation of
it) has an **index-use record**:

* ``(NEVER, trusted_from, earlier_trust_ends)``: nothing of this scope was ever filed. A process
  that asked for it at a wall time at or after ``trusted_from`` skips the check for
  ``TRUST_SECONDS`` (by its monotonic clock) from when it asked, then reads it again.
* ``(INDEXED, settled)``: an indexed write began; no process trusts a NEVER of this scope after
  the wall time ``settled`` (``None`` for the instant its writer stamps it).
* missing (never written, evicted, culled): unknown, so writes check.

**The rule.** Process P read NEVER at t0 and skips checks until t0 + TRUST. Were Q to file key K
before then, P's re-set of K without indexes would leave K filed with an unindexed value. So
the first indexed write turns the record to INDEXED, stamps it with the time after that write,
and files nothing until ``settled = stamp + TRUST_SECONDS`` (plus ``CLOCK_MARGIN``); every
other indexed write waits for the same time (long past, after the first second). No one waits
for a NEVER that nobody could have trusted yet: one is trusted only from ``trusted_from``,
``GRACE_SECONDS`` after it was written, so a namespace indexed in its first moments (as most
that use indexes are) is settled at ``earlier_trust_ends``, when trust in any record before it
has run out (nothing to wait for in a new namespace or generation).

**Clocks.** Trust is timed on each process's monotonic clock; ``trusted_from`` and ``settled``
are wall-clock times written by one process and compared by others: exact on one machine, and
safe across machines whose clocks agree within ``CLOCK_MARGIN``.

**Who writes NEVER.** Only where nothing can be filed: a new generation before it is published
(memcached, the file cache; a flush carries the state over, so a namespace that uses indexes
does not wait after each flush); on the database cache, a missing record when the namespace
holds no meta record, under the index guard (``db.py``). LocMem, private to one process, keeps
the state in the process (``locmem.py``): no record, no waiting.

Threads of one process need none of the waiting: an unindexed write takes its ``index_mark``
before it asks, and compares it after it wrote (``generic.py``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final

from agenthub_cache import keys
from agenthub_cache.providers.generations import GENERATION_MAX_AGE

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from django.core.cache.backends.base import BaseCache

NEVER: Final = "never"
INDEXED: Final = "indexed"

#: Seconds a process trusts a NEVER it read: the bound it trusts a generation for, and read
#: with it where there is one.
TRUST_SECONDS: Final = GENERATION_MAX_AGE
#: How far apart the wall clocks of the processes sharing a store may be (they compare times
#: one of them wrote). NTP keeps a network's clocks within milliseconds; one machine has one.
CLOCK_MARGIN: Final = 0.25
#: A new NEVER is trusted only this long after it was written: an indexed write before then
#: replaces a NEVER nobody trusted, and waits for no one.
GRACE_SECONDS: Final = 1.0
#: Seconds an indexed write keeps trying to mark the namespace before it gives up (a
#: ``TimeoutError``: the store is taken for unavailable).
MARK_TIMEOUT: Final = 10.0
#: Seconds between two tries.
MARK_POLL: Final = 0.01


class IndexUseChanged(Exception):
    """The record stopped saying INDEXED under an indexed write (lost and written anew): the
    write is undone and marks it again."""


def new_record(now: float, earlier_trust_ends: float = 0.0) -> tuple[str, float, float]:
    """NEVER, for a scope in which nothing is filed, written at wall time ``now``."""
    return (NEVER, now + GRACE_SECONDS, earlier_trust_ends)


def never_fields(record: Any) -> tuple[float, float] | None:
    """``(trusted_from, earlier_trust_ends)`` of a NEVER record; ``None`` for anything else."""
    if type(record) is tuple and len(record) == 3 and record[0] == NEVER:
        return float(record[1]), float(record[2])
    return None


def is_indexed(record: Any) -> bool:
    return type(record) is tuple and len(record) == 2 and record[0] == INDEXED


def trust_may_last(record: Any, now: float) -> bool:
    """Whether a process may trust a NEVER of this scope at wall time ``now`` (or later):
    ``record`` is a NEVER someone may have trusted, or whose earlier records' trust may still
    run, an INDEXED not yet settled, or missing (a NEVER may have been lost)."""
    never = never_fields(record)
    if never is not None:
        return now + CLOCK_MARGIN >= never[0] or now <= never[1] + CLOCK_MARGIN
    if is_indexed(record):
        return record[1] is None or now <= float(record[1]) + CLOCK_MARGIN
    return True


def carried(record: Any, now: float) -> tuple[Any, ...]:
    """The record a new, empty generation starts with: INDEXED with nothing to wait for if the
    namespace was indexed, else a new NEVER (no earlier record shares its scope)."""
    return (INDEXED, 0.0) if is_indexed(record) else new_record(now)


@dataclass(frozen=True, slots=True)
class Reading:
    """What this process last read of one namespace's record, and what it allows."""

    scope: str | None
    asked: float  # time.monotonic() just before it was read
    record: Any
    trusted_until: float  # monotonic: writes without indexes skip their check until then
    ready_at: float | None  # monotonic: indexed writes may file from then; None: mark it first


def reading_of(scope: str | None, record: Any, asked: float, asked_wall: float) -> Reading:
    trusted_until, ready_at = 0.0, None
    never = never_fields(record)
    if never is not None:
        if asked_wall >= never[0]:
            trusted_until = asked + TRUST_SECONDS
    elif is_indexed(record):
        now, wall = time.monotonic(), time.time()
        settled = record[1]
        if settled is None:  # being stamped: it stopped saying NEVER before this read
            ready_at = now + TRUST_SECONDS + CLOCK_MARGIN
        else:
            ready_at = now + max(0.0, float(settled) + CLOCK_MARGIN - wall)
    return Reading(scope, asked, record, trusted_until, ready_at)


#: ``(store, namespace)`` -> this process's last reading of the namespace's record.
_readings: dict[tuple[str, str], Reading] = {}
_remembering = threading.Lock()


class IndexUse:
    """Mixin of generic providers: the index-use record, read and trusted as described above."""

    namespace: str
    alias: str

    if TYPE_CHECKING:

        @property
        def backend(self) -> BaseCache: ...

        @property
        def store_id(self) -> str: ...

        @property
        def _lock(self) -> threading.RLock: ...

        def stored_key(self, kind: str, *parts: str, scope: str | None) -> str: ...

        def index_guard(self) -> AbstractContextManager[Any]: ...

    @cached_property
    def _index_use_at(self) -> tuple[str, str]:
        return (self.store_id, self.namespace)

    def index_use_key(self, scope: str | None) -> str:
        return self.stored_key(keys.INDEX_USE, scope=scope)

    def never_indexed(self, scope: str | None) -> bool:
        """Whether a write without indexes in ``scope`` may skip "is the key filed?": the
        record said NEVER (and was trusted) when this process read it, less than
        ``TRUST_SECONDS`` ago; read again when older."""
        reading = _readings.get(self._index_use_at)
        now = time.monotonic()
        if reading is None or reading.scope != scope or now - reading.asked >= TRUST_SECONDS:
            reading = self.read_index_use(scope)
        return now < reading.trusted_until

    def index_use_stale(self, scope: str | None) -> bool:
        """Whether the next ``never_indexed`` would read the record (a generation read may
        fetch it in the same request)."""
        reading = _readings.get(self._index_use_at)
        return (
            reading is None
            or reading.scope != scope
            or time.monotonic() - reading.asked >= TRUST_SECONDS
        )

    def read_index_use(self, scope: str | None) -> Reading:
        asked, wall = time.monotonic(), time.time()
        record = self.backend.get(self.index_use_key(scope))
        if record is None:
            record = self.index_use_missing(scope)
        return self.remember_index_use(scope, record, asked, wall)

    def index_use_missing(self, scope: str | None) -> Any:
        """What a missing record is taken for: unknown here (a store that can tell that
        nothing is filed writes a NEVER)."""
        return None

    def remember_index_use(
        self, scope: str | None, record: Any, asked: float, asked_wall: float
    ) -> Reading:
        """Keep ``record``, read at ``asked``, unless this process holds a later reading."""
        reading = reading_of(scope, record, asked, asked_wall)
        with _remembering:
            current = _readings.get(self._index_use_at)
            if current is not None and current.scope == scope and current.asked > asked:
                return current
            _readings[self._index_use_at] = reading
        return reading

    def forget_index_use(self) -> None:
        _readings.pop(self._index_use_at, None)

    def open_index_use(self, scope: str, previous: Any) -> None:
        """Write the record of a new generation ``scope``, before the generation is published
        (nothing can be filed under it yet), carrying over ``previous``, the old one's."""
        self.backend.set(self.index_use_key(scope), carried(previous, time.time()), None)

    def prepare_filing(self, scope: str | None) -> None:
        """Before an indexed write takes the index guard: mark the namespace INDEXED the first
        time, then wait until no process can still trust a NEVER it read (only in the first
        second after the namespace was first indexed, and not at all when nobody could have
        trusted it yet)."""
        reading = _readings.get(self._index_use_at)
        if reading is None or reading.scope != scope or reading.ready_at is None:
            reading = self.read_index_use(scope)
            if reading.ready_at is None:
                reading = self._mark_indexed(scope, reading.record)
        delay = (reading.ready_at or 0.0) - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def _mark_indexed(self, scope: str | None, replaced: Any) -> Reading:
        with self._lock:  # one thread of this process marks it; the others find it marked
            current = _readings.get(self._index_use_at)
            if current is not None and current.scope == scope and current.ready_at is not None:
                return current
            key = self.index_use_key(scope)
            self._write_indexed(key, (INDEXED, None))  # nobody reads NEVER after this
            asked, stamp = time.monotonic(), time.time()  # no earlier than that write
            never = never_fields(replaced)
            if never is not None and stamp + CLOCK_MARGIN < never[0]:  # nobody trusted it
                settled = never[1]
            else:
                settled = stamp + TRUST_SECONDS
            with self.index_guard():
                self.backend.set(key, (INDEXED, settled), None)
            wait = settled + CLOCK_MARGIN - stamp
            reading = Reading(scope, asked, (INDEXED, settled), 0.0, asked + max(0.0, wait))
            with _remembering:
                _readings[self._index_use_at] = reading
            return reading

    def _write_indexed(self, key: str, record: tuple[Any, ...]) -> None:
        """Write ``record`` (an INDEXED one) under the index guard, and read it back, again
        until it is there: Django's database cache drops a write it could not lock for, and
        says nothing (SQLite refuses at once a transaction that read and would then write
        while another writes; the guard's transaction writes first)."""
        deadline = time.monotonic() + MARK_TIMEOUT
        while True:
            with self.index_guard():
                self.backend.set(key, record, None)
            if is_indexed(self.backend.get(key)):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"Cache namespace {self.namespace!r}: the {self.alias!r} cache did not keep "
                    f"the record that marks the namespace indexed within {MARK_TIMEOUT} s."
                )
            time.sleep(MARK_POLL)

    def confirm_indexed(self, scope: str | None) -> None:
        """Inside the index guard, before an indexed write files anything: nothing here (a
        record that says INDEXED stays so in its scope); raises ``IndexUseChanged`` where a
        store may have written a NEVER since."""
