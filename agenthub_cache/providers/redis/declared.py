"""A script's reply that asks for the index keys its call did not declare.

The scripts that file entries out of their indexes (``READS_FILINGS``) learn those index keys
only from the entries' metas; when a meta names one the call's ``KEYS`` lack, the script
changes nothing and replies with the keys it needs (``scripts`` module docstring). Every driver,
sync, async and cluster, sends the call again with them through ``declared_again``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from redis.exceptions import TryAgainError

#: The scripts that read their entries' metas and file them out of the index keys named
#: there: their reply may be the list of those keys the call did not declare.
READS_FILINGS: Final = frozenset(
    {"set", "set_many", "delete", "pop", "incr", "touch", "delete_filed", "prune_members"}
)
#: How many times one call is sent again with more index keys declared. Each time needs
#: another client to have filed the entry under yet another index key in between.
MAX_REDECLARES: Final = 8


class StillRefiled(TryAgainError):
    """Other clients kept filing the entries under new index keys faster than this call could
    declare them (``MAX_REDECLARES``): a transient outage of this call, as a cluster's
    TRYAGAIN is."""


def declared_again(name: str, keys: Sequence[Any], reply: Any, attempt: int) -> list[Any] | None:
    """The KEYS to send script ``name`` again with (``keys`` plus the index keys it asked
    for), if ``reply`` asks for them (the script changed nothing); ``None`` if ``reply`` is
    the result. ``attempt``: how many times this call was sent again already."""
    if reply.__class__ is not list or name not in READS_FILINGS:
        return None
    if attempt >= MAX_REDECLARES:
        raise StillRefiled(
            f"the {name!r} script still met undeclared index keys after {attempt} attempts "
            "(other clients kept re-filing its entries); try again"
        )
    return [*keys, *reply]
