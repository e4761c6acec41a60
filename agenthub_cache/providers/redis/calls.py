"""How the Redis provider spells each operation: its script's KEYS and ARGV, and its reply read.

Built once and shared by a sync method and its async twin, which only send what is built
here. Every key comes from the layout the entry lives in (``_layout_for``): one per
namespace on one server; one per hash tag on a cluster, which overrides the two layout
methods and nothing else here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from agenthub_cache.keys import escape_many
from agenthub_cache.providers.redis.codec import DecodeAll
from agenthub_cache.providers.redis.driver import Lua, chunks
from agenthub_cache.providers.redis.layout import KeyLayout, escape
from agenthub_cache.providers.redis.scripts import CHUNK

#: A script call: its KEYS (str, or bytes where built so) and its ARGV.
ScriptCall = tuple[list[Any], list[Any]]


def px(timeout: float | None) -> str:
    """A Django timeout as the scripts take it: '' never expires, '0' expires at once."""
    if timeout is None:
        return ""
    if timeout <= 0:
        return "0"
    return str(max(1, int(timeout * 1000)))


#: ``px`` as bytes, by timeout: a namespace sets with a handful of timeouts (cleared past 256).
_PX_ARGS: dict[float | None, bytes] = {}


def px_arg(timeout: float | None) -> bytes:
    """``px(timeout)`` as the bytes redis-py sends as they are, built once per timeout."""
    found = _PX_ARGS.get(timeout)
    if found is None:
        if len(_PX_ARGS) >= 256:
            _PX_ARGS.clear()
        found = _PX_ARGS[timeout] = px(timeout).encode()
    return found


class ScriptCalls:
    """Mixin of the Redis providers: the calls of single-round-trip operations."""

    layout: KeyLayout
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]
    #: ``decode`` over many values (``codec.batch_decoder``).
    decode_all: DecodeAll

    def _layout_for(self, key: str) -> KeyLayout:
        """The layout ``key`` lives in (one per namespace here; one per hash tag on a cluster)."""
        return self.layout

    def _by_layout(self, items: list[tuple[str, Any]]) -> list[tuple[KeyLayout, list[Any]]]:
        """``items`` (key, value) grouped by the layout their key lives in: one, here."""
        return [(self.layout, items)]

    def _entry(self, key: str) -> str:
        return self._layout_for(key).entry(escape(key))

    def _set_call(
        self,
        key: str,
        value: Any,
        timeout: float | None,
        indexes: Mapping[str, str] | None,
        only_if_absent: bool,
    ) -> ScriptCall:
        member: Any = escape(key)
        layout = self._layout_for(key)
        entry_head, meta_head = layout.entry_head, layout.meta_head
        if entry_head is None or meta_head is None:
            stored: list[Any] = [layout.entry(member), layout.meta(member)]
        else:
            member = member.encode()
            stored = [entry_head + member, meta_head + member]
        args = [self.encode(value), px_arg(timeout), b"1" if only_if_absent else b"", member]
        if indexes:
            for name, value_ in indexes.items():
                stored.append(layout.index_key(name, value_))
                args.append(name)
        return stored, args

    def _set_many_calls(
        self, mapping: Mapping[str, Any], timeout: float | None
    ) -> list[ScriptCall]:
        """The ``set_many`` script's calls: per entry its two keys and its value, as bytes
        where the layout allows (the member follows from the entry key: ``cut``)."""
        encode, expiry = self.encode, px_arg(timeout)
        calls: list[ScriptCall] = []
        for layout, items in self._by_layout(list(mapping.items())):
            entry_head, meta_head = layout.entry_head, layout.meta_head
            for group in chunks(items, CHUNK):
                values = [encode(value) for _, value in group]
                if entry_head is None or meta_head is None:
                    members = [escape(key) for key, _ in group]
                    named: list[Any] = []
                    for member in members:
                        named += (layout.entry(member), layout.meta(member))
                    calls.append((named, [expiry, "", *values, *members]))
                    continue
                raws = escape_many([key for key, _ in group])
                stored: list[Any] = [None] * (2 * len(raws))
                stored[0::2] = [entry_head + raw for raw in raws]
                stored[1::2] = [meta_head + raw for raw in raws]
                calls.append((stored, [expiry, len(entry_head), *values]))
        return calls

    def _keyed_calls(self, keys_: Iterable[str]) -> list[ScriptCall]:
        calls = []
        for layout, keys_of in self._by_layout([(key, None) for key in keys_]):
            for group in chunks([escape(key) for key, _ in keys_of], CHUNK):
                stored: list[str] = []
                for member in group:
                    stored += (layout.entry(member), layout.meta(member))
                calls.append((stored, list(group)))
        return calls

    def _keyed_call(self, key: str, *args: Any) -> ScriptCall:
        member, layout = escape(key), self._layout_for(key)
        return [layout.entry(member), layout.meta(member)], [*args, member]

    def _store(self, key: str, timeout: float | None) -> Callable[[Any, bool], Lua]:
        """How ``get_or_set``'s steps write ``key``: the ``set`` script, maybe only if absent."""

        def store(value: Any, only_if_absent: bool) -> Lua:
            stored, args = self._set_call(key, value, timeout, None, only_if_absent)
            return Lua("set", stored, args)

        return store

    def _decode_many(self, keys_: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
        found = [value for value in values if value is not None]
        if len(found) != len(values):
            keys_ = [k for k, value in zip(keys_, values, strict=True) if value is not None]
        return dict(zip(keys_, self.decode_all(found), strict=True))

    @staticmethod
    def _seconds(pttl: int) -> float | None:
        """A PTTL reply as ``ttl()`` returns it: ``0`` if missing, ``None`` if it never expires."""
        if pttl == -2:
            return 0.0
        return None if pttl == -1 else pttl / 1000
