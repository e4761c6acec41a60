"""For backends that pickle each value as they write it (LocMem, files, the database): check a
batch first.

Django's ``set_many`` on those stores writes key after key, so a value that cannot be pickled
would fail the call after the keys before it were stored. Pickling the whole batch first makes
a rejected ``set_many`` write nothing, as on Redis, memcached and the database cache.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from typing import Any


def check_picklable(values: Iterable[Any]) -> None:
    """Raise what ``pickle.dumps`` raises for the first value that cannot be pickled."""
    for value in values:
        pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
