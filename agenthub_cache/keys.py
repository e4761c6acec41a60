"""The one key builder: every stored key of the app is made here.

Each part (namespace, key, index name, index value) is percent-encoded with nothing left
"safe" but letters, digits and ``_.-~``, so a part can never contain the ``:`` that joins
parts, nor a glob character (``* ? [ ] \\``), brace, space or control character. Percent-
encoding is injective, hence so is the whole layout; and a prefix built for one namespace can
never be a prefix of another's keys, which is what makes listing and flushing by prefix safe.

Layout (before the Django backend adds its own ``KEY_PREFIX`` and version)::

    ahc:<namespace>[@<generation>]:<kind>:<part>[:<part>]
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import quote, unquote

APP_PREFIX = "ahc"

ENTRY = "k"  # the cached value
META = "m"  # which index values an entry is filed under
INDEX = "i"  # one index value's members
LOCK = "l"  # lock and stampede-guard keys
GENERATION = "g"  # the namespace generation counter (stores that cannot list)
HASHED = "h"  # an entry key too long for the store, replaced by its digest


#: One escaped part, as ``escape`` writes it.
PART_PATTERN = r"(?:[A-Za-z0-9_.~-]|%[0-9A-F]{2})"
_PART = re.compile(rf"{PART_PATTERN}+\Z")
#: Every stored key the app writes, after its namespace prefix: entries and metas, index
#: records and the bare index directory, locks and the bare lock row, the generation, and the
#: digests of keys too long for the store.
_WRITTEN = re.compile(
    rf"(?:[{ENTRY}{META}]:{PART_PATTERN}+|{INDEX}(?::{PART_PATTERN}+:{PART_PATTERN}*)?"
    rf"|{LOCK}(?::{PART_PATTERN}*)*|{GENERATION}|{HASHED}[{ENTRY}{META}{INDEX}{LOCK}]:[0-9a-f]{{64}})\Z"
)


def written_by_app(stored_suffix: str) -> bool:
    """Whether a stored key (its namespace prefix cut off) has a shape the app writes; any
    other key under the prefix is someone else's, and no listing or flush touches it."""
    return _WRITTEN.match(stored_suffix) is not None


def escape(part: str) -> str:
    """Percent-encode ``part`` so that it holds only ``[A-Za-z0-9_.~%-]``."""
    return quote(part, safe="")


def unescape(part: str) -> str:
    return unquote(part)


def namespace_prefix(namespace: str, generation: str | None = None) -> str:
    """The prefix every key of ``namespace`` starts with (ends with ``:``)."""
    scope = escape(namespace) if generation is None else f"{escape(namespace)}@{generation}"
    return f"{APP_PREFIX}:{scope}:"


def tagged_prefix(namespace: str, tag: int) -> str:
    """The prefix of one hash tag of ``namespace`` on a Redis Cluster: ``ahc:{<ns>/<tag>}:``.

    Redis hashes only what is between a key's first ``{`` and the next ``}``, so every key of
    one tag (entries, metas, index sets, locks) lives in one slot and a Lua script over them
    stays atomic. ``{``, ``}`` and ``/`` are escaped in a namespace name, so no two
    (namespace, tag) pairs share a tag, and no tagged prefix equals an untagged one.
    """
    return f"{APP_PREFIX}:{{{escape(namespace)}/{tag}}}:"


def build_key(namespace: str, kind: str, *parts: str, generation: str | None = None) -> str:
    """Build the stored key of ``parts`` of ``kind`` in ``namespace``."""
    return namespace_prefix(namespace, generation) + ":".join((kind, *map(escape, parts)))


def hashed_key(namespace: str, kind: str, *parts: str, generation: str | None = None) -> str:
    """A fixed-length stand-in for a key too long for the store (kind stays in the clear)."""
    digest = hashlib.sha256("\0".join(map(escape, parts)).encode()).hexdigest()
    return namespace_prefix(namespace, generation) + f"{HASHED}{kind}:{digest}"


def entry_key_from_stored(stored_suffix: str) -> str | None:
    """Turn ``k:<escaped>`` (a stored key with its namespace prefix cut off) back into the key."""
    kind, _, rest = stored_suffix.partition(":")
    if kind != ENTRY or _PART.match(rest) is None:
        return None
    return unescape(rest)
