"""``ScanBudget``: a bound on how much of a store one listing may walk.

Redis lists a namespace with SCAN, which walks the whole database and filters by the
namespace's prefix on the server: a namespace of ten keys in a database of ten million makes a
full listing examine ten million. A listing given a budget stops after ``max_calls`` SCAN calls
(each asks for ``count`` keys: SCAN's ``COUNT``), and says so in ``exhausted``. The admin's key
pages list with one; stores that list in process or by an indexed query ignore it.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Keys each SCAN call asks the server to examine (its ``COUNT``).
SCAN_COUNT = 1000


@dataclass
class ScanBudget:
    """At most ``max_calls`` SCAN calls for one listing; ``exhausted`` once it stopped short."""

    max_calls: int
    count: int = SCAN_COUNT
    calls: int = 0
    exhausted: bool = False

    def take(self) -> bool:
        """Spend one call; ``False`` (and ``exhausted``) when none is left."""
        if self.calls >= self.max_calls:
            self.exhausted = True
            return False
        self.calls += 1
        return True

    @property
    def examined(self) -> int:
        """About how many of the store's keys the calls so far examined."""
        return self.calls * self.count
