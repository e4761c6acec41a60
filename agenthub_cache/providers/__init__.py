"""Providers: the backend-specific mechanics behind a ``CacheService``."""

from agenthub_cache.providers.base import Capabilities, Provider

__all__ = ["Capabilities", "Provider"]
