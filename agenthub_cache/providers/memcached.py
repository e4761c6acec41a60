"""PyMemcacheCache and PyLibMCCache: generation flush, hashed long keys, native incr/add.

memcached cannot list keys, so listing raises ``NotSupported`` and a flush starts a new
namespace generation in O(1); the old entries age out or are evicted by the server's LRU.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Mapping
from typing import Any, ClassVar, cast

from django.core.cache.backends.base import BaseCache

from agenthub_cache import conf, keys
from agenthub_cache.providers.base import Capabilities, Flush
from agenthub_cache.providers.generic import GenericProvider

#: The last expiry memcached can store (2038-01-19): its protocol reads a signed 32-bit time.
MEMCACHED_LAST_TIME = 2**31 - 1


def _client_errors() -> tuple[type[BaseException], ...]:
    """The memcached clients' "server gone" errors, for whichever client is installed."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    try:
        from pymemcache.exceptions import MemcacheUnexpectedCloseError

        errors.append(MemcacheUnexpectedCloseError)
    except ImportError:
        pass
    try:
        pylibmc = importlib.import_module("pylibmc")
        errors += [pylibmc.ConnectionError, pylibmc.ServerDown, pylibmc.ServerDead]
    except ImportError:
        pass
    return tuple(errors)


def _value_errors() -> tuple[type[BaseException], ...]:
    """pymemcache's error for a value the server refuses ("object too large for cache")."""
    try:
        from pymemcache.exceptions import MemcacheServerError
    except ImportError:
        return ()
    return (MemcacheServerError,)


def _not_an_integer_errors() -> tuple[type[BaseException], ...]:
    """pymemcache's error for ``incr`` of a value that is not a number ("non-numeric value")."""
    try:
        from pymemcache.exceptions import MemcacheClientError
    except ImportError:
        return ()
    return (MemcacheClientError,)


logger = logging.getLogger("agenthub_cache")


def _stored_size(value: Any) -> str:
    """About how many bytes ``value`` takes stored (as Django's default pickle serde writes it)."""
    try:
        from pymemcache.serde import pickle_serde

        data, _ = pickle_serde.serialize("", value)
    except Exception:
        return "an unknown number of"
    return f"{len(data):,}"


def _all_servers_down_error() -> type[BaseException] | None:
    try:
        from pymemcache.exceptions import MemcacheError
    except ImportError:
        return None
    error: type[BaseException] = MemcacheError
    return error


class MemcachedProvider(GenericProvider):
    capabilities: ClassVar[Capabilities] = Capabilities(
        flush=Flush.GENERATION, distributed_lock=True
    )
    counters_floor_at_zero = True
    #: Its clock ticks once a second: an item stored for 1 s was gone after 0.6 to 1.0 s here.
    whole_second_expiry = True

    def __init__(
        self, backend: BaseCache, alias: str, namespace: str, *, shared: bool = True
    ) -> None:
        super().__init__(backend, alias, namespace, shared=shared)
        self.unavailable_errors = _client_errors()
        self.refused_value_errors = _value_errors()
        self.not_an_integer_errors = _not_an_integer_errors()
        self.all_servers_down_error = _all_servers_down_error()

    def max_ttl(self) -> int:
        """memcached takes a TTL over 30 days as a Unix time, a signed 32-bit number."""
        return max(0, min(conf.MAX_TTL, MEMCACHED_LAST_TIME - int(time.time()) - 1))

    def is_unavailable(self, error: BaseException) -> bool:
        # pymemcache's HashClient raises its bare base MemcacheError ("All servers seem to be
        # down right now") while every server is marked dead; its subclasses are refusals.
        return super().is_unavailable(error) or type(error) is self.all_servers_down_error

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "location": getattr(self.backend, "_servers", None)}

    def stores_str_as_text(self) -> bool:
        """The client writes a str as its UTF-8 text (pymemcache's and pylibmc's default)."""
        return True

    def check_serializable(self, value: Any) -> None:
        if isinstance(value, str) and self.stores_str_as_text():  # a lone surrogate has no UTF-8
            value.encode("utf-8")
        else:
            super().check_serializable(value)

    def set(
        self, key: str, value: Any, timeout: float | None, indexes: Mapping[str, str] | None = None
    ) -> bool:
        """``False`` (and a logged warning with the size) for a value the server refuses."""
        try:
            return super().set(key, value, timeout, indexes)
        except self.refused_value_errors as exc:
            logger.warning(
                "Cache namespace %r: the %r cache refused the value of %r (%s bytes; over "
                "memcached's item size limit, -I, 1 MB by default?): %s",
                self.namespace,
                self.alias,
                key,
                _stored_size(value),
                exc,
            )
            return False

    def set_many(self, mapping: Mapping[str, Any], timeout: float | None) -> list[str]:
        """Django's contract: the keys the server refused come back as failed, the rest are
        stored. A refusal interrupts the client's batch, so that batch is sent again key by key."""
        try:
            return super().set_many(mapping, timeout)
        except self.refused_value_errors:
            return [key for key, value in mapping.items() if not self.set(key, value, timeout)]


