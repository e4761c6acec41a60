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
from typing import Final

from django.core.cache.backends.base import BaseCache

from agenthub_cache import keys
from agenthub_cache.exceptions import NotSupported

_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")
_SAFE: Final = re.compile(r"[A-Za-z0-9_.~-]+\Z").match


def glob_escape(text: str) -> str:
    """Escape Redis glob characters so ``text`` matches only itself in SCAN MATCH."""
    return _GLOB_SPECIAL.sub(r"\\\1", text)


def escape(part: str) -> str:
    """``keys.escape`` with a fast path for parts that need no escaping."""
    return part if _SAFE(part) else keys.escape(part)


def literal_prefix(pattern: str) -> str:
    """The part of an ``fnmatch`` pattern before its first wildcard."""
    match = re.search(r"[*?\[]", pattern)
    return pattern if match is None else pattern[: match.start()]


class KeyLayout:
    """The stored keys of one namespace on one Django Redis backend."""

    def __init__(self, backend: BaseCache, namespace: str) -> None:
        self.namespace = namespace
        self._make_key = backend.make_key
        self.built_prefix = keys.namespace_prefix(namespace)
        stored = str(backend.make_key(self.built_prefix))
        keeps_prefix = str(backend.make_key(self.built_prefix + "k")) == stored + "k"
        #: The namespace's stored prefix; ``None`` if the KEY_FUNCTION does not keep prefixes.
        self.prefix: str | None = stored if keeps_prefix else None
        self._entry = f"{stored}{keys.ENTRY}:" if keeps_prefix else None
        self._meta = f"{stored}{keys.META}:" if keeps_prefix else None

    def stored(self, suffix: str) -> str:
        """The stored key of ``<namespace prefix><suffix>``."""
        if self.prefix is not None:
            return self.prefix + suffix
        return str(self._make_key(self.built_prefix + suffix))

    def entry(self, member: str) -> str:
        entry = self._entry
        return entry + member if entry is not None else self.stored(f"{keys.ENTRY}:{member}")

    def meta(self, member: str) -> str:
        meta = self._meta
        return meta + member if meta is not None else self.stored(f"{keys.META}:{member}")

    def index(self, name: str, value: str) -> str:
        return self.stored(f"{keys.INDEX}:{escape(name)}:{escape(value)}")

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

    def kind_of(self, stored: bytes) -> bytes:
        """The kind (``k``, ``m``, ``i``, ``l``) of a listed stored key."""
        return stored[len(self.listed_prefix().encode()) :].partition(b":")[0]

    def key_of(self, stored: bytes) -> str:
        """The user key of a listed entry key."""
        prefix = self.listed_prefix().encode()
        return keys.unescape(stored[len(prefix) + len(keys.ENTRY) + 1 :].decode())

    def index_name_of(self, stored: bytes) -> str:
        """The index name of a listed index key (``<prefix>i:<name>:<value>``)."""
        prefix = self.listed_prefix().encode()
        rest = stored[len(prefix) + len(keys.INDEX) + 1 :].decode()
        return keys.unescape(rest.partition(":")[0])
