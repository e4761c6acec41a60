"""Where the Redis provider keeps a namespace: the stored keys, as the Django backend names them.

Every stored key is ``backend.make_key(keys.build_key(namespace, kind, *parts))``, so the
backend's ``KEY_PREFIX``, ``VERSION`` and ``KEY_FUNCTION`` apply and ``caches[alias]`` reads an
entry at ``backend.make_key(service.make_key(key))``. When the key function keeps prefixes
(Django's default does), keys are built by concatenating onto the namespace's stored prefix,
and the namespace can be listed and flushed by SCAN over that prefix, glob-escaped.

An entry's *member* (its name inside index sorted sets) is its escaped key, ``keys.escape``:
ASCII without ``:`` or glob characters, from which its entry and meta keys follow directly.
"""

from __future__ import annotations

import re

from django.core.cache.backends.base import BaseCache

from agenthub_cache import keys
from agenthub_cache.exceptions import NotSupported

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
#: One escaped part as the app writes it, and the shapes of the stored keys it writes after
#: the namespace prefix: an entry or meta (one part), an index (name and value), a lock.
_SHAPES = rf"(?:{keys.SHAPES})\Z".encode()
#: The bytes an escaped part is made of, and the line break between listed keys (``all_entries``).
_PART_BYTES_AND_BREAK = (keys.SAFE_CHARS + "%0123456789ABCDEF\n").encode()
_CODE = re.compile(rb"%[0-9A-F]{2}")


def glob_escape(text: str) -> str:
    """Escape Redis glob characters so ``text`` matches only itself in SCAN MATCH.

    Not django-redis's ``glob_escape`` (``django_redis.client.default``, 5.4-7.0, not public
    API): it leaves ``\\`` as it is, which Redis's glob reads as an escape, so its pattern for
    a ``KEY_PREFIX`` holding a backslash matches other keys and misses its own
    (``test_glob_characters_in_key_prefixes_reach_nothing_else``)."""
    return _GLOB_SPECIAL.sub(r"\\\1", text)


escape = keys.escape
#: The most index names a layout keeps the key head of (``KeyLayout.index_key``).
NAMES_KEPT = 1024


def literal_prefix(pattern: str) -> str:
    """The part of an ``fnmatch`` pattern before its first wildcard."""
    match = re.search(r"[*?\[]", pattern)
    return pattern if match is None else pattern[: match.start()]


