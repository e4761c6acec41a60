"""Namespaced caches for Django. Public names only; importing reads no settings."""

from __future__ import annotations

from agenthub_cache.exceptions import (
    CacheError,
    CacheRefused,
    CacheUnavailable,
    InvalidKey,
    LockError,
    NotSupported,
    UnknownNamespace,
)
from agenthub_cache.factory import CacheFactory, CacheType, namespaces
from agenthub_cache.policy import FOREVER
from agenthub_cache.registry import register_provider
from agenthub_cache.service import CacheService

__all__ = [
    "FOREVER",
    "CacheError",
    "CacheFactory",
    "CacheRefused",
    "CacheService",
    "CacheType",
    "CacheUnavailable",
    "InvalidKey",
    "LockError",
    "NotSupported",
    "UnknownNamespace",
    "namespaces",
    "register_provider",
]
