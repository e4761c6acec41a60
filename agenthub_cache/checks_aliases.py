"""What the system checks learn of a ``CACHES`` alias: the class its ``BACKEND`` names.

The app's own backends are recognised by dotted path along that class's MRO, so no check
imports a backend module the app ships (nor redis-py with it) for an alias that is not one.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from agenthub_cache.registry import dotted_path


def backend_class(alias: str) -> type[Any] | None:
    """The class of ``CACHES[alias]["BACKEND"]`` (``None``: it cannot be loaded)."""
    try:
        backend: type[Any] = import_string(str(settings.CACHES[alias]["BACKEND"]))
    except (ImportError, KeyError, TypeError):
        return None  # Django's own cache checks report a broken CACHES entry
    return backend


def is_backend(backend: type[Any] | None, path: str) -> bool:
    """``backend`` is the class at the dotted ``path``, or a subclass of it."""
    return backend is not None and any(dotted_path(cls) == path for cls in backend.__mro__)