class KeyLayout:
    """The stored keys of one namespace on one Django Redis backend."""

    def __init__(self, backend: BaseCache, namespace: str, built_prefix: str | None = None) -> None:
        self.namespace = namespace
        self._make_key = backend.make_key
        #: What every key of this layout starts with before the backend's key function:
        #: ``keys.namespace_prefix`` on one server, one ``keys.tagged_prefix`` on a cluster.
        self.built_prefix = built_prefix or keys.namespace_prefix(namespace)
        stored = str(backend.make_key(self.built_prefix))
        #: The namespace's stored prefix; ``None`` if the KEY_FUNCTION does not keep prefixes.
        self.prefix: str | None = keys.stored_prefix(backend.make_key, namespace, self.built_prefix)
        keeps_prefix = self.prefix is not None
        self._entry = f"{stored}{keys.ENTRY}:" if keeps_prefix else None
        self._meta = f"{stored}{keys.META}:" if keeps_prefix else None
        #: What an entry's and a meta's stored key start with, before the member, as bytes
        #: (keys built from them go to redis-py as they are); ``None`` as for ``prefix``.
        self.entry_head = self._entry.encode() if self._entry is not None else None
        self.meta_head = self._meta.encode() if self._meta is not None else None
        self._index_head = f"{stored}{keys.INDEX}:".encode() if keeps_prefix else None
        #: ``index_key``'s head for each index name seen: names are the namespace's schema,
        #: a handful (cleared past ``NAMES_KEPT`` should a caller build them from data).
        self._index_heads: dict[str, bytes] = {}
        #: The cluster hash slot of every key of this layout (its hash tag's), set by the
        #: cluster provider; ``None`` on one server.
        self.slot: int | None = None
        self._shape = re.compile(re.escape(stored.encode()) + _SHAPES)

    def stored(self, suffix: str) -> str:
        """The stored key of ``<namespace prefix><suffix>``."""
        if self.prefix is not None:
            return self.prefix + suffix
        return str(self._make_key(self.built_prefix + suffix))

    def entry(self, member: str) -> str:
        entry = self._entry
        return entry + member if entry is not None else self.stored(f"{keys.ENTRY}:{member}")

    def entry_keys(self, keys_: list[str]) -> list[bytes] | list[str]:
        """``entry(escape(key))`` for many keys, in one tight loop, as bytes where the layout
        allows (redis-py then sends them as they are instead of encoding each str again)."""
        head = self.entry_head
        if head is None:
            return [self.entry(escape(key)) for key in keys_]
        return [head + member for member in keys.escape_many(keys_)]

    def entries(self, members: list[bytes]) -> list[bytes] | list[str]:
        """The entry keys of index members as read from Redis (bytes concatenation)."""
        if self._entry is None:
            return [self.entry(member.decode()) for member in members]
        prefix = self._entry.encode()
        return [prefix + member for member in members]

    def meta(self, member: str) -> str:
        meta = self._meta
        return meta + member if meta is not None else self.stored(f"{keys.META}:{member}")

    def index(self, name: str, value: str) -> str:
        return self.stored(f"{keys.INDEX}:{escape(name)}:{escape(value)}")

    def index_key(self, name: str, value: str) -> bytes | str:
        """``index(name, value)``, as bytes where the layout keeps prefixes."""
        head = self._index_heads.get(name)
        if head is None:
            if self._index_head is None:
                return self.index(name, value)
            if len(self._index_heads) >= NAMES_KEPT:
                self._index_heads.clear()
            head = self._index_heads[name] = self._index_head + f"{escape(name)}:".encode()
        return head + escape(value).encode()

    def lock(self, *parts: str) -> str:
        """A lock key; ``lock("get_or_set", key)`` can never equal a one-part ``lock(name)``."""
        return self.stored(":".join((keys.LOCK, *map(escape, parts))))

    # -- listing ----------------------------------------------------------------------------

    def listed_prefix(self) -> str:
        """The stored prefix, or ``NotSupported`` when the key function hides it."""
        if self.prefix is None:
            raise NotSupported(
                f"Cache namespace {self.namespace!r}: the cache's KEY_FUNCTION does not keep "
                "key prefixes, so the namespace cannot be listed or flushed."
            )
        return self.prefix

    def match(self, suffix: str = "") -> str:
        """A SCAN MATCH pattern for stored keys starting with ``<prefix><suffix>``."""
        return glob_escape(self.listed_prefix() + suffix) + "*"

    def entries_match(self, pattern: str) -> str:
        """SCAN MATCH for the entries that can match the key glob ``pattern``.

        Escaping works character by character, so the escaped literal head of the pattern
        is a prefix of every matching stored key; the rest is checked with ``fnmatch``.
        """
        return self.match(f"{keys.ENTRY}:{escape(literal_prefix(pattern))}")

    def kind_of(self, stored: bytes) -> bytes | None:
        """The kind (``k``, ``m``, ``i``, ``l``) of a listed stored key the app could have
        written; ``None`` for any other key under the prefix (someone else's: never touched)."""
        shape = self._shape.match(stored)
        if shape is None:
            return None
        return shape["one"] or shape["index"] or shape["lock"]

    def all_entries(self, listed: list[bytes]) -> bool:
        """Whether every key of ``listed`` is an entry key of this layout, as ``kind_of``
        would say one by one (the flush's common batch), in a few passes over the batch
        joined, not a regular expression per key."""
        if not listed or self._entry is None:
            return False
        head, n = self._entry.encode(), len(listed)
        joined = b"\n".join(listed)
        # Every line break is one of the n - 1 joins (no key holds one) and is followed by
        # the entry prefix, so each key starts with it...
        if joined.count(b"\n") != n - 1 or joined.count(b"\n" + head) != n - 1:
            return False
        if not joined.startswith(head):
            return False
        # ...and what follows it in each is one escaped part: not empty, only the bytes
        # ``escape`` writes, each ``%`` starting a code of two upper-case hex digits.
        parts = joined.replace(b"\n" + head, b"\n")[len(head) :]
        if not parts or parts[:1] == b"\n" or parts[-1:] == b"\n" or b"\n\n" in parts:
            return False
        if parts.translate(None, _PART_BYTES_AND_BREAK):
            return False
        percent = parts.count(b"%")
        return percent == 0 or len(_CODE.findall(parts)) == percent

    def key_of(self, stored: bytes) -> str:
        """The user key of a listed entry key."""
        prefix = self.listed_prefix().encode()
        return keys.unescape(stored[len(prefix) + len(keys.ENTRY) + 1 :].decode())

    def index_name_of(self, stored: bytes) -> str:
        """The index name of a listed index key (``<prefix>i:<name>:<value>``)."""
        prefix = self.listed_prefix().encode()
        rest = stored[len(prefix) + len(keys.INDEX) + 1 :].decode()
        return keys.unescape(rest.partition(":")[0])
