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
from collections.abc import Callable
from typing import Final
from urllib.parse import quote, unquote

APP_PREFIX = "ahc"

ENTRY = "k"  # the cached value
META = "m"  # which index values an entry is filed under
INDEX = "i"  # one index value's members
LOCK = "l"  # lock and stampede-guard keys
GENERATION = "g"  # the namespace generation counter (stores that cannot list)
INDEX_USE = "u"  # whether the namespace was ever indexed (``providers/index_use.py``)
HASHED = "h"  # an entry key too long for the store, replaced by its digest


#: The characters ``escape`` leaves as they are.
SAFE_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~"
#: What ``escape`` makes of each ASCII character, by code point (``str.translate``: the fast
#: path). Every code point has an entry, safe ones mapping to themselves: a table that lacked
#: them made ``translate`` raise and catch a ``KeyError`` per distinct safe character, 3-4x
#: slower on a typical key.
ASCII_ESCAPES: Final = tuple(chr(i) if chr(i) in SAFE_CHARS else f"%{i:02X}" for i in range(128))

#: One escaped part, as ``escape`` writes it.
PART_PATTERN = r"(?:[A-Za-z0-9_.~-]|%[0-9A-F]{2})"
_PART = re.compile(rf"{PART_PATTERN}+\Z")
#: The shapes of the stored keys the app writes, after the namespace prefix, each kind in a
#: named group: an entry or its meta (``one``), an index value's record (``index``), a lock or
#: stampede guard (``lock``). The one definition: the Redis layout matches these too.
SHAPES = (
    rf"(?P<one>[{ENTRY}{META}]):{PART_PATTERN}+"
    rf"|(?P<index>{INDEX}):{PART_PATTERN}+:{PART_PATTERN}*"
    rf"|(?P<lock>{LOCK})(?::{PART_PATTERN}*)+"
)
#: Stores that cannot list add the index directory (bare, or one shard of it), the bare lock
#: row, the generation, and the digests of keys too long for the store; the generic stores
#: (the database cache too) the namespace's index-use record.
_WRITTEN = re.compile(
    rf"(?:{SHAPES}|{INDEX}(?::~[0-9]+)?|{LOCK}|{GENERATION}|{INDEX_USE}"
    rf"|{HASHED}[{ENTRY}{META}{INDEX}{LOCK}]:[0-9a-f]{{64}})\Z"
)
#: Suffixes that show whether a backend's key function just appends the key: every character
#: an escaped part or the layout can hold, and a key longer than any store's limit (a key
#: function that lower-cases, or hashes long keys for memcached, fails one of them).
_PROBE_SUFFIXES: Final = (
    f"{ENTRY}:{SAFE_CHARS}%3A%C3%BC",
    f"{INDEX}:{'x' * 1000}:{'y' * 1000}",
)


def written_by_app(stored_suffix: str) -> bool:
    """Whether a stored key (its namespace prefix cut off) has a shape the app writes; any
    other key under the prefix is someone else's, and no listing or flush touches it."""
    return _WRITTEN.match(stored_suffix) is not None


def escape(part: str) -> str:
    """Percent-encode ``part`` so that it holds only ``[A-Za-z0-9_.~%-]`` (``quote`` with
    nothing safe; ASCII by ``str.translate``, three times faster, same result)."""
    return part.translate(ASCII_ESCAPES) if part.isascii() else quote(part, safe="")


#: ``escape_many``: the bytes it leaves (and the line break between parts), and the code of each
#: other ASCII byte.
_SAFE_AND_BREAK: Final = (SAFE_CHARS + "\n").encode()
_CODES: Final = {i: f"%{i:02X}".encode() for i in range(128)}


def escape_many(parts: list[str]) -> list[bytes]:
    """``escape(part).encode()`` of each part. Where every part is ASCII without a line break
    (the usual keys), the parts are escaped joined by line breaks, one ``bytes.replace`` per
    distinct character to escape (``%`` first, so no code written is escaped again), then split
    apart: about half the cost of a ``translate`` per part."""
    joined = "\n".join(parts)
    if not (joined.isascii() and joined.count("\n") == len(parts) - 1):
        return [escape(part).encode() for part in parts]
    raw = joined.encode()
    unsafe = set(raw.translate(None, _SAFE_AND_BREAK))
    if 37 in unsafe:  # "%"
        raw = raw.replace(b"%", b"%25")
        unsafe.discard(37)
    for code in unsafe:
        raw = raw.replace(bytes((code,)), _CODES[code])
    return raw.split(b"\n")


