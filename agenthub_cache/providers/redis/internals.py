"""The few library attributes the Redis provider reads that are not public API, one function each.

Everything else goes through public surfaces: django-redis's ``get_client()``, ``encode()``,
``decode()`` and its ``connection_factory`` (``make_connection_params``, ``pool_cls``,
``pool_cls_kwargs``); Django's ``RedisCacheClient.get_client()``; redis-py's pools
(``connection_pool``, ``connection_kwargs``). What is read below has no public accessor in any
version the project supports (Django 5.2-6.1, django-redis 5.4-7.0, redis-py 5.0.2-8.x); each
function names the versions checked, so a release that renames an attribute breaks here only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio.retry as aretry
import redis.retry


@dataclass(frozen=True)
class DjangoRedisCacheParts:
    """What Django's ``RedisCache`` was configured with, from its ``RedisCacheClient``."""

    #: The client itself: its ``get_client(write=True)`` (public) is the backend's own pool.
    cache_client: Any
    #: The first server (the one Django writes to), its pool class and pool options.
    url: str
    pool_class: type[Any]
    pool_options: dict[str, Any]
    serializer: Any


def django_redis_cache(backend: Any) -> DjangoRedisCacheParts:
    """The parts of Django's ``RedisCache``: it exposes neither its client (``_cache``) nor the
    client's servers, pool class, pool options or serializer. Checked: Django 5.2, 6.0 and
    6.1 (the attributes are set in ``RedisCacheClient.__init__``, unchanged since 4.0)."""
    cache_client = backend._cache
    return DjangoRedisCacheParts(
        cache_client=cache_client,
        url=cache_client._servers[0],
        pool_class=cache_client._pool_class,
        pool_options=dict(cache_client._pool_options),
        serializer=cache_client._serializer,
    )


@dataclass(frozen=True)
class DjangoRedisClientParts:
    """What a django-redis ``DefaultClient`` was configured with."""

    #: The first server (where django-redis writes).
    url: str
    #: The alias's ``OPTIONS`` (``SENTINELS``, ``SENTINEL_KWARGS``...).
    options: dict[str, Any]
    serializer: Any
    compressor: Any


def django_redis_client(client: Any) -> DjangoRedisClientParts:
    """The parts of a django-redis client: it exposes its servers, OPTIONS, serializer and
    compressor only as ``_server``, ``_options``, ``_serializer`` and ``_compressor``.
    Checked: django-redis 5.4.0, 6.0.0 and 7.0.0."""
    return DjangoRedisClientParts(
        url=client._server[0],
        options=dict(client._options),
        serializer=getattr(client, "_serializer", None),
        compressor=getattr(client, "_compressor", None),
    )


def async_retry(retry: redis.retry.Retry) -> aretry.Retry:
    """The ``redis.asyncio`` twin of a sync ``Retry`` (the async client cannot run a sync one).

    redis-py has no public accessor for a ``Retry``'s backoff and error types (``get_retries()``
    exists only from 6.0 on); redis-py 8's own asyncio client converts a sync ``Retry`` by the
    same three attributes (``redis.asyncio.retry._to_async_retry``, with a warning). Checked:
    redis-py 5.0.2, 6.4, 7.0 and 8.2.
    """
    errors: Any = retry._supported_errors
    return aretry.Retry(retry._backoff, retry._retries, errors)