class PickledText:
    """A str for pymemcache to pickle. Its default serde writes a plain str as its UTF-8 text,
    which memcached's ``incr`` takes for a number (``"5"`` incremented to 6, where every other
    store refuses a str); pickled, the server refuses it as every store does. It unpickles as
    the plain str itself, so every reader (``caches[alias]`` too) gets the str back."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __reduce__(self) -> tuple[type[str], tuple[str]]:
        return (str, (self.text,))


class PyMemcacheProvider(MemcachedProvider):
    """pymemcache speaks memcached ≥ 1.6's meta commands, so it can read a key's TTL.

    A str value is stored pickled (``PickledText``) where the backend uses pymemcache's pickle
    serde (Django's default), so ``incr`` refuses it as on every other store."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        flush=Flush.GENERATION, ttl=True, distributed_lock=True
    )

    def stores_str_as_text(self) -> bool:
        """Whether this thread's backend has a serde other than pymemcache's ``PickleSerde``
        (Django's default), which cannot be trusted to pickle a ``PickledText``."""
        backend = self.backend  # binds this thread's backend first
        bound = self._bound
        try:
            as_text: bool = bound.str_as_text
        except AttributeError:
            from pymemcache.serde import PickleSerde

            serde = getattr(backend, "_options", {}).get("serde")
            as_text = bound.str_as_text = not isinstance(serde, PickleSerde)
        return as_text

    def _stored(self, value: Any) -> Any:
        if type(value) is str and not self.stores_str_as_text():
            return PickledText(value)
        return value

    def set(
        self, key: str, value: Any, timeout: float | None, indexes: Mapping[str, str] | None = None
    ) -> bool:
        return super().set(key, self._stored(value), timeout, indexes)

    def add(
        self, key: str, value: Any, timeout: float | None, indexes: Mapping[str, str] | None = None
    ) -> bool:
        return super().add(key, self._stored(value), timeout, indexes)

    def set_many(self, mapping: Mapping[str, Any], timeout: float | None) -> list[str]:
        if not self.stores_str_as_text():
            mapping = {key: self._stored(value) for key, value in mapping.items()}
        return super().set_many(mapping, timeout)

    def _single_client(self) -> Any | None:
        """The pymemcache ``Client`` of the one server, while it is healthy; else ``None``.

        Django's ``HashClient`` hashes every key (pure-Python murmur3, ~15 µs a key) to pick
        a server even when there is one; with one healthy server the provider asks its client
        directly. With several, or while ``HashClient`` counts a server as failed or dead, it
        goes through ``HashClient`` and its retry and dead-server rules.
        """
        hashed: Any = cast(Any, self.backend)._cache
        clients = getattr(hashed, "clients", None)
        if not isinstance(clients, dict) or len(clients) != 1:
            return None
        if getattr(hashed, "_dead_clients", None) or getattr(hashed, "_failed_clients", None):
            return None
        return next(iter(clients.values()))

    def read_entries(self, keys_: list[str]) -> dict[str, Any]:
        client = self._single_client()
        if client is None:
            return super().read_entries(keys_)
        make_key = self.backend.make_key  # the keys are valid by construction
        generation = self.known_scope()
        gen_raw = make_key(self.generation_key())
        by_raw = {make_key(self.entry_key(key, generation)): key for key in keys_}
        found: dict[str, Any] = client.get_many([gen_raw, *by_raw])
        current = found.pop(gen_raw, None)
        if current is None or str(current) != generation:
            return super().read_entries(keys_)  # a flush: read the generation again
        self._remember(str(current))  # confirmed: writes may trust it a while longer
        return {by_raw[raw]: value for raw, value in found.items()}

    def write_entry(self, stored: str, value: Any, timeout: float | None) -> None:
        """What ``PyMemcacheCache.set`` does (delete the old value if the server refuses the
        new one), on the one server's client: no key hashing, no key validation."""
        client = self._single_client()
        if client is None:
            return super().write_entry(stored, value, timeout)
        backend = cast(Any, self.backend)
        raw = backend.make_key(stored)
        if not client.set(raw, value, backend.get_backend_timeout(timeout)):
            client.delete(raw)

    def maybe_filed(self, key: str, scope: str | None) -> bool:
        client = self._single_client()
        if client is None:
            return super().maybe_filed(key, scope)
        return client.get(self.backend.make_key(self.key_of(keys.META, key, scope))) is not None

    def stored_ttl(self, stored: str) -> float | None:
        raw = self.backend.make_key(stored).encode()
        # Django's client is a pymemcache HashClient: ask the server that owns this key.
        client: Any = cast(Any, self.backend)._cache._get_client(raw)
        reply: bytes = client.raw_command(b"mg " + raw + b" t", b"\r\n")
        if not reply.startswith(b"HD"):
            return 0.0  # EN: no such key
        seconds = int(reply.split(b" t", 1)[1].split()[0])
        return None if seconds == -1 else float(seconds)
