"""The pytest plugin of agenthub-cache (entry point ``pytest11``: active once installed).

Fixtures only, none autouse, and nothing of Django or of this app is imported until a test
asks for one, so the plugin costs nothing in a test run that does not use it:

- ``isolated_namespaces``: the test runs in ``isolate_namespaces()`` (every configured
  namespace under a key prefix of the test's own, flushed afterwards); the value is the
  ``NamespaceIsolation``. Safe under pytest-xdist with one shared Redis.
- ``cache_clock``: a running ``CacheClock`` (``cache_clock.advance(61)``) for TTL tests on
  LocMem, database and file caches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from agenthub_cache.testing.clock import CacheClock
    from agenthub_cache.testing.isolation import NamespaceIsolation


#: Fixtures of pytest-django that already give a test the database.
_DATABASE_FIXTURES = {"db", "transactional_db", "live_server", "django_db_serialized_rollback"}


@pytest.fixture
def isolated_namespaces(request: pytest.FixtureRequest) -> Iterator[NamespaceIsolation]:
    """Every configured namespace sees only this test's data; flushed afterwards.

    Where a namespace lives on a ``DatabaseCache``, the test gets pytest-django's ``db``
    fixture (unless it asked for database access itself): the flush needs the database.
    """
    from agenthub_cache.testing.isolation import isolate_namespaces, uses_database

    wants_db = (
        request.config.pluginmanager.hasplugin("django")
        and not _DATABASE_FIXTURES & set(request.fixturenames)
        and request.node.get_closest_marker("django_db") is None
    )
    if wants_db and uses_database():
        request.getfixturevalue("db")
    with isolate_namespaces() as isolation:
        yield isolation


@pytest.fixture
def cache_clock() -> Iterator[CacheClock]:
    """A clock that LocMem, database and file caches expire by; moves on ``advance()``."""
    from agenthub_cache.testing.clock import CacheClock

    with CacheClock() as clock:
        yield clock