_ASCII_UNESCAPES: Final = {f"{i:02X}": chr(i) for i in range(128)}
_CODE = re.compile(r"%[0-9A-F]{2}")


def unescape(part: str) -> str:
    """The part ``escape`` was given (``unquote``; without it when the part was ASCII)."""
    if "%" not in part:
        return part
    chunks = part.split("%")
    out = [chunks[0]]
    for chunk in chunks[1:]:
        if chunk[:1] > "7":  # a UTF-8 byte: the original was not ASCII
            return unquote(part)
        out += (_ASCII_UNESCAPES[chunk[:2]], chunk[2:])
    return "".join(out)


def unescape_many(parts: list[bytes]) -> list[str]:
    """``unescape`` of many escaped parts (as read from a store) at once: one pass per
    distinct ``%XX`` they hold."""
    if not parts:
        return []
    joined = b"\n".join(parts).decode("ascii")
    if "%" in joined:
        codes = set(_CODE.findall(joined))
        if "%0A" in codes or any(code[1] > "7" for code in codes):  # newline or non-ASCII
            return [unescape(part.decode()) for part in parts]
        codes.discard("%25")
        for code in codes:  # a replacement makes no "%", so no new code appears...
            joined = joined.replace(code, _ASCII_UNESCAPES[code[1:]])
        joined = joined.replace("%25", "%")  # ...until this one, done last
    return joined.split("\n")


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


def stored_prefix(
    make_key: Callable[[str], str], namespace: str, built: str | None = None
) -> str | None:
    """The namespace prefix as a backend stores it (``make_key`` adds KEY_PREFIX and version),
    or ``None`` if its KEY_FUNCTION does not just append keys to it (then the namespace's
    stored keys cannot be listed by prefix). ``built``: the prefix before the key function,
    if not ``namespace_prefix(namespace)`` (one ``tagged_prefix`` of it on a Redis Cluster)."""
    built = namespace_prefix(namespace) if built is None else built
    stored = str(make_key(built))
    for suffix in _PROBE_SUFFIXES:
        if str(make_key(built + suffix)) != stored + suffix:
            return None
    return stored


def build_key(namespace: str, kind: str, *parts: str, generation: str | None = None) -> str:
    """Build the stored key of ``parts`` of ``kind`` in ``namespace``."""
    return key_under(namespace_prefix(namespace, generation), kind, *parts)


def key_under(prefix: str, kind: str, *parts: str) -> str:
    """``build_key`` with the ``namespace_prefix`` already built (callers that cache it)."""
    return prefix + ":".join((kind, *map(escape, parts)))


def hashed_key(namespace: str, kind: str, *parts: str, generation: str | None = None) -> str:
    """A fixed-length stand-in for a key too long for the store (kind stays in the clear)."""
    digest = hashlib.sha256("\0".join(map(escape, parts)).encode()).hexdigest()
    return namespace_prefix(namespace, generation) + f"{HASHED}{kind}:{digest}"


def index_pair_from_stored(stored_suffix: str) -> tuple[str, str] | None:
    """Turn ``i:<name>:<value>`` (an index record's stored key with its namespace prefix cut
    off) back into ``(index, value)``; ``None`` for any other key."""
    kind, _, rest = stored_suffix.partition(":")
    name, colon, value = rest.partition(":")
    if kind != INDEX or not colon or _PART.match(name) is None:
        return None
    if value and _PART.match(value) is None:
        return None
    return unescape(name), unescape(value)


def entry_key_from_stored(stored_suffix: str) -> str | None:
    """Turn ``k:<escaped>`` (a stored key with its namespace prefix cut off) back into the key."""
    kind, _, rest = stored_suffix.partition(":")
    if kind != ENTRY or _PART.match(rest) is None:
        return None
    return unescape(rest)
