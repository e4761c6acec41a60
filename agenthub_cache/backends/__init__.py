"""Django cache backends that the app ships, for ``CACHES[alias]["BACKEND"]``.

Each lives in a module of its own and is imported only when named, so that
``"agenthub_cache.backends.X"`` costs nothing (no redis import) until a ``CACHES`` alias uses it.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

#: Backend class name -> the module that defines it.
_MODULES: dict[str, str] = {
    "NamespaceCache": "agenthub_cache.backends.namespace",
    "RedisClusterCache": "agenthub_cache.backends.cluster",
}

__all__ = sorted(_MODULES)


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)
