"""A testing kit for projects that use agenthub-cache.

- ``isolate_namespaces()``: every configured namespace gets a key prefix of its own for the
  duration (a context manager and decorator), flushed afterwards; the pytest fixture
  ``isolated_namespaces`` and the ``IsolatedNamespacesMixin`` for ``unittest``/Django
  ``TestCase`` use it.
- ``override_namespaces(...)``: ``override_settings`` for ``AGENTHUB_CACHE['NAMESPACES']``.
- ``assert_indexed`` / ``assert_not_indexed``: secondary-index assertions with readable failures.
- ``CacheClock``: a controllable clock for TTL tests on LocMem, database and file caches (the
  pytest fixture ``cache_clock``).

The pytest plugin (``agenthub_cache.testing.plugin``) is registered as a ``pytest11`` entry
point, so the fixtures are there once the package is installed; it defines no autouse fixture
and imports nothing of Django until a test asks for one of them.
"""

from __future__ import annotations

from agenthub_cache.testing.asserts import assert_indexed, assert_not_indexed
from agenthub_cache.testing.clock import CacheClock
from agenthub_cache.testing.isolation import (
    IsolatedNamespacesMixin,
    NamespaceIsolation,
    isolate_namespaces,
)
from agenthub_cache.testing.overrides import override_namespaces

__all__ = [
    "CacheClock",
    "IsolatedNamespacesMixin",
    "NamespaceIsolation",
    "assert_indexed",
    "assert_not_indexed",
    "isolate_namespaces",
    "override_namespaces",
]
