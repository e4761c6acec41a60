"""A set without indexes racing an indexed set of the same key leaves one of them, whole.

The generic providers check "is the key filed?" before an unindexed write, without the index
guard; an indexed set of the same key by another thread could land between the check and the
write, and the key stayed filed under that index with the unindexed value: an index returned
an entry that was re-set without indexes, for as long as it lived. Each round starts the two
sets together from an unfiled key; whichever wins, the entry and its filing must agree (``set_many``
the same). Threads of one process, on every contract backend, each playing both parts in turn.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest
from django.core.cache import caches
from django.db import connections

from agenthub_cache import CacheService

ROUNDS = 100


@pytest.fixture
def fine_switching() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


@pytest.mark.parametrize("write", ["set", "set_many"])
def test_an_unindexed_set_racing_an_indexed_set_never_stays_filed(
    service: CacheService, fine_switching: None, write: str
) -> None:
    """In each round one thread sets the key with an index, once, while the other sets it
    without indexes again and again until the indexed set has returned: its last write
    overlaps the end of the indexed one. The threads swap parts every round."""
    start = threading.Barrier(2)
    filed_done = threading.Event()
    wrong: list[str] = []
    errors: list[BaseException] = []

    def set_plain(i: int) -> None:
        if write == "set":
            service.set("k", f"plain-{i}")
        else:
            service.set_many({"k": f"plain-{i}", "other": i})

    def play(me: int) -> None:
        try:
            for i in range(ROUNDS):
                if me == 0:
                    service.delete("k")  # unfiled at the start of every round
                    filed_done.clear()
                start.wait()
                if (i + me) % 2:
                    service.set("k", f"filed-{i}", indexes={"g": "v"})
                    filed_done.set()
                else:
                    set_plain(i)
                    while not filed_done.is_set():
                        set_plain(i)
                start.wait()
                if me == 0:
                    value = service.get("k")
                    filed = service.get_by_index("g", "v")
                    if filed != ({"k": value} if value == f"filed-{i}" else {}):
                        wrong.append(f"round {i}: value {value!r}, filed {filed!r}")
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)
            start.abort()
        finally:
            caches.close_all()
            connections.close_all()

    threads = [threading.Thread(target=play, args=(me,)) for me in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert wrong == [], f"{len(wrong)} of {ROUNDS} rounds: {wrong[:3]}"
