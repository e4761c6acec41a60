"""The seed's pre-configured services, resolved lazily through ``namespaces``.

Importing this module reads no settings and opens no connection. Each attribute access goes
to ``namespaces[name]``, so every thread gets its own service and ``override_settings`` is
honoured.
"""

from __future__ import annotations

from typing import Any, cast

from agenthub_cache.factory import namespaces
from agenthub_cache.service import CacheService


class LazyNamespace:
    """Stands in for ``namespaces[name]`` until used."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(namespaces[self._name], attribute)

    def __contains__(self, key: object) -> bool:
        return key in namespaces[self._name]

    def __repr__(self) -> str:
        return f"<LazyNamespace {self._name!r}>"


def lazy(name: str) -> CacheService:
    """A ``CacheService`` for the configured namespace ``name``, built on first use."""
    return cast(CacheService, LazyNamespace(name))


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
