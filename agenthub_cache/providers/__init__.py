"""Providers: the backend-specific mechanics behind a ``CacheService``."""

from agenthub_cache.providers.base import Capabilities, Flush, IndexMode, Provider, StoreScope
from agenthub_cache.providers.generic import GenericProvider

__all__ = ["Capabilities", "Flush", "GenericProvider", "IndexMode", "Provider", "StoreScope"]
