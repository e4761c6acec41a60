"""An index read never sees an entry's new value under the filing of its old one.

An entry filed under an index and then overwritten without indexes must leave the index in
the same step, as the reader sees it. The generic providers check "is it filed?" before the
write and take the index guard for both the write and the unfiling when it is; written first
and checked after, an index read in between returned the new, unindexed value as a member of
the old index (issue 13). Redis does both in one script. Threads of one process, on every
contract backend, with a short switch interval so that they interleave inside operations.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator

import pytest
from django.core.cache import caches
from django.db import connections

from agenthub_cache import CacheService

ROUNDS = 150
READERS = 2
#: The writer goes on past ROUNDS until the readers have seen the entry filed this many times
#: (a fast store can finish 150 rounds before a reader thread is first scheduled), up to
#: DEADLINE seconds.
MIN_SEEN = 20
DEADLINE = 30.0


@pytest.fixture
def fine_switching() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def test_an_index_read_never_sees_a_new_value_under_its_old_filing(
    service: CacheService, fine_switching: None
) -> None:
    done = threading.Event()
    seen: list[object] = []
    wrong: list[object] = []
    errors: list[BaseException] = []

    started = threading.Barrier(1 + READERS)
    last_round: list[int] = []

    def write() -> None:
        try:
            started.wait()
            give_up = time.monotonic() + DEADLINE
            i = 0
            while i < ROUNDS or (len(seen) < MIN_SEEN and time.monotonic() < give_up):
                service.set("entry", f"filed-{i}", indexes={"user": "1"})
                service.set("entry", f"plain-{i}")
                i += 1
            last_round.append(i - 1)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)
        finally:
            done.set()
            caches.close_all()
            connections.close_all()

    def read() -> None:
        try:
            started.wait()
            while not done.is_set():
                for value in service.get_by_index("user", "1").values():
                    seen.append(value)
                    if not str(value).startswith("filed-"):
                        wrong.append(value)
        except BaseException as exc:
            errors.append(exc)
        finally:
            caches.close_all()
            connections.close_all()

    threads = [threading.Thread(target=write)]
    threads += [threading.Thread(target=read) for _ in range(READERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert seen, "the readers never found the entry filed: the test showed nothing"
    assert wrong == [], f"{len(wrong)} of {len(seen)} index reads returned an unindexed value"
    assert service.get_by_index("user", "1") == {}
    assert service.get("entry") == f"plain-{last_round[0]}"
