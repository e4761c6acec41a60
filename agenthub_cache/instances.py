"""The seed's pre-configured services, resolved lazily through ``namespaces``.

Importing this module reads no settings and opens no connection. Each attribute access goes
to ``namespaces[name]`` (Django's ``ConnectionProxy``, as ``django.core.cache.cache`` is), so
every thread gets its own service and ``override_settings`` is honoured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from django.utils.connection import ConnectionProxy

from agenthub_cache.factory import namespaces
from agenthub_cache.service import CacheService

if TYPE_CHECKING:
    _Proxy = ConnectionProxy[CacheService]
else:
    _Proxy = ConnectionProxy  # generic only in django-stubs


class LazyNamespace(_Proxy):
    """Stands in for ``namespaces[name]`` until used."""

    def __repr__(self) -> str:
        return f"<LazyNamespace {self._alias!r}>"


def lazy(name: str) -> CacheService:
    """A ``CacheService`` for the configured namespace ``name``, built on first use."""
    return cast(CacheService, LazyNamespace(namespaces, name))


confirmation_cache = lazy("confirmation")
signup_cache = lazy("signup")
session_cache = lazy("session")
rate_limit_cache = lazy("rate_limit")
temp_cache = lazy("temp")

__all__ = [
    "confirmation_cache",
    "lazy",
    "rate_limit_cache",
    "session_cache",
    "signup_cache",
    "temp_cache",
]
