"""``RedisClusterCache``: a Django cache backend on redis-py's ``RedisCluster``.

::

    CACHES = {
        "cluster": {
            "BACKEND": "agenthub_cache.backends.RedisClusterCache",
            "LOCATION": ["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"],  # startup nodes
            "OPTIONS": {"SERIALIZER": "django_redis.serializers.json.JSONSerializer"},
        }
    }

``OPTIONS`` take django-redis's names: ``SERIALIZER``, ``COMPRESSOR`` (django-redis's own
classes, so a value one writes the other reads with the same settings), ``PASSWORD``,
``SOCKET_TIMEOUT``, ``SOCKET_CONNECT_TIMEOUT`` and ``CONNECTION_POOL_KWARGS`` (e.g.
``max_connections`` per node). Like django-redis, integers are stored plainly (so INCR works)
and everything else serialized. Multi-key calls are split by slot and pipelined per node.
``clear()`` deletes only keys under this cache's ``KEY_PREFIX``/version, by SCAN on every
primary: it never runs FLUSHDB.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from agenthub_cache.providers.redis.cluster_client import ClusterConnection, cluster_connection
from agenthub_cache.providers.redis.cluster_settings import (
    ClusterSettingsError,
    ClusterSpec,
    spec_from_settings,
)
from agenthub_cache.providers.redis.codec import serializer_codec

#: django-redis's defaults.
DEFAULT_SERIALIZER = "django_redis.serializers.pickle.PickleSerializer"
DEFAULT_COMPRESSOR = "django_redis.compressors.identity.IdentityCompressor"
#: Keys per SCAN call and per UNLINK in ``clear``.
SCAN_COUNT = 1000


def _backend_of(params: Mapping[str, Any]) -> type | None:
    """The class a ``CACHES`` entry names (``None`` if it cannot be imported)."""
    try:
        backend: type = import_string(str(params.get("BACKEND", "")))
    except ImportError:
        return None
    return backend


class RedisClusterCache(BaseCache):
    """A Django cache on a Redis Cluster (sync: ``RedisCluster``; async: ``redis.asyncio``)."""

    def __init__(self, server: str | list[str], params: dict[str, Any]) -> None:
        super().__init__(params)
        options: dict[str, Any] = dict(params.get("OPTIONS") or {})
        self._options = options
        self._server = server
        self._spec: ClusterSpec | None = None
        serializer = import_string(options.get("SERIALIZER", DEFAULT_SERIALIZER))
        compressor = import_string(options.get("COMPRESSOR", DEFAULT_COMPRESSOR))
        self._serializer = serializer(options=options)
        self._compressor = compressor(options=options)
        #: django-redis's value encoding for these parts (so either reads the other's).
        self.encode, self.decode = serializer_codec(self._serializer, self._compressor)

    # -- settings and clients -------------------------------------------------------------

    def alias(self) -> str:
        """The ``CACHES`` alias of these settings (Django does not tell a backend its name)."""
        from django.conf import settings

        for alias, params in settings.CACHES.items():
            if params.get("LOCATION") == self._server and _backend_of(params) is type(self):
                return str(alias)
        return "?"

    def spec(self) -> ClusterSpec:
        """The cluster this alias connects to; ``ImproperlyConfigured`` naming the mistake."""
        if self._spec is None:
            try:
                self._spec = spec_from_settings(self._server, self._options, self.alias())
            except ClusterSettingsError as exc:
                raise ImproperlyConfigured(str(exc)) from exc
        return self._spec

    @property
    def connection(self) -> ClusterConnection:
        return cluster_connection(self.spec())

    @property
    def client(self) -> Any:
        """The process-wide sync ``RedisCluster``."""
        return self.connection.client

    def async_client(self) -> Any:
        """The running event loop's ``redis.asyncio`` ``RedisCluster``."""
        return self.connection.async_handle().client

    # -- values, as django-redis stores them ---------------------------------------------

    def _px(self, timeout: Any) -> int | None:
        """Milliseconds to live for a Django timeout (``None``: forever; ``<= 0``: at once)."""
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        return None if timeout is None else int(float(timeout) * 1000)

    # -- the Django cache API -------------------------------------------------------------

    def _key(self, key: Any, version: int | None) -> str:
        return self.make_and_validate_key(key, version=version)

    def _set(self, stored: str, value: Any, timeout: Any, nx: bool) -> bool:
        px, client = self._px(timeout), self.client
        if px is not None and px <= 0:
            if nx:
                return False
            client.delete(stored)
            return True
        return bool(client.set(stored, self.encode(value), px=px, nx=nx))

    def add(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        return self._set(self._key(key, version), value, timeout, nx=True)

    def set(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        self._set(self._key(key, version), value, timeout, nx=False)

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        raw = self.client.get(self._key(key, version))
        return default if raw is None else self.decode(raw)

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        stored, px = self._key(key, version), self._px(timeout)
        if px is None:
            return bool(self.client.persist(stored)) or bool(self.client.exists(stored))
        if px <= 0:
            return bool(self.client.delete(stored))
        return bool(self.client.pexpire(stored, px))

    def delete(self, key: Any, version: int | None = None) -> bool:
        return bool(self.client.delete(self._key(key, version)))

    def has_key(self, key: Any, version: int | None = None) -> bool:
        return bool(self.client.exists(self._key(key, version)))

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """One script: a key that expires meanwhile is not re-created without its TTL."""
        value = self.connection.run_script("incr_existing", [self._key(key, version)], [delta])
        if value is None:
            raise ValueError(f"Key {key!r} not found.")
        return int(value)

    def get_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        by_stored = {self._key(key, version): key for key in keys}
        if not by_stored:
            return {}
        values = self.client.mget_nonatomic(list(by_stored))
        return {
            by_stored[stored]: self.decode(raw)
            for stored, raw in zip(by_stored, values, strict=True)
            if raw is not None
        }

    def set_many(
        self, data: Mapping[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> list[Any]:
        px = self._px(timeout)
        pipe = self.client.pipeline(transaction=False)
        for key, value in data.items():
            stored = self._key(key, version)
            if px is not None and px <= 0:
                pipe.delete(stored)
            else:
                pipe.set(stored, self.encode(value), px=px)
        pipe.execute()
        return []

    def delete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        stored = [self._key(key, version) for key in keys]
        if stored:
            self.client.delete(*stored)  # redis-py splits it by slot

    def clear(self) -> None:
        """Delete this cache's keys (under its ``KEY_PREFIX`` and version) on every primary."""
        match, client = self._match_all(), self.client
        for node in client.get_primaries():
            batch: list[bytes] = []
            for stored in client.scan_iter(match=match, count=SCAN_COUNT, target_nodes=node):
                batch.append(stored)
                if len(batch) >= SCAN_COUNT:
                    client.delete(*batch)
                    batch = []
            if batch:
                client.delete(*batch)

    def _match_all(self) -> str:
        """The SCAN pattern of every key of this cache (its KEY_PREFIX and version)."""
        return _glob_escape(self.make_key("")) + "*"

    def close(self, **kwargs: Any) -> None:
        """Nothing to do: the cluster client is shared by the process."""

    # -- async twins, on redis.asyncio ----------------------------------------------------

    async def aadd(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        return await self._aset(self._key(key, version), value, timeout, nx=True)

    async def aset(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        await self._aset(self._key(key, version), value, timeout, nx=False)

    async def _aset(self, stored: str, value: Any, timeout: Any, nx: bool) -> bool:
        px, client = self._px(timeout), self.async_client()
        if px is not None and px <= 0:
            if nx:
                return False
            await client.delete(stored)
            return True
        return bool(await client.set(stored, self.encode(value), px=px, nx=nx))

    async def aget(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        raw = await self.async_client().get(self._key(key, version))
        return default if raw is None else self.decode(raw)

    async def adelete(self, key: Any, version: int | None = None) -> bool:
        return bool(await self.async_client().delete(self._key(key, version)))

    async def ahas_key(self, key: Any, version: int | None = None) -> bool:
        return bool(await self.async_client().exists(self._key(key, version)))

    async def aget_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        by_stored = {self._key(key, version): key for key in keys}
        if not by_stored:
            return {}
        values = await self.async_client().mget_nonatomic(list(by_stored))
        return {
            by_stored[stored]: self.decode(raw)
            for stored, raw in zip(by_stored, values, strict=True)
            if raw is not None
        }

    async def atouch(
        self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        stored, px, client = self._key(key, version), self._px(timeout), self.async_client()
        if px is None:
            return bool(await client.persist(stored)) or bool(await client.exists(stored))
        if px <= 0:
            return bool(await client.delete(stored))
        return bool(await client.pexpire(stored, px))

    async def aincr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        handle = self.connection.async_handle()
        value = await handle.run_script("incr_existing", [self._key(key, version)], [delta])
        if value is None:
            raise ValueError(f"Key {key!r} not found.")
        return int(value)

    async def adecr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        return await self.aincr(key, -delta, version)

    async def aset_many(
        self, data: Mapping[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> list[Any]:
        px = self._px(timeout)
        pipe = self.async_client().pipeline(transaction=False)
        for key, value in data.items():
            stored = self._key(key, version)
            if px is not None and px <= 0:
                pipe.delete(stored)
            else:
                pipe.set(stored, self.encode(value), px=px)
        await pipe.execute()
        return []

    async def adelete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        stored = [self._key(key, version) for key in keys]
        if stored:
            await self.async_client().delete(*stored)  # redis-py splits it by slot

    async def aget_or_set(
        self, key: Any, default: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> Any:
        """Django's ``get_or_set`` on the async client (Django may hop to a thread for it)."""
        missing = object()
        value = await self.aget(key, missing, version=version)
        if value is not missing:
            return value
        if callable(default):
            default = default()
        await self.aadd(key, default, timeout=timeout, version=version)
        # Read again: another caller may have added a value since the first read.
        return await self.aget(key, default, version=version)

    async def aclear(self) -> None:
        """``clear()`` on the async client: SCAN each primary, delete in batches."""
        match, client = self._match_all(), self.async_client()
        await client.ready()
        for node in client.get_primaries():
            batch: list[bytes] = []
            async for stored in client.scan_iter(match=match, count=SCAN_COUNT, target_nodes=node):
                batch.append(stored)
                if len(batch) >= SCAN_COUNT:
                    await client.delete(*batch)
                    batch = []
            if batch:
                await client.delete(*batch)

    async def aclose(self, **kwargs: Any) -> None:
        """Nothing to do: the cluster clients are shared by the process (per event loop)."""


def _glob_escape(text: str) -> str:
    from agenthub_cache.providers.redis.layout import glob_escape

    return glob_escape(text)
